"""Does the contrastive entry point run under torchrun and alone, write a checkpoint that --resume continues
exactly, print knn_acc, and reject bad usage with a clear message?"""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib.train.checkpoint import load_checkpoint
from course_lib.train.contrastive import TrainConfig, main, parse_args, train
from course_lib.train.data import RankBatches
from course_lib.train.distributed import DistEnv

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """Three colour classes x 12 noisy 16x16 PNGs."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c, colour in enumerate([(200, 40, 40), (40, 40, 200), (40, 180, 40)]):
        (root / f"class{c}").mkdir()
        for i in range(12):
            img = np.clip(rng.normal(colour, 30, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / f"class{c}" / f"{i:03d}.png")
    return root


def _cfg(image_folder, out, **kw) -> TrainConfig:
    base = dict(method="simclr", data=str(image_folder), image_size=16, batch_size=8, epochs=3, width=4,
                out_dim=8, queue_size=32, out=str(out), log_every=100)
    base.update(kw)
    return TrainConfig(**base)


def _run(args, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_torchrun_two_ranks_moco_writes_a_checkpoint_and_resume_continues(image_folder, tmp_path):
    common = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
              "course_lib.train.contrastive", "--method", "moco", "--images", str(image_folder),
              "--image-size", "16", "--batch-size", "4", "--width", "4", "--out-dim", "8", "--queue-size", "32",
              "--epochs", "2", "--out", str(tmp_path)]
    first = _run(common + ["--max-steps", "2"])
    assert first.returncode == 0, first.stderr[-3000:]
    assert "2 rank(s)" in first.stdout
    lines = [line for line in first.stdout.splitlines() if line.startswith("knn_acc=")]
    assert len(lines) == 1 and 0.0 <= float(lines[0].split("=")[1]) <= 1.0      # printed by rank 0 only
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 2 and state["world_size"] == 2 and len(state["aug_rng"]) == 2
    assert state["objective"]["queue_ptr"] == 2 * 2 * 4                           # 2 steps x 2 ranks x 4 keys
    second = _run(common + ["--max-steps", "3", "--resume"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from" in second.stdout and "at epoch 0, step 2" in second.stdout
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 3 and state["objective"]["queue_ptr"] == 3 * 2 * 4 % 32


@pytest.mark.parametrize("method", ["simclr", "moco"])
def test_resume_gives_exactly_the_uninterrupted_run(image_folder, tmp_path, method):
    straight = train(_cfg(image_folder, tmp_path / "a", method=method, max_steps=5), DistEnv())
    train(_cfg(image_folder, tmp_path / "b", method=method, max_steps=2), DistEnv())
    resumed = train(_cfg(image_folder, tmp_path / "b", method=method, max_steps=5, resume="auto"), DistEnv())
    assert straight["step"] == resumed["step"] == 5
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=0, atol=0, msg=key)
    if method == "moco":
        torch.testing.assert_close(b["objective"]["queue"], a["objective"]["queue"], rtol=0, atol=0)
    assert straight["loss"] == resumed["loss"]
    assert math.isfinite(straight["knn_acc"])


def test_single_process_cli_prints_knn_acc_last(image_folder, tmp_path, capsys):
    rc = main(["--images", str(image_folder), "--image-size", "16", "--batch-size", "8", "--width", "4",
               "--epochs", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and out[-1].startswith("knn_acc=")
    assert (tmp_path / "last.pt").is_file() and not list(tmp_path.glob(".last.pt.*"))   # no temp files left


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--method", "byol"], "invalid choice"),
        (["--images", "/nonexistent/folder"], "no such folder"),
        (["--batch-size", "0"], "batch_size must be >= 1"),
        (["--temperature", "-1"], "temperature must be > 0"),
        (["--data", "glyphs", "--images", "x"], "not allowed with"),
        (["--crop-min", "0"], "crop_scale"),
    ],
)
def test_usage_errors_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_corrupt_checkpoint_and_too_few_images_are_reported(image_folder, tmp_path, capsys):
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    rc = main(["--images", str(image_folder), "--image-size", "16", "--batch-size", "8", "--width", "4",
               "--out", str(tmp_path), "--resume"])
    assert rc == 2 and "not readable" in capsys.readouterr().err
    rc = main(["--images", str(image_folder), "--image-size", "16", "--batch-size", "64", "--width", "4",
               "--out", str(tmp_path)])
    assert rc == 2 and "fewer than one global batch" in capsys.readouterr().err


def test_rank_batches_deal_the_same_global_batches_for_any_world_size():
    one = list(RankBatches(40, 8, 1, 0, seed=3).epoch(0))
    two = [list(RankBatches(40, 4, 2, r, seed=3).epoch(0)) for r in range(2)]
    assert len(one) == len(two[0]) == 5
    for s in range(5):
        assert torch.equal(one[s], torch.cat([two[0][s], two[1][s]]))
    everything = torch.cat(one)
    assert everything.unique().numel() == 40                     # each image once per epoch
    assert not torch.equal(everything, torch.cat(list(RankBatches(40, 8, 1, 0, seed=3).epoch(1))))


def test_bfloat16_autocast_on_the_cpu_trains_with_finite_losses(image_folder, tmp_path):
    res = train(_cfg(image_folder, tmp_path, method="moco", amp=True, max_steps=2), DistEnv())
    assert res["step"] == 2 and math.isfinite(res["loss"])
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["config"]["amp"] is True
    assert all(v.dtype == torch.float32 for k, v in state["model"].items() if v.is_floating_point())
