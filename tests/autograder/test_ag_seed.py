"""Does the hidden cases' seed follow the code and nothing else: not comments, formatting or renamed locals?"""
from __future__ import annotations

from autograder.grading import code_digest, run_seed
from autograder.notebook import extract_cells

BASE = "import torch\n\ndef f(x, t=0.5):\n    y = torch.exp(x / t)  # the scores\n    return y.sum()\n"


def _seed(source: str) -> int:
    ex = extract_cells([{"cell_type": "code", "source": source}, {"cell_type": "code", "source": "print('hi')"}])
    return run_seed(code_digest(ex, ["f"]), "a1_gans", salt="")


def test_comments_formatting_renamed_locals_and_messages_keep_the_seed():
    same = [
        "import torch\n\ndef f(x, t=0.5):\n    # compute the scores first\n    y = torch.exp(x / t)\n    return y.sum()\n",
        "import torch\n\n\ndef f(x, t=0.5):\n    scores = torch.exp(x / t)\n    return scores.sum()\n",
        'import torch\n\ndef f(x, t=0.5):\n    """Sum of exponentials."""\n    y = torch.exp(x / t)\n    return y.sum()\n',
    ]
    assert all(_seed(s) == _seed(BASE) for s in same)


def test_a_change_to_the_computation_changes_the_seed():
    assert _seed(BASE.replace("x / t", "x * t")) != _seed(BASE)
    assert _seed(BASE.replace("y.sum()", "y.mean()")) != _seed(BASE)
    assert _seed(BASE.replace("t=0.5", "t=0.1")) != _seed(BASE)
