"""An nbgrader preprocessor that replaces the points of the autograded test cells by the protected grade.

nbgrader decides a test cell's points from the outputs the student's kernel produced for it (an error: 0; a
float result: partial credit; anything else: full marks), so code in the submission that runs before the test
cells can decide its own grade: redefine the function a test cell calls, patch ``torch.allclose``, or hide
tracebacks (nbgrader issue #1324). This preprocessor runs in the instructor's nbgrader process after the notebook
was executed and before ``SaveAutoGrades`` records the points (see ``nbgrader_config.py``). It writes the
submission's code to a private temporary file, grades it with the out-of-process grader (``python -m autograder
grade``: student code runs only in sandboxed workers), and replaces the outputs of every test cell ``test_<name>``
by that function's feedback (stdout) and its points (the cell's points times the grader's fraction), so nothing
the kernel printed or returned reaches the gradebook. Cells of other graded functions and manually graded cells
are left alone.
"""
from __future__ import annotations

import os
import tempfile

import nbformat
from traitlets import Unicode

from .nbgrader_cell import cached_results

try:                                                     # nbgrader is an optional dependency of the grader
    from nbgrader.preprocessors import NbGraderPreprocessor as _Base
except ImportError:                                      # pragma: no cover - only without nbgrader installed
    from nbconvert.preprocessors import Preprocessor as _Base

__all__ = ["ProtectedGrades", "protect_cells"]

TEST_PREFIX = "test_"


def protect_cells(nb: nbformat.NotebookNode, results: dict) -> list[str]:
    """Overwrite the outputs of every ``test_<function>`` grade cell with the grader's points; returns the ids."""
    by_function = {t.get("extra_data", {}).get("function"): t for t in results.get("tests", [])}
    done = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = str(meta.get("grade_id", ""))
        if cell.cell_type != "code" or not meta.get("grade") or not gid.startswith(TEST_PREFIX):
            continue
        test = by_function.get(gid[len(TEST_PREFIX):])
        if test is None:
            continue
        cell_points = float(meta.get("points", 0.0))
        fraction = float(test["score"]) / float(test["max_score"]) if test.get("max_score") else 0.0
        points = round(max(0.0, min(1.0, fraction)) * cell_points, 4)
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=str(test.get("output", "")) + "\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(float(points))}, execution_count=None),
        ]
        done.append(gid)
    return done


class ProtectedGrades(_Base):
    """Grade the submission out of process and put those points into its test cells (before SaveAutoGrades)."""

    assignment = Unicode("", help="course assignment name; default: nbgrader's assignment id").tag(config=True)

    def preprocess(self, nb, resources):
        from course_lib.manifest import assignment_names

        assignment = self.assignment or resources.get("nbgrader", {}).get("assignment", "")
        if assignment not in assignment_names():
            self.log.warning("ProtectedGrades: %r is not a course assignment; points left as executed", assignment)
            return nb, resources
        folder = tempfile.mkdtemp(prefix="protected-grade-")
        path = os.path.join(folder, f"{assignment}.ipynb")
        try:
            nbformat.write(nb, path)
            results = cached_results(path, assignment)
        except Exception as exc:                         # noqa: BLE001 - a grader failure must not be scored
            self.log.error("ProtectedGrades: the autograder failed on this submission: %s", exc)
            for cell in nb.cells:
                meta = cell.get("metadata", {}).get("nbgrader", {})
                if cell.cell_type == "code" and meta.get("grade") and str(meta.get("grade_id", "")).startswith(TEST_PREFIX):
                    cell.outputs = [nbformat.v4.new_output("error", ename="AutograderError", evalue=str(exc),
                                                           traceback=[f"the autograder failed: {exc}"])]
            return nb, resources
        finally:
            for name in os.listdir(folder):
                os.unlink(os.path.join(folder, name))
            os.rmdir(folder)
        done = protect_cells(nb, results)
        self.log.info("ProtectedGrades: %d test cell(s) scored by the out-of-process grader", len(done))
        return nb, resources
