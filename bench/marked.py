"""How well does ``predict`` read a digit someone underlined or circled?

Each case is a test-gallery digit (an MNIST digit's handwriting or a mouse drawing,
``digitrec.gallery``) under one of the gallery's conditions, with a line drawn under it
(6-30% of the digit's height below it, reaching 10% short of to 40% past each side, a
little slanted, pens 2-10 px) or a circle drawn round it (the digit shrunk to 60% first;
the circle 15-50% taller and 20-70% wider than the digit, left open by up to 14 degrees
or closed with an overlap, pens 2-8 px). The same digits unmarked are read too, for
reference. Prints JSON and writes it to ``--output`` or ``bench/results/marked-<date>.json``:

    python bench/marked.py --data-dir ../shared/datasets --n 300

Tune on ``--split train``; report ``--split test`` (the default).
"""

from __future__ import annotations

import numpy as np
from machine import header, made_up_digits_parser, write_result
from scipy import ndimage

from digitrec import gallery
from digitrec.artifact import load_model
from digitrec.data import load_dataset
from digitrec.predict import predict

CONDITIONS = [c for c in gallery.CONDITIONS if c != "small"]  # "small" shrinks the marks away


def digit_ink(index: int, mnist, rng) -> tuple[np.ndarray, int]:
    """Every other case an MNIST digit's handwriting, else a mouse drawing."""
    if index % 2 == 0:
        which = int(rng.integers(len(mnist.labels)))
        return gallery.ink_shape((mnist.images[which], mnist.labels[which]), rng)
    pen = str(rng.choice(["thin", "thick"]))
    return gallery.ink_shape(int(rng.integers(10)), rng, pen)


def underline(ink: np.ndarray, rng) -> np.ndarray:
    rows, cols = np.nonzero(ink > 0.5)
    height, width = np.ptp(rows), np.ptp(cols)
    y = rows.max() + rng.uniform(0.06, 0.3) * height
    x0 = cols.min() - rng.uniform(-0.1, 0.4) * width
    x1 = cols.max() + rng.uniform(-0.1, 0.4) * width
    slope = rng.uniform(-0.06, 0.06) * (x1 - x0)
    middle = ((x0 + x1) / 2, y + slope / 2 + rng.normal(0, 2))
    line = gallery.draw_strokes([[(x0, y), middle, (x1, y + slope)]], rng.uniform(2, 10))
    return np.maximum(ink, line)


def shrink(ink: np.ndarray) -> np.ndarray:
    """The digit at 60% of its size, in the middle of its canvas: room for a circle."""
    small = ndimage.zoom(ink, 0.6, order=1)
    out = np.zeros_like(ink)
    offset = (ink.shape[0] - small.shape[0]) // 2
    out[offset : offset + small.shape[0], offset : offset + small.shape[1]] = small
    return out


def circle(ink: np.ndarray, rng) -> np.ndarray:
    """A circle round a (shrunk) digit."""
    rows, cols = np.nonzero(ink > 0.5)
    centre_y, centre_x = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
    radius_y = np.ptp(rows) / 2 * rng.uniform(1.15, 1.5) + 6
    radius_x = max(np.ptp(cols) / 2 * rng.uniform(1.2, 1.7) + 6, 0.6 * radius_y)
    start = rng.uniform(0, 2 * np.pi)
    angles = np.linspace(start, start + 2 * np.pi + rng.uniform(-0.25, 0.5), 60)
    wobble = 1 + 0.05 * np.sin(3 * angles + rng.uniform(0, 6))
    points = np.stack(
        [
            centre_x + radius_x * wobble * np.cos(angles),
            centre_y + radius_y * wobble * np.sin(angles),
        ],
        axis=1,
    )
    return np.maximum(ink, gallery.draw_strokes([points], rng.uniform(2, 8)))


def picture(ink: np.ndarray, condition: str, rng) -> np.ndarray:
    image = np.repeat(1.0 - ink[..., None], 3, axis=2)
    for step in gallery.CONDITIONS[condition]:
        image = step(image, rng)
    return gallery.to_uint8(image)


def main() -> None:
    args = made_up_digits_parser(__doc__, 300, "cases of each mark", 0).parse_args()
    model = load_model(args.model)
    mnist = load_dataset("mnist", args.split, data_dir=args.data_dir)
    result = {**header("marked.py"), "model": args.model or "bundled", "split": args.split}
    result |= {"n": args.n, "seed": args.seed}
    for name, mark in (("underlined", underline), ("circled", circle)):
        marked, plain, labels = [], [], []
        for index in range(args.n):
            rng = np.random.default_rng([args.seed, index, len(name)])
            ink, label = digit_ink(index, mnist, rng)
            if mark is circle:
                ink = shrink(ink)
            drawn = mark(ink, rng)
            condition = CONDITIONS[index % len(CONDITIONS)]
            seed = [args.seed, index, len(name), 1]
            marked.append(picture(drawn, condition, np.random.default_rng(seed)))
            plain.append(picture(ink, condition, np.random.default_rng(seed)))
            labels.append(label)
        right = [a.digit == label for a, label in zip(predict(model, marked), labels, strict=True)]
        alone = [a.digit == label for a, label in zip(predict(model, plain), labels, strict=True)]
        result[name] = {"accuracy": float(np.mean(right)), "unmarked": float(np.mean(alone))}
    write_result(result, "marked", args.output)


if __name__ == "__main__":
    main()
