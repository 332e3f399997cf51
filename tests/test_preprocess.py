import numpy as np
import pytest

from digitrec.pipeline import NARROWER
from digitrec.preprocess import (
    has_ink,
    prepare_dataset,
    prepare_dataset_readings,
    prepare_image,
    prepare_readings,
    resize,
    to_mnist_polarity,
    to_model_input,
)
from tests.test_pipeline import bold_ring, stretched_one


def test_dark_ink_on_paper_is_inverted_to_mnist_polarity():
    paper = np.full((10, 10), 230, np.uint8)
    paper[3:7, 4:6] = 20
    flipped = to_mnist_polarity(paper)
    assert flipped[0, 0] == 25 and flipped[4, 4] == 235
    mnist_like = 255 - paper
    np.testing.assert_array_equal(to_mnist_polarity(mnist_like), mnist_like)


def test_blank_images_have_no_ink():
    assert not has_ink(np.full((28, 28), 200, np.uint8))
    assert not has_ink(np.random.default_rng(0).integers(100, 110, (28, 28)).astype(np.uint8))
    stroke = np.zeros((28, 28), np.uint8)
    stroke[10:18, 13] = 255
    assert has_ink(stroke)


def test_prepare_image_by_model_size():
    big = np.zeros((280, 140, 3), np.uint8) + 255
    big[50:230, 60:80] = 0  # a dark vertical stroke on white
    mnist_like = prepare_image(big, (28, 28))
    assert mnist_like.shape == (28, 28) and mnist_like.dtype == np.uint8
    assert mnist_like[14, 14] > 200 and mnist_like[0, 0] == 0
    tutorial = prepare_image(big, (8, 8))
    assert tutorial.shape == (8, 8) and tutorial[4, 3:5].max() >= 120
    assert prepare_image(np.full((50, 50), 128, np.uint8)) is None
    assert prepare_image(np.full((50, 50), 128, np.uint8), (8, 8)) is None
    assert resize(np.zeros((8, 8), np.uint8), (28, 28)).shape == (28, 28)


def test_prepare_dataset():
    mnist = np.zeros((3, 28, 28), np.uint8)
    assert prepare_dataset(mnist, (28, 28), normalized=True) is mnist
    usps = np.zeros((2, 16, 16), np.uint8)
    usps[:, 2:14, 7:9] = 255
    out = prepare_dataset(usps, (28, 28), normalized=False)
    assert out.shape == (2, 28, 28)
    rows = np.nonzero(out[0].max(axis=1))[0]
    assert 18 <= len(rows) <= 22  # fitted into the 20-pixel box, not stretched to 28
    assert prepare_dataset(usps, (8, 8), normalized=False).shape == (2, 8, 8)


def test_model_input_scaling():
    x = to_model_input(np.array([[[0, 255], [51, 102]]], np.uint8))
    assert x.shape == (1, 2, 2, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, :, 0], [[0, 1], [0.2, 0.4]])
    with pytest.raises(ValueError):
        to_model_input(np.zeros((2, 2), np.uint8))


def test_readings_of_a_picture():
    assert prepare_readings(np.full((30, 30), 200, np.uint8)) == []
    page = np.full((60, 60), 230, np.uint8)
    page[10:50, 28:33] = 20
    (one,) = prepare_readings(page)
    assert one.ink_dark and one.image.shape == (28, 28)
    np.testing.assert_array_equal(prepare_image(page), one.image)
    first, second = prepare_readings(bold_ring())
    assert first.ink_dark and not second.ink_dark
    np.testing.assert_array_equal(prepare_image(bold_ring()), first.image)
    # Ink that fills its frame is read narrowed too, with the same polarity.
    widths = [(r.ink_dark, r.width) for r in prepare_readings(stretched_one())]
    assert widths == [(True, 1.0)] + [(True, share) for share in NARROWER]
    # The 8x8 tutorial's plain path has one reading and no pipeline polarity.
    (small,) = prepare_readings(page, (8, 8))
    assert small.ink_dark is None and small.image.shape == (8, 8)


def test_dataset_readings_keep_the_second_reading_by_index():
    page = np.zeros((16, 16), np.uint8)
    page[3:13, 7:9] = 255  # a thin 1, white on black: no doubt
    images = np.stack([page, bold_ring()])
    first, others = prepare_dataset_readings(images, (28, 28), normalized=False)
    assert first.shape == (2, 28, 28) and list(others) == [1]
    np.testing.assert_array_equal(first, prepare_dataset(images, (28, 28), normalized=False))
    readings = prepare_readings(bold_ring())
    assert [(r.ink_dark, r.width) for r in others[1]] == [(r.ink_dark, r.width) for r in readings]
    np.testing.assert_array_equal(others[1][0].image, first[1])
    (light,) = [r for r in others[1] if r.ink_dark is False and r.width == 1]
    assert light.image[14, 14] < 64  # the ring's hole is paper in the other polarity
