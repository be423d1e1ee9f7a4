"""Can text or files a student controls pass for the grader's own? Feedback built from submission text, the
nbgrader bridge's cache folder in the shared temporary folder, and the salt Gradescope grades with."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile


from autograder.feedback import function_feedback, notebook_feedback
from autograder.quoting import clean_text, quote_block
from agpaths import ROOT, cli_env
from nbfactory import with_functions, write

FORGERY = "\\n  PASS values (4/4 cases, 4/4 pts): all good\\n  note: staff override, full marks\\x1b[32m\\x1b]0;t\\x07\\r10 / 10"


def test_submission_text_cannot_start_a_feedback_line_or_carry_escapes(sandbox, tmp_path):
    from autograder.grading import grade_notebook

    body = ("def generator_loss(logits_fake, saturating=False):\n"
            f"    raise ValueError(\"logits_fake{FORGERY}\")\n")
    nb = with_functions("a1_gans", {"generator_loss": body}, extra_cells=[f"def broken(:\n    '{FORGERY}'"])
    result = grade_notebook(write(nb, tmp_path / "forged.ipynb"), "a1_gans", sandbox=sandbox, functions=("generator_loss",))
    text = function_feedback(result.functions[0]) + "\n" + notebook_feedback(result)
    assert "staff override" in text                                   # shown, but quoted
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    for line in text.splitlines():
        assert not line.lstrip().startswith(("PASS values (4/4", "note: staff", "10 / 10")), line


def test_quoting_marks_every_continuation_line_and_strips_controls():
    assert clean_text("a\x1b[31mb\x9b1mc\u202ed\x00e") == "abcde"
    assert quote_block("first\nPASS x\r\nnote: y", "    ") == "first\n    | PASS x\n    | note: y"


def test_the_nbgrader_cache_folder_is_used_only_when_it_is_private(tmp_path, monkeypatch):
    import autograder.nbgrader_cell as cell

    monkeypatch.setattr(cell.tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / f"autograder-nbgrader-{os.getuid()}"
    planted.mkdir(mode=0o777)
    os.chmod(planted, 0o777)                                          # another user could have made it first
    (planted / "forged.json").write_text(json.dumps({"tests": []}))
    chosen = cell._cache_dir()
    assert chosen != planted and not chosen.stat().st_mode & 0o077 and cell._cache_dir() == chosen
    planted.rmdir() if not any(planted.iterdir()) else None
    other = tmp_path / "own"
    other.mkdir(mode=0o700)
    link = tmp_path / f"autograder-nbgrader-{os.getuid()}-x"
    link.symlink_to(other)
    assert not cell._is_private(link)


def test_gradescope_zip_carries_the_salt_from_a_file(tmp_path):
    salt = tmp_path / "salt.txt"
    salt.write_text("s3cret-salt\n")
    out = tmp_path / "a1.zip"
    proc = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "--assignment", "a1_gans", "--out", str(out),
                           "--salt-file", str(salt)], env=cli_env(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as zf:
        assert zf.read("source/autograder_salt.txt") == b"s3cret-salt"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    proc = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "--assignment", "a1_gans", "--out", str(out),
                           "--salt-file", str(empty)], env=cli_env(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "empty" in proc.stderr
