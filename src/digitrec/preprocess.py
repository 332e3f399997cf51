"""Pure array functions from a user's image to a model input. No I/O, no model.

The contract every dataset and model shares: ``uint8`` images, ink bright on a dark
background (MNIST polarity), at the model's input size; the model sees them as
``float32`` in [0, 1] with a trailing channel axis.

This is the tutorials' own pipeline (grey, MNIST polarity, resize, /255). It fails on
many real photos; it is kept in this one module so that a better pipeline replaces it
in one place for the CLI, the Python API and the server alike.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# A picture whose grey levels span fewer than this many steps has nothing written on it.
MIN_CONTRAST = 24


def to_grey(image: np.ndarray) -> np.ndarray:
    """``uint8`` grey ``(h, w)`` from grey ``(h, w)``, RGB or RGBA ``(h, w, 3|4)``.

    Uses the ITU-R 601 luma weights, as Pillow's ``convert("L")`` does. Alpha must
    already be flattened onto a background (``images.decode_image`` does that).
    """
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.uint8, copy=False)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        rgb = image[..., :3].astype(np.float32)
        grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    raise ValueError(f"expected a grey (h, w) or colour (h, w, 3|4) image, got {image.shape}")


def has_ink(grey: np.ndarray) -> bool:
    """False for a blank (uniform) picture, which no model should be asked to read."""
    return int(grey.max()) - int(grey.min()) >= MIN_CONTRAST


def to_mnist_polarity(grey: np.ndarray) -> np.ndarray:
    """Make the ink bright on a dark background, as in MNIST.

    The background is whatever dominates the border: paper seen in a photo or scan is
    light, so such an image is inverted.
    """
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 255 - grey if np.median(border) > 127 else grey


def resize(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a ``uint8`` grey image to ``size`` = (height, width) with area averaging."""
    if grey.shape == tuple(size):
        return grey
    height, width = size
    resample = Image.Resampling.BOX if grey.shape[0] >= height else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(grey).resize((width, height), resample))


def prepare_image(image: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """A user's decoded image -> ``uint8`` ``size`` image in MNIST polarity."""
    return resize(to_mnist_polarity(to_grey(image)), size)


def fit_to_size(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A batch of dataset images ``(n, h, w)`` at another size, e.g. 16x16 USPS for 28x28."""
    if images.shape[1:] == tuple(size):
        return images
    return np.stack([resize(image, size) for image in images])


def to_model_input(images: np.ndarray) -> np.ndarray:
    """``uint8`` ``(n, h, w)`` -> ``float32`` ``(n, h, w, 1)`` in [0, 1]."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 images (n, h, w), got {images.dtype}{images.shape}")
    return (images.astype(np.float32) / 255.0)[..., None]
