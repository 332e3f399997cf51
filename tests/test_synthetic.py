import numpy as np
import pytest

from digitrec import synthetic
from digitrec.errors import DataError


def test_non_digits_are_pipeline_inputs_and_seeded():
    first = synthetic.non_digits(12, seed=3)
    assert first.shape == (12, 28, 28) and first.dtype == np.uint8
    assert (first.reshape(12, -1).max(axis=1) > 0).all()  # never blank
    np.testing.assert_array_equal(first, synthetic.non_digits(12, seed=3))


def test_every_generator_draws_dark_on_white():
    rng = np.random.default_rng(0)
    for name, generator in synthetic.GENERATORS.items():
        if name == "blank page":
            continue  # nothing written: tested below
        picture = generator(rng)
        assert picture.shape == (synthetic.CANVAS, synthetic.CANVAS), name
        assert picture.dtype == np.uint8 and np.ptp(picture) > 100, name


def test_blank_pages_are_pages_and_only_kind_set_2_teaches_them():
    rng = np.random.default_rng(0)
    for _ in range(20):
        page = synthetic.blank_page(rng)
        assert page.dtype == np.uint8 and page.ndim == 2
        assert min(page.shape) >= 96 and max(page.shape) <= 320
    assert "blank page" not in synthetic.NON_DIGIT_WEIGHTS[1]  # the best preset's data
    assert synthetic.NON_DIGIT_WEIGHTS[2]["blank page"] > 0
    for weights in synthetic.NON_DIGIT_WEIGHTS.values():
        assert abs(sum(weights.values()) - 1) < 1e-9
    second = synthetic.non_digits(16, seed=3, kind_set=2)
    assert second.shape == (16, 28, 28) and (second.reshape(16, -1).max(axis=1) > 0).all()
    assert not np.array_equal(second, synthetic.non_digits(16, seed=3, kind_set=1))
    with pytest.raises(ValueError, match="kind set"):
        synthetic.non_digits(1, kind_set=3)


def test_thin_lines_are_not_taught_as_non_digits():
    line = np.zeros((40, 40), bool)
    line[5:35, 19:21] = True
    disk = np.hypot(*np.mgrid[-20:20, -20:20]) < 12
    assert synthetic._elongation(line) > 2.5  # would be redrawn: it could be a 1
    assert synthetic._elongation(disk) < 1.2


def test_printed_digits_have_their_labels():
    images, labels = synthetic.printed_digits(10, seed=0)
    assert images.shape == (10, 28, 28) and labels.shape == (10,)
    assert set(labels.tolist()) <= set(range(10))
    assert not set(synthetic.NOT_DIGITS) & set("0123456789")


def test_pen_shape_sets_keep_earlier_sets_as_they_were_and_add_variants():
    first, second = synthetic.pen_shapes(1), synthetic.pen_shapes(2)
    assert first is synthetic.STROKE_DIGITS  # the bundled model's training data, unchanged
    for digit in range(10):
        assert second[digit][: len(first[digit])] == first[digit]
    assert {d for d in range(10) if len(second[d]) > len(first[d])} == {0, 2, 6, 8}
    images, labels = synthetic.pen_digits(12, seed=3, shape_set=2)
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, synthetic.pen_digits(12, seed=3, shape_set=1)[1])
    third = synthetic.pen_shapes(3)
    for digit in range(10):
        assert third[digit][: len(second[digit])] == second[digit]
    assert {d for d in range(10) if len(third[d]) > len(second[d])} == {4, 9}
    with pytest.raises(ValueError, match="shape set"):
        synthetic.pen_shapes(4)


def _stroke_digit(rng) -> np.ndarray:
    """A made-up MNIST-like digit: a boxy 0 with strokes as bold as MNIST's boldest,
    white on black, 28x28. (Not a solid bar half the digit's width: drawn at photo size,
    that is wider than the pipeline's paper estimate, so only fragments of its rim are
    ink, and those are dropped as shading, ``pipeline.drop_shading``.)"""
    digit = np.zeros((28, 28), np.uint8)
    left, width, stroke = (
        int(rng.integers(5, 9)),
        int(rng.integers(10, 17)),
        int(rng.integers(3, 6)),
    )
    digit[4:24, left : left + width] = 255
    digit[4 + stroke : 24 - stroke, left + stroke : left + width - stroke] = 0
    return digit


def test_digit_pairs_are_two_digits_run_together_and_seeded():
    rng = np.random.default_rng(0)
    digits = np.stack([_stroke_digit(rng) for _ in range(20)])
    pairs = synthetic.digit_pairs(digits, 8, seed=1)
    assert pairs.shape == (8, 28, 28) and pairs.dtype == np.uint8
    np.testing.assert_array_equal(pairs, synthetic.digit_pairs(digits, 8, seed=1))
    for pair in pairs:  # fitted into 20x20 by its width: wider than tall
        rows, cols = np.nonzero(pair > 60)
        assert np.ptp(cols) + 1 >= np.ptp(rows) + 1
    # drawn dark on light at photo size, the two digits touching or crossing: one piece
    picture = synthetic.digit_pair(digits[0], digits[1], np.random.default_rng(2))
    assert picture.dtype == np.uint8 and picture.shape[0] >= 2 * 28
    assert picture.min() < 80 and np.median(picture) == 255
    from scipy import ndimage

    assert ndimage.label(picture < 128)[1] == 1


def test_narrow_pairs_are_not_taught_as_non_digits():
    """Two 1s crossing are narrow enough to be someone's digit: never drawn as a pair."""
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:15] = 255
    with pytest.raises(DataError, match="0 of 1 digit pairs"):
        synthetic.digit_pairs(np.stack([digit] * 3), 1, seed=0, tries=50)
