"""nbgrader configuration: solutions/ is the source, assignments/ the student release.

Run nbgrader from this directory with the venv's bin on PATH (nbgrader shells out to alembic), e.g.
``make release``. ``nbgrader autograde`` executes the submission as usual, then ``ProtectedGrades`` (in this
process, after execution) grades it again with the out-of-process autograder and writes those points into the
test cells before nbgrader records them: ``nbgrader autograde`` and ``python -m autograder grade`` give the same
points, and nothing the submission's kernel did can change them.
"""
import os

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "dl-course"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
# the text sources (<name>.py) hold the solutions: never copy them into the release
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py", "README.md", "outputs"]

# The exchange folder (release_assignment, the students' Assignment List, submit, collect). On a multi-user
# JupyterHub an administrator creates it once for everyone: mkdir -p /srv/nbgrader/exchange && chmod ugo+rwx it.
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Per-cell time limit while autograding; a hanging cell is interrupted and scores 0, the rest still runs.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
# Minimal tracebacks and no history file: feedback must not quote hidden test code.
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--InteractiveShell.xmode=Minimal"]
# nbgrader's autograde pipeline with the protected grades inserted before SaveAutoGrades records the points.
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "autograder.nbgrader_protect.ProtectedGrades",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
