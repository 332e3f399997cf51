"""Training-time augmentation: the variation real handwriting has and MNIST lacks.

MNIST's writers were careful, its scanner clean and its digits upright. A user's digit
is slanted, squashed, written with a felt pen or a hairline, photographed slightly
blurred. Each random transform below stands for one of those differences; all of them
are vectorised NumPy/SciPy over a batch ``uint8`` ``(n, 28, 28)``, seeded, and cheap
enough (about 5 ms per 128 images) to run every batch, so no two epochs see the same
images.

Two fixed "views" of each training image are made once (``pipeline_view``,
``low_resolution_view``): the image as the user-image pipeline would hand it to the
model after a clean scan, and after a small, coarse, binarised one (with ``views=2``,
half of the coarse ones are ``boxed_view`` instead: stretched to fill a box). Training
on them as well closes the gap between MNIST's anti-aliased strokes and the pipeline's
output.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from digitrec import pipeline


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random transforms; the defaults are what the bundled model uses."""

    rotation: float = 12.0  # degrees, either way
    scale: tuple[float, float] = (0.85, 1.12)
    aspect: float = 0.2  # width/height changes by up to this factor either way
    shear: float = 0.25
    shift: float = 2.0  # pixels
    elastic: float = 1.6  # largest mean displacement, pixels
    elastic_smoothness: float = 3.5
    thicker: float = 0.3  # fraction of images whose strokes are widened
    thinner: float = 0.15  # fraction thinned
    blur: float = 0.15
    noise: float = 0.1


def random_warp(images: np.ndarray, rng: np.random.Generator, spec: Augmentation) -> np.ndarray:
    """Rotate, scale, squash, shear, shift and elastically distort each image differently.

    One ``map_coordinates`` call does the whole batch: the first coordinate picks the
    image, the other two are each output pixel's source position.
    """
    n, height, width = images.shape
    angle = np.deg2rad(rng.uniform(-spec.rotation, spec.rotation, n))
    scale = rng.uniform(*spec.scale, n)
    aspect = np.exp(rng.uniform(-1, 1, n) * np.log1p(spec.aspect))
    shear = rng.uniform(-spec.shear, spec.shear, n)
    # Forward map: rotation @ shear @ diag(scale_y, scale_x); we need its inverse to ask,
    # for every output pixel, where it came from.
    cos, sin = np.cos(angle), np.sin(angle)
    sy, sx = scale / np.sqrt(aspect), scale * np.sqrt(aspect)
    forward = np.empty((n, 2, 2))
    forward[:, 0, 0] = cos * sy
    forward[:, 0, 1] = -sin * sx + cos * shear * sx
    forward[:, 1, 0] = sin * sy
    forward[:, 1, 1] = cos * sx + sin * shear * sx
    inverse = np.linalg.inv(forward)
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    shift = rng.uniform(-spec.shift, spec.shift, (n, 2))
    grid = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij"), -1)
    offsets = grid.reshape(1, -1, 2) - centre - shift[:, None, :]  # (n, h*w, 2)
    source = np.einsum("nij,npj->npi", inverse, offsets) + centre
    source = source.reshape(n, height, width, 2)
    if spec.elastic > 0:
        field = rng.uniform(-1, 1, (2, n, height, width))
        s = spec.elastic_smoothness
        field = ndimage.gaussian_filter(field, sigma=(0, 0, s, s))
        rms = np.sqrt(np.mean(field**2, axis=(0, 2, 3), keepdims=True)) + 1e-8
        field *= rng.uniform(0, spec.elastic, (1, n, 1, 1)) / rms
        source = source + np.moveaxis(field, 0, -1)
    index = np.broadcast_to(np.arange(n)[:, None, None], (n, height, width))
    coordinates = np.stack([index, source[..., 0], source[..., 1]])
    warped = ndimage.map_coordinates(images.astype(np.float32), coordinates, order=1, cval=0.0)
    return warped


def random_strokes(images: np.ndarray, rng: np.random.Generator, spec: Augmentation):
    """Widen or thin the strokes of some images (felt pen vs. hairline), float in/out."""
    n = len(images)
    choice = rng.uniform(size=n)
    thick = choice < spec.thicker
    thin = (choice >= spec.thicker) & (choice < spec.thicker + spec.thinner)
    out = images.copy()
    if thick.any():
        big = rng.uniform(size=thick.sum()) < 0.35  # some get a 3x3 pen, most 2x2
        dilated2 = ndimage.grey_dilation(images[thick], size=(1, 2, 2))
        dilated3 = ndimage.grey_dilation(images[thick], size=(1, 3, 3))
        out[thick] = np.where(big[:, None, None], dilated3, dilated2)
    if thin.any():
        eroded = ndimage.grey_erosion(images[thin], size=(1, 2, 2))
        out[thin] = 0.5 * (images[thin] + eroded)  # full erosion would break MNIST's strokes
    return out


def random_blur_noise(images: np.ndarray, rng: np.random.Generator, spec: Augmentation):
    """Soften some images (an out-of-focus photo) and add sensor noise to others."""
    n = len(images)
    out = images
    blur = rng.uniform(size=n) < spec.blur
    if blur.any():
        sigma = rng.uniform(0.5, 1.0)
        blurred = ndimage.gaussian_filter(out[blur], sigma=(0, sigma, sigma))
        peak = blurred.max(axis=(1, 2), keepdims=True)
        out = out.copy()
        out[blur] = blurred * (255.0 / np.maximum(peak, 1.0))
    noisy = rng.uniform(size=n) < spec.noise
    if noisy.any():
        out = out.copy() if out is images else out
        level = rng.uniform(0, 25, (noisy.sum(), 1, 1))
        out[noisy] = out[noisy] + rng.normal(size=out[noisy].shape) * level
    return out


def augment(images: np.ndarray, rng: np.random.Generator, spec: Augmentation | None = None):
    """A randomly varied copy of ``uint8`` images ``(n, h, w)``, still ``uint8``."""
    spec = spec or Augmentation()
    out = random_warp(images, rng, spec)
    out = random_strokes(out, rng, spec)
    out = random_blur_noise(out, rng, spec)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def pipeline_view(image: np.ndarray) -> np.ndarray:
    """An MNIST image as the user-image pipeline hands it to the model (ink is dark on
    paper in a user's scan, so it goes in inverted)."""
    return pipeline.normalize(255 - image)


def low_resolution_view(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same digit scanned small and coarse: shrunk to 10-18 pixels, binarised at a
    random level, then through the pipeline. Real forms and old scans look like this."""
    side = int(rng.integers(10, 19))
    small = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BOX))
    if small.max() == 0:
        return image
    level = rng.uniform(0.25, 0.6) * small.max()
    binary = np.where(small > level, 0, 255).astype(np.uint8)
    return pipeline.normalize(binary)


def boxed_view(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit as a form's fixed box or an old scanner keeps it: cropped to its ink
    and stretched to fill a small square (its aspect ratio lost: a 1 becomes a wide
    bar), 12-20 pixels, binarised half the time, then through the pipeline."""
    rows, cols = np.nonzero(image > 0.3 * max(int(image.max()), 1))
    if rows.size == 0:
        return image
    crop = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    side = int(rng.integers(12, 21))
    small = np.asarray(
        Image.fromarray(crop).resize((side, side), Image.Resampling.BILINEAR), np.float32
    )
    if rng.uniform() < 0.5:
        small = np.where(small > rng.uniform(0.25, 0.6) * small.max(), 255.0, 0.0)
    return pipeline.normalize((255 - small).astype(np.uint8))


def make_views(
    images: np.ndarray, seed: int = 0, view_set: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Both fixed views of every image (about 3 ms an image; run once, then cached).

    ``view_set`` (``TrainConfig.views``): 1 is a clean view and a coarse view of each
    image; 2 (the bundled model's) draws half of the coarse views as boxed views instead.
    """
    rng = np.random.default_rng(seed)
    clean = np.stack([pipeline_view(image) for image in images])
    coarse = np.stack([low_resolution_view(image, rng) for image in images])
    if view_set == 2:
        boxed_rng = np.random.default_rng([seed, 2])
        for i in np.flatnonzero(boxed_rng.uniform(size=len(images)) < 0.5):
            coarse[i] = boxed_view(images[i], boxed_rng)
    return clean, coarse


def _exit_with_parent(parent: int) -> None:
    """Stop this worker when its parent goes (``digitrec train`` killed or interrupted):
    otherwise it draws views for minutes that nobody will use."""
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _views_chunk(args: tuple[np.ndarray, int, int]) -> tuple[np.ndarray, np.ndarray]:
    return make_views(*args)


def disk_cache(tag: str, key: bytes, build, code=None) -> dict[str, np.ndarray]:
    """``build()``'s arrays, stored as ``$DIGITREC_CACHE/<tag>-<sha>.npz``: made once, then
    read back. The hash covers ``key`` and the modules whose code draws the pictures
    (``code``; default: the pipeline and ``synthetic``), so editing them never serves
    stale images; a damaged cache is rebuilt, never trusted."""
    import hashlib
    import os

    from digitrec import synthetic
    from digitrec.data import cache_dir

    digest = hashlib.sha256(key)
    for module in code or (pipeline, synthetic):
        digest.update(Path(module.__file__).read_bytes())
    path = cache_dir() / f"{tag}-{digest.hexdigest()[:16]}.npz"
    if path.exists():
        try:
            with np.load(path) as stored:
                return dict(stored)
        except (OSError, ValueError):
            pass
    arrays = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # no cache is slower, not wrong
    return arrays


# Each chunk of a training set gets its own random stream (seed + chunk), so the count
# is fixed: the same seed draws the same views on any number of cores. (8 is what the
# 2-core machine that trained the bundled model used.)
VIEW_CHUNKS = 8


def cached_views(images: np.ndarray, seed: int = 0, workers: int | None = None, view_set: int = 1):
    """``make_views`` for a whole training set on every core, cached by content: a
    minute or two the first time, then free."""
    import os
    import warnings
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    from multiprocessing import get_context

    def build() -> dict[str, np.ndarray]:
        count = workers or os.cpu_count() or 1
        chunks = np.array_split(np.arange(len(images)), VIEW_CHUNKS)
        jobs = [(images[chunk], seed + i, view_set) for i, chunk in enumerate(chunks) if len(chunk)]
        parts = None
        if count > 1 and len(images) > 2000:
            # spawn, not fork: the parent may already run TensorFlow's threads. A script
            # that calls train() without an ``if __name__ == "__main__":`` guard breaks
            # spawned workers (each re-runs the script); then one core does the work.
            try:
                with ProcessPoolExecutor(
                    count,
                    mp_context=get_context("spawn"),
                    initializer=_exit_with_parent,
                    initargs=(os.getpid(),),
                ) as pool:
                    parts = list(pool.map(_views_chunk, jobs))
            except BrokenProcessPool:
                warnings.warn(
                    "drawing the training views on one core: worker processes failed "
                    '(a script calling train() needs an `if __name__ == "__main__":` guard)',
                    stacklevel=2,
                )
        if parts is None:
            parts = [_views_chunk(job) for job in jobs]
        return {
            "clean": np.concatenate([p[0] for p in parts]),
            "coarse": np.concatenate([p[1] for p in parts]),
        }

    # The views are drawn by this module and the pipeline, never by synthetic.py.
    code = (pipeline, sys.modules[__name__])
    views = disk_cache(f"views-v{view_set}", images.tobytes() + str(seed).encode(), build, code)
    return views["clean"], views["coarse"]


def mix_views(
    images: np.ndarray, clean: np.ndarray, coarse: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Each image as one of its three views: as scanned for MNIST (half the time), as
    the pipeline makes it, or as a coarse small scan (a quarter each)."""
    pick = rng.uniform(size=len(images))
    out = images.copy()
    out[pick >= 0.5] = clean[pick >= 0.5]
    out[pick >= 0.75] = coarse[pick >= 0.75]
    return out
