"""The gallery of hard cases: every condition draws a seeded picture with the ink where it
should be, negatives hold no digit, and the bench script writes the gallery to disk."""

import csv
import importlib.util
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

from digitrec import gallery, pipeline

from .conftest import REPO, write_fake_mnist

# Conditions that move the page (or resize it): the ink is no longer where the shape was.
MOVED = {"rotated", "perspective", "small", "paper-edge", "photo", "blur"}


def mnist_like(symbol: str = "7") -> np.ndarray:
    """An MNIST-like 28x28 digit (white on black, in a 20x20 box) from a stroke template."""
    strokes = [np.asarray(stroke) * 20 + 4 for stroke in gallery.STROKES[symbol]]
    return np.rint(gallery.draw_strokes(strokes, 2.5, size=28) * 255).astype(np.uint8)


@pytest.mark.parametrize("condition", list(gallery.CONDITIONS))
def test_every_condition_is_seeded_uint8_rgb(condition):
    source = (mnist_like(), 7)
    image, label = gallery.make_case(condition, source, np.random.default_rng(1))
    assert label == 7 and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    if condition == "small":
        assert image.shape[:2] == gallery.PHOTO
    elif condition == "paper-edge":
        assert min(image.shape[:2]) == gallery.CANVAS < max(image.shape[:2])
    else:
        assert image.shape[:2] == (gallery.CANVAS, gallery.CANVAS)
    again, _ = gallery.make_case(condition, source, np.random.default_rng(1))
    np.testing.assert_array_equal(image, again)
    other, _ = gallery.make_case(condition, source, np.random.default_rng(2))
    assert other.shape != image.shape or not np.array_equal(other, image)


def test_a_small_row_of_digits_keeps_its_shape():
    """``bench/read_gallery.py`` sends rows of digits through the conditions: shrunk into
    the photo, a row must stay as wide as it is, not be squeezed into a square."""
    row = np.ones((100, 400, 3), np.float32)
    row[30:70, 40:200] = 0.0  # a dark bar 4x as wide as tall
    photo = gallery.small_in_photo(row, np.random.default_rng(5))
    dark = photo.mean(axis=2) < 0.5
    ys, xs = np.nonzero(dark)
    assert photo.shape[:2] == gallery.PHOTO
    assert 3.5 < (np.ptp(xs) + 1) / (np.ptp(ys) + 1) < 4.5


@pytest.mark.parametrize("condition", sorted(set(gallery.CONDITIONS) - MOVED))
@pytest.mark.parametrize("source", [(mnist_like("2"), 2), 5])
def test_the_ink_stays_where_the_shape_is(condition, source):
    mask, _ = gallery.ink_shape(source, np.random.default_rng(3), pen="thick")
    image, _ = gallery.make_case(condition, source, np.random.default_rng(3), pen="thick")
    colours = image.astype(float) / 255
    ink = colours[mask > 0.9].mean(axis=0)
    paper = colours[~ndimage.binary_dilation(mask > 0.1, iterations=4)].mean(axis=0)
    assert np.linalg.norm(ink - paper) > 0.2, (ink, paper)


@pytest.mark.parametrize("source", [(mnist_like("3"), 3), 3, 8])
def test_a_clean_case_reaches_the_model_centred(source):
    for pen in ("thin", "thick"):
        image, _ = gallery.make_case("clean", source, np.random.default_rng(4), pen=pen)
        output = pipeline.normalize(image)
        assert output.max() > 200
        centre = np.array(ndimage.center_of_mass(output.astype(float)))
        assert np.abs(centre - 13.5).max() < 1.5


def test_negatives_hold_no_digit():
    rng = np.random.default_rng
    for condition in ("clean", "ruled", "squared"):
        image, label = gallery.make_case(condition, "blank", rng(5))
        assert label is None and pipeline.normalize_stages(image).blank
    # Blank paper in uneven light or a shadow: smooth, with no stroke-sized detail.
    for condition in ("lighting", "shadow"):
        image, _ = gallery.make_case(condition, "blank", rng(5))
        grey = image.mean(axis=2) / 255
        detail = grey - ndimage.gaussian_filter(grey, 6)
        assert np.ptp(grey) > 0.2 and np.abs(detail).max() < 0.08
    for source in ("K", "hand-W", "scribble", "noise"):
        image, label = gallery.make_case("clean", source, rng(6))
        assert label is None and np.ptp(image) > 100
    with pytest.raises(ValueError):
        gallery.make_case("clean", "not a source", rng(0))


def test_gallery_covers_every_condition_evenly():
    images = np.stack([mnist_like(str(d)) for d in range(10)])
    labels = np.arange(10, dtype=np.uint8)
    n = 2 * len(gallery.CONDITIONS) + 10
    cases = gallery.make_gallery(images, labels, n, seed=0, negatives=10 / n)
    digits = [case for case in cases if case.label is not None]
    assert len(digits) == n - 10
    counts = {c: sum(case.condition == c for case in digits) for c in gallery.CONDITIONS}
    assert set(counts.values()) == {2}
    assert {case.source.split("#")[0] for case in digits} == {"mnist", "mouse-thin", "mouse-thick"}
    for case in cases:
        assert re.fullmatch(rf"c\d{{4}}_{case.condition}_({case.label}|x)", case.name)
        if case.source.startswith("mnist#"):
            assert case.label == labels[int(case.source[6:])]
    assert {c.source.split("#")[0] for c in cases if c.label is None} == set(gallery.NEGATIVES)
    again = gallery.make_gallery(images, labels, n, seed=0, negatives=10 / n)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(cases, again, strict=True))


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gallery", REPO / "bench" / "gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_writes_the_gallery(tmp_path, monkeypatch):
    data_dir = write_fake_mnist(tmp_path / "datasets", monkeypatch, n_train=10, n_test=40)
    out = tmp_path / "gallery"
    assert load_bench().main(["--data-dir", str(data_dir), "--out", str(out), "--n", "20"]) == 0
    with open(out / "labels.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 20 and len(list(out.glob("c*_*_*.png"))) == 20
    for row in rows:
        assert (out / row["file"]).is_file()
        assert row["file"].endswith(f"_{row['label'] or 'x'}.png")


def test_bench_scores_refusals_apart():
    cases = [
        SimpleNamespace(label=3, condition="clean", source="mouse-thin"),
        SimpleNamespace(label=3, condition="shadow", source="mouse-thin"),
        SimpleNamespace(label=4, condition="shadow", source="mnist#7"),
        SimpleNamespace(label=None, condition="clean", source="blank"),
        SimpleNamespace(label=None, condition="clean", source="letter#K"),
    ]
    answers = [3, None, 1, None, 8]
    figures = load_bench().score(cases, [SimpleNamespace(digit=d) for d in answers])
    assert figures["accuracy"] == round(1 / 3, 4)
    assert figures["digits_wrongly_refused"] == 1
    assert figures["digits"]["condition:shadow"] == {"n": 2, "accuracy": 0.0, "refused": 1}
    assert figures["digits"]["kind:mouse-thin"]["accuracy"] == 0.5
    assert figures["negatives_refusal_rate"] == 0.5
    assert figures["negatives"]["kind:letter"]["refusal_rate"] == 0.0


def test_importing_the_gallery_loads_no_framework():
    code = (
        "import sys, digitrec.gallery; "
        "assert not {'tensorflow', 'keras', 'matplotlib'} & set(sys.modules), sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
