"""Does the RotNet experiment measure what the a2_pretext notebook states, with the reference rotate_batch?"""
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import rotate_batch
from course_lib.experiments import rotation
from helpers import run_smoke_cli, unimplemented

CIFAR_TEST = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "cifar10_jpg" / "cifar10_jpg_test.tar.gz"


def test_rotnet_blocks_have_the_documented_shapes():
    net = rotation.RotNet(in_channels=3, width=4)
    x = torch.rand(2, 3, 32, 32)
    shapes = [tuple(net.block_output(x, k).shape) for k in (1, 2, 3, 4)]
    assert shapes == [(2, 4, 32, 32), (2, 8, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4)]
    assert net(x).shape == (2, 4)
    with pytest.raises(ValueError, match="block"):
        net.block_output(x, 5)


def test_block_features_are_pooled_to_a_fixed_grid_and_frozen():
    net = rotation.RotNet(in_channels=1, width=4)
    feats = rotation.block_features(net, torch.rand(3, 1, 32, 32), block=2, device=torch.device("cpu"), pool=4)
    assert feats.shape == (3, 8 * 16) and not feats.requires_grad


def test_linear_probe_separates_separable_classes_and_not_random_labels():
    g = torch.Generator().manual_seed(0)
    centres = 4 * torch.randn(4, 16, generator=g)
    y = torch.randint(0, 4, (800,), generator=g)
    x = centres[y] + torch.randn(800, 16, generator=g)
    test_acc, train_acc = rotation.linear_probe(x[:400], y[:400], x[400:], y[400:], 4)
    assert test_acc > 0.95 and train_acc > 0.95
    shuffled = y[torch.randperm(800, generator=g)]              # labels unrelated to the features
    test_acc, _ = rotation.linear_probe(x[:400], shuffled[:400], x[400:], shuffled[400:], 4)
    assert test_acc < 0.45


def test_linear_probe_does_not_depend_on_the_scale_of_the_features():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(300, 8, generator=g), torch.randint(0, 3, (300,), generator=g)
    x[:, 0] += 4.0 * y                                          # classes 4 standard deviations apart
    a = rotation.linear_probe(x[:200], y[:200], x[200:], y[200:], 3)
    b = rotation.linear_probe(1e3 * x[:200] + 7, y[:200], 1e3 * x[200:] + 7, y[200:], 3)
    assert a[0] > 0.9 and a == pytest.approx(b, abs=0.02)


def test_train_rotnet_gets_its_batches_from_the_given_rotate_batch():
    calls = []

    def spy(images):
        calls.append(tuple(images.shape))
        return rotate_batch(images)

    exp = rotation.RotationExperiment(width=4, steps=3, batch_size=5)
    net, losses = rotation.train_rotnet(torch.rand(20, 3, 32, 32), spy, exp, torch.device("cpu"), progress=False)
    assert calls == [(5, 3, 32, 32)] * 3 and len(losses) == 3 and not net.training


def test_a_short_training_predicts_rotations_far_above_chance():
    from course_lib.data import glyphs

    images = glyphs(n=700, size=32, seed=3).images
    exp = rotation.RotationExperiment(width=8, steps=120, batch_size=32, lr=5e-3)
    net, _ = rotation.train_rotnet(images[:500], rotate_batch, exp, torch.device("cpu"), progress=False)
    with torch.no_grad():
        x, y = rotate_batch(images[500:])
        acc = (net(x).argmax(1) == y).float().mean().item()
    assert acc > 0.6                                             # chance is 0.25


def test_experiment_reports_an_unimplemented_rotate_batch_clearly():
    with pytest.raises(NotImplementedError, match="rotate_batch"):
        rotation.run(unimplemented, rotation.RotationExperiment.smoke(), progress=False)


def test_settings_are_validated():
    with pytest.raises(ValueError, match="n_test"):
        rotation.RotationExperiment(n_images=100, n_test=100).validate()
    with pytest.raises(ValueError, match="probe"):
        rotation.RotationExperiment(probe_block=5).validate()


def test_cli_smoke_run_prints_the_metrics_last():
    out = run_smoke_cli("course_lib.experiments.rotation")
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("probe_acc_rotnet=") and " probe_acc_random=" in last


def _write_image_folder(root: Path, n_classes: int = 2, n_per_class: int = 12) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(n_classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(n_per_class):
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / f"class{c}" / f"{i:02d}.png")


def test_cli_trains_on_an_image_folder(tmp_path, monkeypatch, capsys):
    _write_image_folder(tmp_path / "imgs")
    monkeypatch.setenv("COURSE_SMOKE", "1")
    assert rotation.main(["--images", str(tmp_path / "imgs"), "--steps", "2"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("probe_acc_rotnet=") and "probe_acc_random=" in last


def test_cli_rejects_a_missing_folder_and_bad_steps(tmp_path, capsys):
    for argv in (["--images", str(tmp_path / "nope")], ["--steps", "0"]):
        with pytest.raises(SystemExit) as exc:
            rotation.main(argv)
        assert exc.value.code == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.realdata
@pytest.mark.skipif(not CIFAR_TEST.is_file(), reason="CIFAR-10 JPEG sample not available")
def test_cli_reads_the_cifar10_jpeg_tarball(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    assert rotation.main(["--images", str(CIFAR_TEST), "--n-per-class", "20", "--steps", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "chance 0.100" in "\n".join(lines)                   # ten classes
    assert lines[-1].startswith("probe_acc_rotnet=")


@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    out = rotation.run(exp=rotation.RotationExperiment(), progress=False, device=torch.device("cpu"))
    m = out["metrics"]
    assert m["rotation_acc"] > 0.8, m
    assert m["probe_acc_rotnet"] - m["probe_acc_random"] >= 0.15, m       # the notebook's stated number
    assert m["probe_acc_rotnet"] >= 0.8, m


CIFAR_TRAIN = CIFAR_TEST.with_name("cifar10_jpg_train.tar.gz")


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not CIFAR_TRAIN.is_file(), reason="CIFAR-10 JPEG sample not available")
def test_cifar10_at_the_notebooks_budget_reaches_the_stated_numbers():
    # the notebook: 1,200 images per class, 600 steps: block-3 probe 0.55 against 0.47 at random init (chance 0.10)
    out = rotation.run(exp=rotation.RotationExperiment(probe_blocks=(3,)), images_dir=CIFAR_TRAIN, n_per_class=1200,
                       progress=False, device=torch.device("cpu"))
    m = out["metrics"]
    assert m["chance"] == pytest.approx(0.1) and m["rotation_acc"] > 0.4, m                 # chance 0.25
    assert m["probe_acc_rotnet"] - m["probe_acc_random"] >= 0.04, m
