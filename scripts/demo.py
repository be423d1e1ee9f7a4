"""The instructor flow in one command (``make demo`` runs it after building the release).

For every released assignment, three sample submissions are graded with the autograder's ``batch`` command:
the solution notebook, the untouched student release, and a submission with typical mistakes
(``scripts/samples.py``). The gradebooks are printed, then the feedback a student would get for the
submission with mistakes.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

import samples  # same folder (scripts/)

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, capture_output=True, text=True)


def main() -> int:
    names = [n for n in samples.ASSIGNMENTS if (ROOT / "assignments" / n / f"{n}.ipynb").is_file()]
    if not names:
        print("no released assignments yet: run `make release` first")
        return 1
    with tempfile.TemporaryDirectory(prefix="course-demo-") as tmp:
        tmp = Path(tmp)
        for name in names:
            folder = tmp / name
            folder.mkdir()
            shutil.copy(ROOT / "solutions" / name / f"{name}.ipynb", folder / "1_solution.ipynb")
            shutil.copy(ROOT / "assignments" / name / f"{name}.ipynb", folder / "2_untouched_release.ipynb")
            buggy = {fn: body for fn, _, _, body in samples.typical_mistakes(name)}
            nbformat.write(samples.make_submission(name, buggy), folder / "3_typical_mistakes.ipynb")
            out = _run(["batch", str(folder), "--assignment", name, "--out", str(tmp / f"{name}.csv"),
                        "--jobs", "2", "--no-progress"])
            if out.returncode != 0:
                print(out.stdout, out.stderr, sep="\n")
                return 1
            with open(tmp / f"{name}.csv", newline="") as fh:
                rows = list(csv.DictReader(fh))
            functions = [c for c in rows[0] if c not in ("submission", "sha256", "total", "max_total", "error")]
            print(f"\n== gradebook {name} ({', '.join(functions)})")
            print(f"  {'submission':<28} " + " ".join(f"{f[:12]:>12}" for f in functions) + f" {'total':>8}")
            for row in rows:
                cells = " ".join(f"{float(row[f] or 0):>12.1f}" for f in functions)
                print(f"  {row['submission']:<28} {cells} {float(row['total'] or 0):>5.1f}/{float(row['max_total'] or 0):.0f}"
                      + (f"  error: {row['error']}" if row["error"] else ""))

        print("\n== feedback for the submission with typical mistakes")
        for name in names:
            mistakes = ", ".join(f"{fn}: {mistake}" for fn, mistake, _, _ in samples.typical_mistakes(name))
            print(f"\n-- {name} (planted: {mistakes})")
            res_path = tmp / f"{name}_results.json"
            out = _run(["grade", str(tmp / name / "3_typical_mistakes.ipynb"), "--assignment", name,
                        "--out", str(res_path), "--quiet"])
            if out.returncode != 0:
                print(out.stdout, out.stderr, sep="\n")
                return 1
            results = json.loads(res_path.read_text())
            for test in results["tests"]:
                if test["score"] < test["max_score"]:
                    print(test["output"])
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
