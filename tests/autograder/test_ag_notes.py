"""Does the grader's feedback speak only about the student's own code: no notes from cells the course wrote, no
notes about imports graded code can never use, and loop notes only for loops that grow with the data?"""
from __future__ import annotations

import nbformat

from autograder.grading import grade_notebook
from autograder.notebook import extract_cells, loops_in
from nbfactory import perfect_notebook, write


def _loops(source: str) -> list[int]:
    ex = extract_cells([{"cell_type": "code", "source": source}])
    return loops_in(ex.function("f"))


def test_loops_over_written_out_sizes_and_argument_checks_are_not_loops_over_the_data():
    fixed = (
        "def f(images, temperature=0.5):\n"
        "    for name, value in (('images', images), ('t', temperature)):\n"
        "        if value is None:\n"
        "            raise ValueError(', '.join(str(d) for d in images.shape) + name)\n"
        "    if images.dim() != 4:\n"
        "        got = [s for s in images.shape]\n"
        "        raise ValueError(f'images must be 4-D, got {got}')\n"
        "    return torch.stack([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)], 1)\n")
    assert _loops(fixed) == []
    data = "def f(x):\n    out = []\n    for i in range(x.shape[0]):\n        out.append(x[i] * 2)\n    return out\n"
    assert _loops(data) == [3]
    assert _loops("def f(x):\n    return [v * 2 for v in x]\n") == [2]
    assert _loops("def f(x, n):\n    while n:\n        n -= 1\n    return x\n") == [2]


def test_course_imports_are_not_kept_and_course_cells_cause_no_notes(sandbox, tmp_path):
    nb = perfect_notebook("a1_gans")
    helper = nbformat.v4.new_code_cell("def plot_helper(x, scale=UNDEFINED_SCALE):\n    return x\n")
    helper.metadata = {"course": {"provided": True}}            # a cell the course wrote
    mine = nbformat.v4.new_code_cell("def my_helper(x, scale=ALSO_UNDEFINED):\n    return x\n")
    nb.cells[2:2] = [helper, mine, nbformat.v4.new_code_cell("from autograder.nbgrader_cell import points\n"
                                                             "from course_lib.checks import check")]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    ex = extract_cells([{"cell_type": c.cell_type, "source": c.source,
                         "provided": c.metadata.get("course", {}).get("provided", False)} for c in nb.cells])
    assert not [s for s in ex.statements if s.kind == "import" and {"points", "check"} & s.names]
    assert next(s for s in ex.statements if "plot_helper" in s.names).provided
    # both helpers are needed by a graded function: only the student's own cell may produce a note
    ids = {c.metadata.get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(nb.cells)}
    cell = nb.cells[ids["generator_loss_solution"]]
    cell.source += "\ndef generator_loss(logits_fake, saturating=False):\n    plot_helper(0)\n    my_helper(0)\n" \
                   "    return torch.nn.functional.softplus(-logits_fake).mean()\n"
    path = write(nb, tmp_path / "a1_gans.ipynb")
    result = grade_notebook(path, "a1_gans", sandbox=sandbox)
    notes = [n for fr in result.functions for n in fr.notes] + result.notes
    assert any("ALSO_UNDEFINED" in n for n in notes), notes
    assert not any("UNDEFINED_SCALE" in n or "autograder" in n or "course_lib" in n for n in notes), notes
