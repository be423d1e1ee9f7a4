"""Does rotate_batch produce every image in all four orientations, image-major, as np.rot90 does?"""
import numpy as np
import pytest
import torch

from course_lib import rotate_batch
from course_lib.naive import rotate_batch_naive
from helpers import assert_unchanged, randn, snapshot


@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (3, 3, 5, 5), (4, 2, 8, 8)])
def test_matches_the_pixel_loop(shape, gen):
    x = randn(*shape, gen=gen)
    rot, labels = rotate_batch(x)
    rot_n, labels_n = rotate_batch_naive(x)
    assert torch.equal(rot, rot_n) and torch.equal(labels, labels_n)


def test_counter_clockwise_like_numpy_and_image_major(gen):
    x = randn(3, 2, 6, 6, gen=gen)
    rot, labels = rotate_batch(x)
    for i in range(3):
        for k in range(4):
            expected = np.rot90(x[i].numpy(), k, axes=(-2, -1))
            np.testing.assert_array_equal(rot[4 * i + k].numpy(), expected)
            assert labels[4 * i + k].item() == k


def test_a_quarter_turn_moves_the_top_row_to_the_left_column():
    img = torch.zeros(1, 1, 3, 3)
    img[0, 0, 0, :] = torch.tensor([1.0, 2.0, 3.0])      # top row, left to right
    rot, _ = rotate_batch(img)
    # counter-clockwise: the top row becomes the left column, read bottom to top
    assert rot[1, 0, :, 0].tolist() == [3.0, 2.0, 1.0]


def test_four_quarter_turns_are_the_identity(gen):
    x = randn(2, 3, 7, 7, gen=gen)
    y = x
    for _ in range(4):
        y = rotate_batch(y)[0][1::4]                      # keep the one-quarter-turn copies
    assert torch.equal(y, x)


def test_labels_are_int64_balanced_and_output_is_not_a_view(device, gen):
    x = torch.randint(0, 255, (5, 3, 4, 4), generator=gen, dtype=torch.uint8).to(device)
    before = snapshot(x)
    rot, labels = rotate_batch(x)
    assert rot.dtype == torch.uint8 and rot.device.type == device.type and rot.shape == (20, 3, 4, 4)
    assert labels.dtype == torch.int64 and labels.device.type == device.type
    assert torch.bincount(labels).tolist() == [5, 5, 5, 5]
    rot[0].fill_(0)
    assert_unchanged(before, (x,))


def test_gradients_flow_back_to_the_images(gen):
    x = randn(2, 1, 3, 3, gen=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: rotate_batch(t)[0], (x,))


@pytest.mark.parametrize("shape,match", [((2, 3, 4, 5), "square"), ((3, 4, 4), "4-D"), ((1, 1, 1, 2, 2), "4-D")])
def test_bad_shapes_raise_value_error(shape, match):
    with pytest.raises(ValueError, match=match):
        rotate_batch(torch.zeros(shape))
