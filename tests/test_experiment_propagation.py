"""Does the colourisation / mask-propagation experiment measure what the a2_pretext notebook states?"""
import math
from pathlib import Path

import pytest
import torch

from course_lib import attention_color_propagation, rgb_to_lab
from course_lib.experiments import colorization as col
from course_lib.experiments import propagation as prop
from helpers import run_smoke_cli, unimplemented

DAVIS = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "davis2016_sample"


# ------------------------------------------------------------------------------------------------ J score
def test_j_score_known_cases():
    gt = torch.zeros(3, 4, 4, dtype=torch.long)
    gt[:, :2, :2] = 1                                            # a 2x2 object in every frame
    assert prop.j_score(gt.clone(), gt) == 1.0
    shifted = torch.zeros_like(gt)
    shifted[:, :2, 1:3] = 1                                      # overlaps 2 of 6 pixels of the union
    shifted[0] = gt[0]
    assert prop.j_score(shifted, gt) == pytest.approx(1 / 3)
    assert prop.j_score(torch.zeros_like(gt), gt) == 0.0


def test_j_score_ignores_the_given_first_frame_and_averages_objects():
    gt = torch.zeros(2, 2, 4, dtype=torch.long)
    gt[:, :, :2], gt[:, :, 2:] = 1, 2
    pred = gt.clone()
    pred[0] = 0                                                  # frame 0 is not scored
    pred[1, :, 2:] = 1                                           # object 2 lost to object 1 in frame 1
    # object 1: IoU 4 / 8 = 0.5; object 2: 0 -> mean 0.25
    assert prop.j_score(pred, gt) == pytest.approx(0.25)


def test_j_score_counts_an_object_absent_from_both_masks_as_perfect():
    gt = torch.zeros(3, 2, 2, dtype=torch.long)
    gt[0, 0, 0] = 1                                              # the object leaves after frame 0
    assert prop.j_score(torch.zeros_like(gt), gt) == 1.0


def test_j_score_rejects_bad_inputs():
    with pytest.raises(ValueError, match="pred and gt"):
        prop.j_score(torch.zeros(2, 3, 3, dtype=torch.long), torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="no object"):
        prop.j_score(torch.zeros(2, 3, 3, dtype=torch.long), torch.zeros(2, 3, 3, dtype=torch.long))


# ------------------------------------------------------------------------------------------------ propagation
def _moving_square_clip(t_len=5, size=16, side=6, step=2):
    """A red square sliding right over a blue background, aligned with a stride-2 grid: frames [T, 3, S, S],
    masks [T, S, S]."""
    frames = torch.zeros(t_len, 3, size, size)
    frames[:, 2] = 0.8
    masks = torch.zeros(t_len, size, size, dtype=torch.long)
    for t in range(t_len):
        x0 = step * t
        masks[t, 4 : 4 + side, x0 : x0 + side] = 1
    frames[:, 0] = masks.float()
    frames[:, 2] *= 1 - masks.float()
    return frames, masks


def test_identical_frames_with_distinct_features_copy_the_first_mask():
    feats = torch.eye(16).reshape(16, 4, 4)[None].expand(3, -1, -1, -1) * 1.0   # one unit vector per position
    mask = torch.randint(0, 3, (4, 4), generator=torch.Generator().manual_seed(0))
    mask[0, 0] = 1
    out = prop.propagate_masks(feats, mask, attention_color_propagation, temperature=0.01)
    assert out.shape == (3, 4, 4) and torch.equal(out, mask.expand(3, -1, -1))


def test_colour_pixels_track_a_uniformly_coloured_square():
    frames, masks = _moving_square_clip()
    ref, tgt = prop.pixel_features(frames, stride=2, colour=True)
    pred = prop.propagate_masks(tgt, masks[0], attention_color_propagation, 0.001, ref_feats=ref)
    copy = masks[:1].expand_as(masks)
    assert prop.j_score(pred, masks) == 1.0 and prop.j_score(copy, masks) < 0.5


def test_pixel_features_rank_reference_positions_by_distance():
    frames = torch.rand(2, 3, 4, 6, generator=torch.Generator().manual_seed(1))
    for colour in (False, True):
        ref, tgt = prop.pixel_features(frames, stride=2, colour=colour)
        c = 3 if colour else 1
        x = ref[0, :c].flatten(1).T                                # [6, C] reference positions
        y = tgt[1, :c].flatten(1).T                                # [6, C] target positions
        scores = ref[0].flatten(1).T @ tgt[1].flatten(1)           # [6 ref, 6 tgt]
        want = -0.5 * torch.cdist(x, y).pow(2)
        torch.testing.assert_close(scores.softmax(0), want.softmax(0), rtol=1e-4, atol=1e-6)


def test_paint_masks_gives_one_flat_colour_per_id():
    out = prop.paint_masks(torch.tensor([[[0, 1], [2, 20]]]))
    assert out.shape == (1, 3, 2, 2)
    assert torch.equal(out[0, :, 0, 0], torch.zeros(3)) and torch.equal(out[0, :, 0, 1], prop.PALETTE[1])
    assert torch.equal(out[0, :, 1, 1], prop.PALETTE[-1])          # ids beyond the palette share its last colour


def test_overlay_paints_only_objects():
    frames = torch.full((1, 3, 2, 2), 0.5)
    masks = torch.tensor([[[0, 1], [2, 0]]])
    out = prop.overlay(frames, masks, alpha=1.0)
    assert torch.equal(out[0, :, 0, 0], frames[0, :, 0, 0])
    assert torch.equal(out[0, :, 0, 1], prop.PALETTE[1]) and torch.equal(out[0, :, 1, 0], prop.PALETTE[2])


# ------------------------------------------------------------------------------------------------ colourisation
def test_pooled_onehot_holds_class_fractions():
    ids = torch.tensor([[[0, 1, 2, 2], [1, 1, 2, 2]]])              # [1, 2, 4]
    out = col.pooled_onehot(ids, 3, 2)                             # [1, 3, 1, 2]
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.25, 0.75, 0.0]))
    torch.testing.assert_close(out[0, :, 0, 1], torch.tensor([0.0, 0.0, 1.0]))


def test_quantizer_recovers_well_separated_colours():
    colours = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.9]])
    ids = torch.randint(0, 3, (4, 8, 8), generator=torch.Generator().manual_seed(2))
    frames = colours[ids].permute(0, 3, 1, 2)                      # [4, 8, 8, 3] -> [4, 3, 8, 8]
    q = col.ColorQuantizer.fit(frames, n_colors=3, n_samples=256, seed=0)
    codes = q.encode(frames)
    # the same colour always gets the same code, different colours different codes
    assert all(codes[ids == k].unique().numel() == 1 for k in range(3))
    assert codes[ids == 0][0] != codes[ids == 1][0] != codes[ids == 2][0] != codes[ids == 0][0]
    ab = rgb_to_lab(colours[:, :, None, None])[:, 1:, 0, 0]        # [3, 2]
    onehot = torch.nn.functional.one_hot(codes[:, :1, :1], 3).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(q.decode(onehot)[:, :, 0, 0], ab[ids[:, 0, 0]], atol=1e-3, rtol=1e-4)


def test_colorization_loss_is_minus_log_of_the_target_probability():
    probs = torch.tensor([[0.5, 0.25], [0.5, 0.75]])[None, :, None, :]      # [1, K=2, 1, 2]
    target = torch.tensor([[[0, 1]]])
    want = -(math.log(0.5 + 1e-6) + math.log(0.75 + 1e-6)) / 2
    assert col.colorization_loss(probs, target).item() == pytest.approx(want, rel=1e-6)


def test_feature_net_gives_unit_features_at_its_stride():
    for stride in (1, 2, 4):
        net = col.FeatureNet(col.ColorizationConfig(width=8, feat_dim=5, stride=stride)).eval()
        out = net(torch.rand(2, 1, 16, 16))
        assert out.shape == (2, 5, 16 // stride, 16 // stride)
        torch.testing.assert_close(out.norm(dim=1), torch.ones(2, 16 // stride, 16 // stride))
    with pytest.raises(ValueError, match="divisible"):
        col.FeatureNet(col.ColorizationConfig(width=8, stride=4))(torch.rand(1, 1, 10, 10))


class _PositionFeatures(torch.nn.Module):
    """A stand-in feature net: a one-hot vector per pixel position (every position matches only itself)."""

    stride = 1

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, grey):
        n, _, h, w = grey.shape
        return torch.eye(h * w).reshape(h * w, h, w)[None].expand(n, -1, -1, -1)


def test_predicted_colours_copied_position_by_position_repaint_the_frame():
    frames, _ = _moving_square_clip(t_len=2)                        # two pure colours
    q = col.ColorQuantizer.fit(frames, n_colors=2, n_samples=512)
    out = col.predict_colors(_PositionFeatures(), q, frames[1:], frames[1:], attention_color_propagation,
                             temperature=0.01)
    torch.testing.assert_close(out, frames[1:], atol=2e-3, rtol=0)


def test_training_calls_the_given_attention_with_copied_colour_distributions():
    seen = []

    def spy(ref_feats, tgt_feats, ref_colors, temperature):
        seen.append((ref_colors.sum(1), temperature))
        return attention_color_propagation(ref_feats, tgt_feats, ref_colors, temperature)

    frames = torch.rand(2, 3, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    cfg = col.ColorizationConfig(width=4, feat_dim=4, n_colors=4, steps=2, batch_size=3, temperature=0.3)
    net, q, losses = col.train_colorizer(frames, spy, cfg, progress=False)
    assert len(seen) == 2 and len(losses) == 2 and not net.training and q.n_colors == 4
    for sums, t in seen:
        assert t == 0.3 and torch.allclose(sums, torch.ones_like(sums))      # one distribution per cell


def test_experiment_reports_an_unimplemented_attention_clearly():
    with pytest.raises(NotImplementedError, match="attention_color_propagation"):
        prop.run(unimplemented, prop.PropagationExperiment.smoke(), progress=False)


def test_cli_smoke_run_prints_the_metrics_last():
    out = run_smoke_cli("course_lib.experiments.propagation")
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("j_mean=") and " j_pixels=" in last and " j_copy=" in last


def test_cli_rejects_a_sequence_without_davis(capsys):
    with pytest.raises(SystemExit) as exc:
        prop.main(["--sequence", "dog"])
    assert exc.value.code == 2 and "--davis" in capsys.readouterr().err


@pytest.mark.realdata
@pytest.mark.skipif(not DAVIS.is_dir(), reason="DAVIS-2016 sample not available")
def test_cli_propagates_a_davis_sequence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    gif = tmp_path / "car.gif"
    argv = ["--davis", str(DAVIS), "--sequence", "car-shadow", "--finetune-steps", "2", "--gif", str(gif)]
    assert prop.main(argv) == 0
    assert gif.stat().st_size > 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    values = dict(kv.split("=") for kv in last.split())
    assert set(values) == {"j_mean", "j_pixels", "j_pixels_lab", "j_copy"}
    assert all(0.0 <= float(v) <= 1.0 for v in values.values())
    assert float(values["j_copy"]) > 0.3                          # the car moves slowly: the first mask overlaps


@pytest.mark.slow
def test_default_settings_reach_the_stated_numbers():
    m = prop.run(exp=prop.PropagationExperiment(), progress=False, device=torch.device("cpu"))["metrics"]
    assert m["j_mean"] >= m["j_pixels"] + 0.2, m                   # the notebook's stated margins
    assert m["j_mean"] >= m["j_copy"] + 0.2, m
    assert m["j_mean"] >= 0.45, m
