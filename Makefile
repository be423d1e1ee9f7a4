# The two commands most people need:
#   make demo   the main job: reference self-check and benchmark table (later: release + grading demo)
#   make test   the test suite without the `slow` experiment runs (what CI runs)
#   make test-slow  the `slow` tests: every number the notebooks state, at default settings
# Both create .venv on first use (scripts/setup_venv.sh) and reuse it afterwards.

VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
# nbgrader runs alembic as a subprocess: the venv's bin must be on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MPLBACKEND ?= Agg
PYTEST_ARGS ?=

.PHONY: demo test test-slow bench selfcheck venv clean-venv notebooks release student

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/setup_venv.sh
	bash scripts/setup_venv.sh $(VENV) dev
	@touch $@

demo: student
	$(PY) -m course_lib.selfcheck
	$(PY) -m course_lib.bench
	$(PY) scripts/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Each slow test trains an experiment at the notebook's default settings with the references (one CPU thread
# each, so two run side by side on two cores).
test-slow: $(STAMP)
	$(PY) -m pytest -m slow -n 2 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m course_lib.bench

selfcheck: $(STAMP)
	$(PY) -m course_lib.selfcheck

clean-venv:
	rm -rf $(VENV)

# registry public cases -> course_lib/checks_data/ (the self-check's stored answers);
# solutions/<name>/<name>.py (text source) -> solutions/<name>/<name>.ipynb (nbgrader source notebook)
notebooks: $(STAMP)
	$(PY) scripts/selfcheck_data.py build
	$(PY) scripts/notebooks.py build
	$(PY) scripts/readme_tables.py build

# solutions/ -> assignments/ (the student release) with nbgrader generate_assignment
release: notebooks
	$(PY) scripts/release.py

# dist/student/: the student edition (a wheel of course_lib without the answers, the release notebooks, a README),
# leak-scanned. RELEASE=a1_gans,a4_rendering hands out those assignments' references too.
RELEASE ?=
student: release
	$(PY) scripts/student.py --release "$(RELEASE)"
