"""Does every command line that advertises a real-data option run on the real samples in ../shared/realdata
(MNIST t10k, the CIFAR-10 JPEG tarballs, DAVIS-2016 sequences, the lego views) at reduced sizes, and do its
default sizes fit those data sets -- or stop before any training with a message that names the sizes?

Covered here: ``course_lib.experiments.gan --mnist``, ``rotation --images`` (the train tarball),
``contrastive --method moco --images``, ``propagation --davis --sequence`` (dog; the experiment's own test
runs car-shadow), ``nerf --data --trainer tiny``, ``course_lib.train.contrastive --images`` (a tarball and a
folder), ``course_lib.nerf.bench --data`` and the data scripts that accept a local copy
(``tiny_nerf_lego --url``, ``davis2017_subset --url``, ``mnist --mirror``). The other real-data runs
(``rotation`` on the test tarball, ``contrastive --method simclr``, ``propagation`` on car-shadow, ``nerf``
with the fast trainer) are in the experiments' own test files. ``data_scripts/cifar10.py`` (pickled batches)
and ``nerf_synthetic_lego.py`` (the 800x800 PNGs) have no sample here; the fourier_features, autodecoder and
infonce_bound experiments have no real-data option. Each test is skipped where its sample is absent.
"""
import hashlib
import re
import tarfile
import zipfile

import pytest
import torch

from course_lib.data import davis_sequences, load_image_folder, load_mnist
from course_lib.experiments import contrastive, gan, nerf, propagation, rotation
from course_lib.experiments.colorization import ColorizationConfig
from course_lib.nerf.data import load_views, split_views
from data_fixtures.common import isolated_data_dir, one_torch_thread  # noqa: F401  (autouse fixtures)
from data_fixtures.fabricate import write_mnist
from helpers import run_smoke_cli
from test_data_download import _script
from test_data_realdata import _need

pytestmark = pytest.mark.realdata

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _last_metrics(stdout: str) -> dict[str, float]:
    return {k: float(v) for k, v in (kv.split("=") for kv in stdout.strip().splitlines()[-1].split())}


@pytest.fixture(scope="module")
def cifar_test():
    """The whole CIFAR-10 JPEG test tarball (10,000 images), loaded once for the size checks."""
    return load_image_folder(_need("cifar10_jpg", "cifar10_jpg_test.tar.gz"), size=32)


@pytest.fixture
def no_training(monkeypatch):
    """Makes any start of GAN training an error, to prove that a size check comes first."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started before the sizes were checked")
    monkeypatch.setattr(gan, "train_classifier", refuse)
    monkeypatch.setattr(gan, "train_dcgan", refuse)


# ------------------------------------------------------------------------------------------------ MNIST
def test_gan_cli_trains_on_the_t10k_split_when_the_train_images_are_absent():
    out = run_smoke_cli("course_lib.experiments.gan", "--mnist", str(_need("mnist")), "--steps", "5")
    assert out.returncode == 0, out.stderr
    assert ("data: MNIST t10k only (train-images-idx3-ubyte absent): 1024 images for training, the last 256 held "
            "out") in out.stdout
    acc = float(re.search(r"classifier accuracy on real test images: ([\d.]+)", out.stdout).group(1))
    assert acc > 0.2                                                       # ten digits: chance 0.1
    metrics = _last_metrics(out.stdout)
    assert set(metrics) == {"fd_ratio", "class_coverage"} and 0 <= metrics["class_coverage"] <= 10
    assert metrics["fd_ratio"] > 0


def test_gan_default_sizes_fit_the_t10k_split(monkeypatch):
    monkeypatch.delenv("COURSE_SMOKE", raising=False)
    root = _need("mnist")
    exp = gan.default_experiment(root).validate()
    assert (exp.n_train, exp.n_test, exp.n_eval) == (8000, 2000, 1000)
    data = gan.load_data(exp, root)
    labels = load_mnist(root, "test").labels
    assert data.train.shape == (8000, 1, 32, 32) and data.test.shape == (2000, 1, 32, 32)
    assert torch.equal(data.train_labels, labels[:8000]) and torch.equal(data.test_labels, labels[8000:])
    assert data.train[:, :, :2].max() == 0 and data.train[:, :, 2:30, 2:30].max() == 1     # padded 28 -> 32
    assert torch.bincount(data.test_labels, minlength=10).min() > 150      # every digit is held out


def test_gan_sizes_beyond_the_t10k_split_stop_before_training(no_training, capsys):
    root = _need("mnist")
    with pytest.raises(ValueError, match=r"n_train=9000 \+ n_test=2000 = 11000 images requested.*only the 10000 "
                                         r"t10k images are there; lower n_train to at most 8000"):
        gan.run(exp=gan.GANExperiment(n_train=9000), mnist_dir=root, device=torch.device("cpu"), progress=False)
    assert gan.main(["--mnist", str(root), "--n-test", "9990"]) == 2     # the default n_train is capped to 10 ...
    assert capsys.readouterr().err == "error: n_train must be >= 64 (one DCGAN batch), got 10\n"
    assert gan.main(["--mnist", str(root), "--n-train", "8001"]) == 2     # ... an explicit one is kept and refused
    err = capsys.readouterr().err
    assert err.startswith(f"error: MNIST folder {root}:") and "n_train=8001 + n_test=2000 = 10001" in err


def test_gan_uses_a_complete_train_split_and_checks_its_size(tmp_path, monkeypatch, no_training):
    monkeypatch.delenv("COURSE_SMOKE", raising=False)
    real = _need("mnist")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).symlink_to(real / name)
    fake = write_mnist(tmp_path, "train", n=300)                           # a train split of 300 images
    assert gan.default_experiment(tmp_path).n_train == 12000              # the train split is not capped ...
    with pytest.raises(ValueError, match=r"n_train=12000 and n_test=2000 requested, but the train split holds 300 "
                                         r"images and the t10k split 10000"):
        gan.run(exp=gan.default_experiment(tmp_path), mnist_dir=tmp_path, progress=False)   # ... but checked
    data = gan.load_data(gan.GANExperiment(n_train=200, n_test=100, n_eval=50), tmp_path)
    assert "200 train-split images, 100 t10k images held out" in data.source
    assert torch.equal(data.train[:, 0, 2:30, 2:30], torch.from_numpy(fake["images"][:200]).float() / 255)
    assert torch.equal(data.test_labels, load_mnist(real, "test").labels[:100])


# ----------------------------------------------------------------------------------------- CIFAR-10 JPEGs
def test_rotation_cli_reads_the_cifar10_train_tarball():
    tar = _need("cifar10_jpg", "cifar10_jpg_train.tar.gz")
    out = run_smoke_cli("course_lib.experiments.rotation", "--images", str(tar), "--n-per-class", "8",
                        "--steps", "2")
    assert out.returncode == 0, out.stderr
    assert "chance 0.100" in out.stdout
    metrics = _last_metrics(out.stdout)
    assert set(metrics) == {"probe_acc_rotnet", "probe_acc_random"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())


def test_rotation_default_splits_fit_the_cifar10_test_tarball(cifar_test):
    assert cifar_test.classes == CIFAR_CLASSES and len(cifar_test) == 10000
    exp, test_idx, train_idx, probe_idx = rotation.split_indices(rotation.RotationExperiment(), len(cifar_test))
    assert (exp.n_test, exp.n_probe_train) == (2000, 2000)                  # the defaults, unchanged
    assert len(test_idx) == 2000 and len(train_idx) == 8000 and len(probe_idx) == 2000
    assert torch.cat([test_idx, train_idx]).sort().values.equal(torch.arange(10000))          # a partition
    for idx in (test_idx, probe_idx):                                     # the probe sees and is scored on all
        assert torch.bincount(cifar_test.labels[idx], minlength=10).min() > 100
    small, test_small, _, probe_small = rotation.split_indices(rotation.RotationExperiment(), 40)
    assert (small.n_test, small.n_probe_train, len(test_small), len(probe_small)) == (10, 30, 10, 30)
    with pytest.raises(ValueError, match="at least 8 images, got 7"):
        rotation.split_indices(rotation.RotationExperiment(), 7)


def test_contrastive_cli_runs_moco_on_the_cifar10_test_tarball():
    tar = _need("cifar10_jpg", "cifar10_jpg_test.tar.gz")
    out = run_smoke_cli("course_lib.experiments.contrastive", "--method", "moco", "--images", str(tar))
    assert out.returncode == 0, out.stderr
    assert f"data {tar}" in out.stdout and "chance 0.100" in out.stdout
    metrics = _last_metrics(out.stdout)
    assert set(metrics) == {"knn_acc", "knn_acc_random_init"} and all(0 <= v <= 1 for v in metrics.values())


def test_contrastive_default_split_fits_the_cifar10_test_tarball():
    exp = contrastive.ContrastiveExperiment(data=str(_need("cifar10_jpg", "cifar10_jpg_test.tar.gz"))).validate()
    split = contrastive.load_split(exp)                                   # 6000 of the 10000, then 80 / 20
    assert split.train_images.shape == (4800, 3, 32, 32) and split.test_images.shape == (1200, 3, 32, 32)
    assert split.num_classes == 10 and exp.batch_size <= 4800
    assert torch.bincount(split.test_labels, minlength=10).min() > 60        # every class on both sides
    assert torch.bincount(split.train_labels, minlength=10).min() > 240


def test_train_contrastive_cli_default_batches_fit_the_cifar10_test_tarball(tmp_path):
    tar = _need("cifar10_jpg", "cifar10_jpg_test.tar.gz")
    out = run_smoke_cli("course_lib.train.contrastive", "--method", "simclr", "--images", str(tar), "--max-steps", "1",
                        "--width", "4", "--out-dim", "8", "--out", str(tmp_path))   # default epochs and batch size
    assert out.returncode == 0, out.stderr
    # 10000 minus the 20% held out = 8000 = 62 batches of 128 per epoch (the rest dropped), 20 epochs
    assert "simclr: 8000 training images, 1 rank(s) x 128 = global batch 128, steps 0..1 of 1240" in out.stdout
    assert 0.0 <= _last_metrics(out.stdout)["knn_acc"] <= 1.0 and (tmp_path / "last.pt").is_file()


def test_train_contrastive_cli_trains_moco_on_a_folder_of_cifar10_jpegs(tmp_path):
    tar = _need("cifar10_jpg", "cifar10_jpg_test.tar.gz")
    folder, taken = tmp_path / "images", {}
    with tarfile.open(tar) as archive:                                    # 12 JPEGs of each of three classes
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and parts[1] in ("cat", "ship", "truck") and taken.get(parts[1], 0) < 12:
                taken[parts[1]] = taken.get(parts[1], 0) + 1
                (folder / parts[1]).mkdir(parents=True, exist_ok=True)
                (folder / parts[1] / parts[2]).write_bytes(archive.extractfile(member).read())
    out = run_smoke_cli("course_lib.train.contrastive", "--method", "moco", "--images", str(folder), "--epochs", "2",
                        "--batch-size", "8", "--width", "4", "--out-dim", "8", "--queue-size", "32", "--knn-k", "5",
                        "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    assert "moco: 29 training images" in out.stdout                       # 36 minus round(36 * 0.2)
    assert 0.0 <= _last_metrics(out.stdout)["knn_acc"] <= 1.0


# ---------------------------------------------------------------------------------------------- DAVIS
def test_propagation_cli_propagates_a_davis_sequence():
    root, sequence = _need("davis2016_sample"), "dog"
    out = run_smoke_cli("course_lib.experiments.propagation", "--davis", str(root), "--sequence", sequence,
                        "--max-frames", "4")
    assert out.returncode == 0, out.stderr
    assert f"J on DAVIS {sequence}" in out.stdout
    metrics = _last_metrics(out.stdout)
    assert set(metrics) == {"j_mean", "j_pixels", "j_pixels_lab", "j_copy"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values()) and metrics["j_copy"] > 0.2   # 4 frames: little motion


def test_propagation_default_size_fits_every_davis_sequence():
    root = _need("davis2016_sample")
    exp, stride = propagation.PropagationExperiment(), ColorizationConfig().stride
    frames_per_sequence = {}
    for seq in davis_sequences(root):
        frames, masks = propagation._load_davis(root, seq, exp, stride)
        assert frames.shape[2:] == (3, 96, 170) and masks.shape[-2:] == (96, 170)    # 854x480 -> 170x96
        assert bool((masks[0, 0] > 0).any())                              # an object to propagate
        frames_per_sequence[seq] = frames.shape[1]
    assert frames_per_sequence == {"blackswan": 50, "car-shadow": 40, "dog": 60}


# ----------------------------------------------------------------------------------------------- lego
def test_nerf_cli_tiny_trainer_runs_on_the_lego_views():
    lego = _need("nerf_lego", "lego_train_100x100_derived.npz")
    out = run_smoke_cli("course_lib.experiments.nerf", "--data", str(lego), "--holdout", "10", "--trainer", "tiny",
                        "--minutes", "0.05")
    assert out.returncode == 0, out.stderr
    assert "held-out views: 10 of 100" in out.stdout
    assert 5.0 < _last_metrics(out.stdout)["heldout_psnr_db"] < 40.0


def test_nerf_default_holdouts_fit_the_lego_views():
    lego = _need("nerf_lego", "lego_train_100x100_derived.npz")
    data = nerf._load(str(lego), 6, nerf.NerfExperiment().size)           # the experiment's default --holdout
    assert int(data.holdout.sum()) == 6 and bool(data.holdout[-6:].all()) and len(data) == 100
    views, mask = load_views(str(lego))
    train, held = split_views(views, 10, mask)                            # the benchmark's default --holdout
    assert (len(train), len(held)) == (90, 10) and views.hw == (100, 100)
    with pytest.raises(ValueError, match=r"--holdout must be in \[1, 99\] for 100 views, got 100"):
        nerf._load(str(lego), 100, 64)


def test_nerf_bench_cli_runs_the_fast_preset_on_the_lego_views():
    lego = _need("nerf_lego", "lego_train_100x100_derived.npz")
    out = run_smoke_cli("course_lib.nerf.bench", "--data", str(lego), "--minutes", "0.03", "--at", "0.03",
                        "--holdout", "10", "--presets", "fast", "--threads", "1", "--markdown", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "on lego_train_100x100_derived.npz, last 10 views held out" in out.stdout
    row = re.search(r"\| 0\.03 min \| ([\d.]+) \((\d+)\) \|", out.stdout)
    assert row is not None, out.stdout
    assert 5.0 < float(row.group(1)) < 40.0 and int(row.group(2)) >= 1


# --------------------------------------------------------------------------------------- data scripts
def test_tiny_nerf_script_verifies_and_loads_a_local_copy_of_the_lego_views(tmp_path, capsys):
    lego = _need("nerf_lego", "lego_train_100x100_derived.npz")
    sha = hashlib.sha256(lego.read_bytes()).hexdigest()
    script = _script("tiny_nerf_lego")
    assert script.main(["--dir", str(tmp_path), "--url", lego.as_uri(), "--sha256", sha, "--quiet"]) == 0
    assert "100 views of 100x100, focal 138.89" in capsys.readouterr().out
    assert (tmp_path / "tiny_nerf_data.npz").read_bytes() == lego.read_bytes()
    assert script.main(["--dir", str(tmp_path / "b"), "--url", lego.as_uri(), "--sha256", "0" * 64, "--quiet"]) == 1
    assert sha in capsys.readouterr().err                                 # the mismatch reports the real hash


def test_davis_script_unpacks_a_sequence_from_an_archive_of_the_sample(tmp_path, capsys):
    root = _need("davis2016_sample")
    archive = tmp_path / "davis.zip"
    with zipfile.ZipFile(archive, "w") as zf:                             # three frames of car-shadow
        for kind, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
            for i in range(3):
                name = f"{kind}/480p/car-shadow/{i:05d}.{ext}"
                zf.write(root / name, f"DAVIS/{name}")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    argv = ["--dir", str(tmp_path / "out"), "--url", archive.as_uri(), "--sha256", sha, "--sequences", "car-shadow",
            "--quiet"]
    assert _script("davis2017_subset").main(argv) == 0
    assert "car-shadow (first frames load as [1, 2, 3, 480, 854])" in capsys.readouterr().out
    assert len(list((tmp_path / "out" / "DAVIS" / "Annotations" / "480p" / "car-shadow").iterdir())) == 3


def test_mnist_script_names_the_file_a_partial_mirror_lacks(tmp_path, capsys):
    root = _need("mnist")
    assert _script("mnist").main(["--dir", str(tmp_path), "--mirror", root.as_uri(), "--quiet"]) == 1
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err
    assert not (tmp_path / "train-images-idx3-ubyte.gz").exists()
