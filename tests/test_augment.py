import numpy as np
import pytest

from digitrec import augment
from digitrec.augment import Augmentation


def bar_images(n: int = 8) -> np.ndarray:
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 6:22, 12:16] = 255  # a vertical stroke, centred
    return images


def test_augment_keeps_shape_dtype_and_ink():
    images = bar_images()
    out = augment.augment(images, np.random.default_rng(0))
    assert out.shape == images.shape and out.dtype == np.uint8
    assert (out.reshape(len(out), -1).max(axis=1) > 100).all()  # nothing wiped out


def test_augment_is_seeded_and_varies_per_image():
    images = bar_images()
    first = augment.augment(images, np.random.default_rng(1))
    again = augment.augment(images, np.random.default_rng(1))
    other = augment.augment(images, np.random.default_rng(2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len({row.tobytes() for row in first}) == len(first)


def test_identity_warp_changes_nothing():
    spec = Augmentation(rotation=0, scale=(1, 1), aspect=0, shear=0, shift=0, elastic=0)
    images = bar_images(3)
    out = augment.random_warp(images, np.random.default_rng(0), spec)
    np.testing.assert_allclose(out, images, atol=1e-3)


def test_rotation_tilts_a_vertical_bar():
    spec = Augmentation(rotation=45, scale=(1, 1), aspect=0, shear=0, shift=0, elastic=0)
    rotated = augment.random_warp(bar_images(16), np.random.default_rng(0), spec)
    widths = [np.ptp(np.nonzero(image > 128)[1]) for image in rotated]
    # Upright the bar is 4 pixels wide; angles up to 45 degrees widen most of them.
    assert max(widths) >= 10 and np.median(widths) > 4


@pytest.mark.parametrize("field, sign", [("thicker", 1), ("thinner", -1)])
def test_strokes_get_thicker_or_thinner(field, sign):
    spec = Augmentation(**{"thicker": 0.0, "thinner": 0.0, field: 1.0})
    images = bar_images(4).astype(np.float32)
    out = augment.random_strokes(images, np.random.default_rng(0), spec)
    assert sign * (out.sum() - images.sum()) > 0


def test_views_look_like_mnist():
    images = bar_images(2)
    clean, coarse = augment.make_views(images, seed=0)
    for view in (clean, coarse):
        assert view.shape == (2, 28, 28) and view.dtype == np.uint8
        assert view.max() > 200 and view[:, :2].max() == 0  # ink in the middle only


def test_a_boxed_view_stretches_the_digit_to_fill_its_box():
    one = np.zeros((28, 28), np.uint8)
    for row in range(4, 24):  # a slanted 1: 20 tall, 8 wide
        one[row, 16 - (row - 4) // 3 : 19 - (row - 4) // 3] = 255
    boxed = augment.boxed_view(one, np.random.default_rng(0))
    rows, cols = np.nonzero(boxed > 128)
    # Kept to its aspect ratio the 1 would be 20 tall and 8 wide; stretched, it is square.
    assert np.ptp(rows) >= 16 and np.ptp(cols) >= 16
    plain = np.zeros((28, 28), np.uint8)
    assert augment.boxed_view(plain, np.random.default_rng(0)) is plain


def test_view_set_2_draws_half_the_coarse_views_boxed_and_keeps_the_rest():
    images = bar_images(40)
    clean1, coarse1 = augment.make_views(images, seed=3, view_set=1)
    clean2, coarse2 = augment.make_views(images, seed=3, view_set=2)
    np.testing.assert_array_equal(clean1, clean2)
    same = np.array([np.array_equal(a, b) for a, b in zip(coarse1, coarse2, strict=True)])
    assert 0.25 < same.mean() < 0.75  # the others are boxed views instead


def test_mix_views_picks_from_all_three():
    n = 400
    images = np.zeros((n, 28, 28), np.uint8)
    clean, coarse = images + 1, images + 2
    mixed = augment.mix_views(images, clean, coarse, np.random.default_rng(0))
    counts = np.bincount(mixed[:, 0, 0], minlength=3) / n
    np.testing.assert_allclose(counts, [0.5, 0.25, 0.25], atol=0.07)


def test_disk_cache_builds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_CACHE", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(3)}

    first = augment.disk_cache("t", b"key", build)
    second = augment.disk_cache("t", b"key", build)
    np.testing.assert_array_equal(first["x"], second["x"])
    assert len(calls) == 1
    (next(tmp_path.glob("t-*.npz"))).write_bytes(b"damaged")
    assert augment.disk_cache("t", b"key", build)["x"].tolist() == [0, 1, 2]
    assert len(calls) == 2


def test_views_are_the_same_on_any_number_of_cores(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28), np.uint8)
    images[:, 6:22, 12:16] = rng.integers(150, 256, (40, 1, 1), dtype=np.uint8)
    monkeypatch.setenv("DIGITREC_CACHE", str(tmp_path / "one"))
    one = augment.cached_views(images, seed=5, workers=1)
    monkeypatch.setenv("DIGITREC_CACHE", str(tmp_path / "many"))
    many = augment.cached_views(images, seed=5, workers=16)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)


def test_view_workers_exit_when_training_is_killed(tmp_path):
    """A killed ``digitrec train`` must not leave its view workers drawing for minutes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from multiprocessing import get_context\n"
        "from digitrec.augment import _exit_with_parent\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, mp_context=get_context('spawn'),\n"
        "        initializer=_exit_with_parent, initargs=(os.getpid(),))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    pool.submit(time.sleep, 60)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return  # gone
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the view worker outlived its parent")
