"""Test-time augmentation: read each image in a few slightly changed forms, average.

A model that learnt with rotated and rescaled digits gives slightly different answers
for a digit turned a few degrees; averaging the answers over such forms removes part of
that noise. The forms are fixed (no randomness: the same image always gets the same
answer) and mild, so none of them turns one digit into another. They were chosen on the
held-out part of the MNIST training split, never on the test set.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# (rotation in degrees, scale) of each form; the first is the image as it is.
FORMS = ((0.0, 1.0), (8.0, 1.0), (-8.0, 1.0), (0.0, 0.9), (0.0, 1.1))


def transform(images: np.ndarray, degrees: float, scale: float) -> np.ndarray:
    """``uint8`` images ``(n, h, w)`` rotated about their centre (positive degrees turn
    them clockwise on screen) and scaled from it."""
    images = np.asarray(images)
    if degrees == 0 and scale == 1:
        return images
    angle = np.deg2rad(degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    # affine_transform maps each output pixel to its source: the inverse rotation and
    # scale on the two image axes, the identity on the batch axis.
    matrix = np.array([[1, 0, 0], [0, cos, -sin], [0, sin, cos]]) / np.array([1, scale, scale])
    centre = np.array([0, (images.shape[1] - 1) / 2, (images.shape[2] - 1) / 2])
    offset = centre - matrix @ centre
    moved = ndimage.affine_transform(images.astype(np.float32), matrix, offset, order=1)
    return np.clip(np.rint(moved), 0, 255).astype(np.uint8)


def forms(images: np.ndarray) -> np.ndarray:
    """Every form of every image: ``(len(FORMS), n, h, w)``, the unchanged images first."""
    return np.stack([transform(images, degrees, scale) for degrees, scale in FORMS])


def averaged(predict, images: np.ndarray) -> np.ndarray:
    """``predict`` (images -> outputs ``(n, k)``) averaged over the forms of ``images``."""
    stacked = forms(images)
    outputs = np.asarray(predict(stacked.reshape(-1, *stacked.shape[2:])))
    return outputs.reshape(len(FORMS), len(images), -1).mean(axis=0)
