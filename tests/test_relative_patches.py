"""Does relative_patch_pairs cut the centre cell and the labelled neighbour of Doersch et al.'s 3x3 grid?"""
import pytest
import torch

from course_lib.naive import relative_patch_pairs_naive
from course_lib.pretext import relative_patch_pairs
from helpers import assert_unchanged, randn, snapshot


def _labels(n, gen):
    return torch.randint(0, 8, (n,), generator=gen)


@pytest.mark.parametrize(
    "shape,patch,gap",
    [((1, 1, 3, 3), 1, 0), ((3, 2, 7, 9), 2, 0), ((4, 3, 16, 12), 3, 1), ((6, 1, 21, 20), 4, 2),
     ((2, 3, 11, 30), 3, 1)],
)
def test_matches_the_pixel_loop(shape, patch, gap, gen):
    x = randn(*shape, gen=gen)
    pos = _labels(shape[0], gen)
    center, neighbor = relative_patch_pairs(x, pos, patch, gap)
    center_n, neighbor_n = relative_patch_pairs_naive(x, pos, patch, gap)
    assert center.shape == neighbor.shape == (shape[0], shape[1], patch, patch)
    assert torch.equal(center, center_n) and torch.equal(neighbor, neighbor_n)


def test_each_label_is_its_grid_cell_on_an_arange_image():
    # 10 x 11 image, patch 2, gap 1: the grid is 8 x 8 wide, y0 = (10 - 8) // 2 = 1, x0 = (11 - 8) // 2 = 1,
    # so cell (r, c) starts at row 1 + 3r, column 1 + 3c. Pixel (y, x) holds the value 11*y + x.
    img = torch.arange(110, dtype=torch.float64).reshape(1, 1, 10, 11).expand(8, 1, 10, 11)
    top_left = {0: (1, 1), 1: (1, 4), 2: (1, 7), 3: (4, 1), 4: (4, 7), 5: (7, 1), 6: (7, 4), 7: (7, 7)}
    center, neighbor = relative_patch_pairs(img, torch.arange(8), patch=2, gap=1)
    for k, (y, x) in top_left.items():
        v = 11 * y + x
        expected = torch.tensor([[v, v + 1], [v + 11, v + 12]], dtype=torch.float64)
        assert torch.equal(neighbor[k, 0], expected), f"label {k}"
        assert torch.equal(center[k, 0], torch.tensor([[48.0, 49.0], [59.0, 60.0]], dtype=torch.float64))   # (4, 4)


def test_leftover_margin_is_split_with_floor_division():
    # 12 x 13 image, patch 3, gap 0: grid 9 wide, y0 = 3 // 2 = 1, x0 = 4 // 2 = 2; the centre cell is at (4, 5)
    img = torch.arange(156, dtype=torch.float64).reshape(1, 1, 12, 13)
    center, neighbor = relative_patch_pairs(img, torch.tensor([7]), patch=3, gap=0)
    assert center[0, 0, 0, 0].item() == 13 * 4 + 5
    assert neighbor[0, 0, 0, 0].item() == 13 * 7 + 8                     # cell (2, 2)
    _, top_left = relative_patch_pairs(img, torch.tensor([0]), patch=3, gap=0)
    assert top_left[0, 0, 0, 0].item() == 13 * 1 + 2                     # cell (0, 0) starts at (y0, x0)


def test_a_grid_that_fills_the_image_exactly(gen):
    x = randn(2, 3, 8, 8, gen=gen)                                     # 3*2 + 2*1 = 8: no margin at all
    _, corner = relative_patch_pairs(x, torch.tensor([0, 7]), patch=2, gap=1)
    assert torch.equal(corner[0], x[0, :, 0:2, 0:2]) and torch.equal(corner[1], x[1, :, 6:8, 6:8])


def test_gradients_flow_to_exactly_the_cropped_pixels(gen):
    x = randn(3, 2, 9, 9, gen=gen, requires_grad=True)
    pos = torch.tensor([1, 5, 6])
    assert torch.autograd.gradcheck(lambda t: relative_patch_pairs(t, pos, 2, 1), (x,))
    center, neighbor = relative_patch_pairs(x, pos, 2, 1)
    (center.sum() + 2 * neighbor.sum()).backward()
    # every image contributes 2*2*2 pixels per crop: the centre with weight 1, the neighbour with weight 2
    assert x.grad.sum().item() == pytest.approx(3 * 2 * 4 * 3)
    assert torch.count_nonzero(x.grad).item() == 3 * 2 * 4 * 2


def test_follows_dtype_and_device_and_does_not_alias_the_input(device, dtype, gen):
    x = randn(4, 3, 12, 12, gen=gen, dtype=dtype, device=device)
    pos = _labels(4, gen)                                              # on the CPU: moved to the images' device
    before = snapshot(x, pos)
    center, neighbor = relative_patch_pairs(x, pos, 3, 1)
    for out in (center, neighbor):
        assert out.dtype == dtype and out.device.type == device.type and out.shape == (4, 3, 3, 3)
    center.fill_(0.0)
    neighbor.fill_(0.0)
    assert_unchanged(before, (x, pos))


def test_integer_images_and_positions_on_the_images_device(device, gen):
    x = torch.randint(0, 255, (3, 1, 7, 7), generator=gen, dtype=torch.uint8).to(device)
    pos = torch.tensor([0, 3, 7], dtype=torch.int32, device=device)
    center, neighbor = relative_patch_pairs(x, pos, 2, 0)
    center_n, neighbor_n = relative_patch_pairs_naive(x.cpu(), pos.cpu(), 2, 0)
    assert center.dtype == torch.uint8
    assert torch.equal(center.cpu(), center_n) and torch.equal(neighbor.cpu(), neighbor_n)


def test_an_empty_batch_gives_empty_crops():
    center, neighbor = relative_patch_pairs(torch.zeros(0, 3, 9, 9), torch.zeros(0, dtype=torch.long), 3, 0)
    assert center.shape == neighbor.shape == (0, 3, 3, 3)


@pytest.mark.parametrize(
    "shape,pos,patch,gap,match",
    [
        ((2, 1, 7, 9), [0, 1], 2, 1, "patch=2 and gap=1"),           # the 8 x 8 grid is taller than H = 7
        ((2, 1, 9, 7), [0, 1], 2, 1, "does not fit"),                # ... and wider than W = 7
        ((2, 1, 9, 9), [0, 1], 0, 1, "patch must be >= 1"),
        ((2, 1, 9, 9), [0, 1], 2, -1, "gap must be >= 0"),
        ((2, 1, 9, 9), [0, 1], 2.0, 1, "patch must be an int"),
        ((2, 1, 9, 9), [0, 8], 2, 1, "0..7"),
        ((2, 1, 9, 9), [-1, 0], 2, 1, "0..7"),
        ((2, 1, 9, 9), [[0], [1]], 2, 1, r"positions must be a \[N\] tensor with N = 2"),
        ((2, 1, 9, 9), [0, 1, 2], 2, 1, r"N = 2 from images, got \[3\]"),
        ((2, 1, 9, 9), [0.0, 1.0], 2, 1, "integer"),
        ((1, 9, 9), [0], 2, 1, "images must be 4-D"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(shape, pos, patch, gap, match):
    with pytest.raises(ValueError, match=match):
        relative_patch_pairs(torch.zeros(shape), torch.tensor(pos), patch, gap)


def test_positions_must_be_a_tensor():
    with pytest.raises(ValueError, match="positions must be a"):
        relative_patch_pairs(torch.zeros(2, 1, 9, 9), [0, 1], 2, 1)
