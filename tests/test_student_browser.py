"""Does a student's first "Run All" in JupyterLab stop where it should, with rendered maths, and does nbgrader's
Validate name the unfinished functions (and pass a finished notebook)?

The browser test starts JupyterLab on 127.0.0.1 and drives it with Playwright through the system's Chromium
(skipped when no Chromium or no Playwright is installed): it opens an untouched release notebook, runs all cells,
and checks that the first error is the first graded scaffold's message (ungraded warm-ups skip with a note) and
that every formula was typeset (no raw ``$...$`` left in the rendered markdown).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import samples  # noqa: E402

VENV_BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _env(**extra) -> dict:
    env = dict(os.environ, MPLBACKEND="Agg", COURSE_SMOKE="1")
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _first_scaffold(nb) -> str:
    for cell in nb.cells:
        m = re.match(r"def (\w+)\(", cell.source)
        if cell.cell_type == "code" and m and "raise NotImplementedError()" in cell.source \
                and not m.group(1).endswith("_loop"):
            return m.group(1)
    raise AssertionError("no graded scaffold in the release")


# ------------------------------------------------------------------------------------------------ Validate
def _validate(path: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path)], cwd=path.parent, env=_env(),
                         capture_output=True, text=True, timeout=900)
    return out.stdout + out.stderr


def test_validate_names_every_unfinished_function_and_passes_a_finished_notebook(tmp_path):
    from course_lib.manifest import functions

    name = "a1_gans"
    untouched = tmp_path / "untouched" / f"{name}.ipynb"
    untouched.parent.mkdir()
    shutil.copy(ROOT / "assignments" / name / f"{name}.ipynb", untouched)
    report = _validate(untouched)
    assert "VALIDATION FAILED" in report and "Success!" not in report
    for fn in functions(name):
        assert f"{fn} is not implemented yet" in report or f"{fn} fails" in report, fn
    finished = tmp_path / "finished" / f"{name}.ipynb"
    finished.parent.mkdir()
    done = samples.make_submission(name)
    for cell in done.cells:                                  # the written answers too (Validate asks for them)
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = "My answer."
    nbformat.write(done, finished)
    report = _validate(finished)
    assert "Success! Your notebook passes all the tests." in report, report[-3000:]


# ------------------------------------------------------------------------------------------------ JupyterLab
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    if CHROMIUM is None:
        pytest.skip("no Chromium installed")
    pytest.importorskip("playwright.sync_api")
    port = _free_port()
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={tmp_path}", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=tmp_path, env=_env(JUPYTER_CONFIG_DIR=str(tmp_path / "config")), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/lab", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                deadline = 0
            time.sleep(0.5)
    if time.time() >= deadline:
        proc.kill()
        pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
    yield url, tmp_path
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.mark.timeout(600)
def test_run_all_on_an_untouched_release_stops_at_the_first_scaffold_with_rendered_maths(lab):
    from playwright.sync_api import sync_playwright

    url, folder = lab
    name = "a2_pretext"
    nb = nbformat.read(ROOT / "assignments" / name / f"{name}.ipynb", as_version=4)
    shutil.copy(ROOT / "assignments" / name / f"{name}.ipynb", folder / f"{name}.ipynb")
    first = _first_scaffold(nb)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/{name}.ipynb", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                                   ".jp-Toolbar-kernelStatus", timeout=120_000)
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator("[data-command='runmenu:run-all']").first.click()
            # an error output is rendered as stderr; wait until its text is in (the element appears first, empty)
            stderr = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            page.wait_for_selector(f"{stderr}:has-text('Error')", timeout=300_000)
            # textContent, not innerText: JupyterLab skips rendering cells outside the viewport (content-visibility)
            shown = [t for t in page.locator(stderr).all_text_contents() if t.strip()]
            first_error = shown[0] if shown else ""
            rendered = page.locator(".jp-MarkdownOutput").all_text_contents()
            typeset = page.locator(".jp-MarkdownOutput mjx-container").count()
        finally:
            browser.close()
    assert "NotImplementedError" in first_error and f"{first} is not implemented yet" in first_error, first_error
    raw = [text for text in rendered if re.search(r"\$[^$\n]+\$", text)]
    assert typeset > 0 and raw == [], raw[:2]
