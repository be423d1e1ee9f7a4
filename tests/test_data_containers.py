"""Do the dataset containers reject inconsistent fields by name, and do subsets and splits keep every
per-item field aligned?"""
import pytest
import torch

from course_lib.data import ImageDataset, NerfData, VideoDataset


def _images(n=6):
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 2, 2).clone() / n
    return ImageDataset(images=images, labels=torch.arange(n) % 3, classes=["a", "b", "c"],
                        masks=images[:, 0].clone(), attributes={"angle": torch.arange(n, dtype=torch.float32)})


def test_subset_keeps_images_labels_masks_and_attributes_aligned():
    d = _images()
    for index in (torch.tensor([4, 1]), torch.tensor([False, True, False, False, True, False])):
        s = d.subset(index)
        assert len(s) == 2 and sorted(s.attributes["angle"].long().tolist()) == [1, 4]
        for i, r in enumerate(s.attributes["angle"].long().tolist()):
            assert torch.equal(s.images[i], d.images[r]) and s.labels[i] == d.labels[r]
            assert torch.equal(s.masks[i], d.masks[r])
    with pytest.raises(ValueError, match="boolean index must have shape"):
        d.subset(torch.tensor([True, False]))


def test_split_partitions_the_items_reproducibly():
    d = _images(10)
    train, hold = d.split(0.3, seed=4)
    again, _ = d.split(0.3, seed=4)
    ids = sorted(train.attributes["angle"].long().tolist() + hold.attributes["angle"].long().tolist())
    assert ids == list(range(10)) and len(hold) == 3
    assert torch.equal(train.images, again.images)
    with pytest.raises(ValueError, match="holdout_fraction"):
        d.split(1.0)


@pytest.mark.parametrize("make, needle", [
    (lambda: ImageDataset(torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long), ["a"]), "images must be"),
    (lambda: ImageDataset(torch.zeros(2, 3, 4, 4), torch.zeros(3, dtype=torch.long), ["a"]), "labels must be"),
    (lambda: ImageDataset(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long), ["a"], masks=torch.zeros(2, 4)),
     "masks must be"),
    (lambda: VideoDataset(torch.zeros(1, 2, 1, 4, 4), torch.zeros(1, 2, 4, 4, dtype=torch.long)), "frames must be"),
    (lambda: VideoDataset(torch.zeros(1, 2, 3, 4, 4), torch.zeros(1, 3, 4, 4, dtype=torch.long)), "masks must be"),
    (lambda: NerfData(torch.zeros(2, 4, 4, 3), torch.zeros(3, 4, 4), 10.0), "poses must be"),
    (lambda: NerfData(torch.zeros(2, 4, 4, 3), torch.zeros(2, 4, 4), 0.0), "focal"),
    (lambda: NerfData(torch.zeros(2, 4, 4, 3), torch.zeros(2, 4, 4), 1.0, near=6.0, far=2.0), "near < far"),
    (lambda: NerfData(torch.zeros(2, 4, 4, 3), torch.zeros(2, 4, 4), 1.0, holdout=torch.zeros(2)), "holdout"),
])
def test_inconsistent_fields_raise_value_errors_naming_them(make, needle):
    with pytest.raises(ValueError, match=needle):
        make()


def test_video_object_count_and_nerf_views():
    masks = torch.zeros(2, 3, 4, 4, dtype=torch.long)
    masks[0, 1, 0, 0], masks[1, 2, 3, 3] = 2, 5
    clips = VideoDataset(torch.zeros(2, 3, 3, 4, 4), masks)
    assert clips.num_objects.tolist() == [2, 5] and clips.names == ["clip-0", "clip-1"]
    views = NerfData(torch.rand(3, 4, 4, 3), torch.eye(4).expand(3, 4, 4).clone(), 5.0,
                     holdout=torch.tensor([False, True, False]))
    assert len(views.train_split()) == 2 and torch.equal(views.holdout_split().images[0], views.images[1])
