"""How well does ``predict`` read a digit written on a note lying on a table?

A phone photo of a sticky note, an index card or a torn-off slip on a desk: the table
often fills more of the picture than the note does. Each case is a test-gallery digit
(an MNIST digit's handwriting or a mouse drawing, ``digitrec.gallery``) written in
ballpoint, felt pen or pencil on a note (yellow, pink, blue, green, orange or white),
turned by up to 35 degrees and laid on a table (wood, a dark desk, grey laminate, a
light desk, a checked cloth) with a soft shadow under it, the note covering 12-60% of
the photo; one case in five runs partly out of the picture. Then the photo's light
falls off across it, it may be seen at an angle, and it gets sensor noise and JPEG.
Blank notes and notes with a letter on them are read too: they should be refused.
The same digits on the note alone (cropped to it) are read for reference. Prints JSON
and writes it to ``--output`` or ``bench/results/sheets-<date>.json``:

    python bench/sheets.py --data-dir ../shared/datasets --n 300

Tune on ``--split train``; report ``--split test`` (the default).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from machine import header, made_up_digits_parser, write_result
from marked import digit_ink
from PIL import Image
from scipy import ndimage

from digitrec import gallery
from digitrec.artifact import load_model
from digitrec.data import load_dataset
from digitrec.predict import predict

NOTES = [(1.0, 0.92, 0.5), (1.0, 0.78, 0.85), (0.74, 0.87, 1.0), (0.78, 0.95, 0.72)]
NOTES += [(1.0, 0.75, 0.45), (0.97, 0.97, 0.95)]
PENS = {  # ink colour, strength
    "ballpoint": ((0.12, 0.18, 0.55), 0.9),
    "felt pen": ((0.06, 0.06, 0.08), 1.0),
    "pencil": ((0.3, 0.3, 0.33), 0.6),
}
TABLES = ("wood", "dark desk", "grey laminate", "light desk", "checked cloth")


def note(ink: np.ndarray, rng) -> np.ndarray:
    """The ink written on a note of the canvas's size: float RGB."""
    paper = np.clip(np.asarray(NOTES[rng.integers(len(NOTES))]) + rng.normal(0, 0.02, 3), 0, 1)
    colour, strength = PENS[str(rng.choice(list(PENS)))]
    image = np.repeat(1.0 - ink[..., None], 3, axis=2)
    return gallery._recolour(image, paper, colour, strength)


def table(kind: str, height: int, width: int, rng) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    noise = rng.normal(0, 1, (height, width)).astype(np.float32)
    if kind == "wood":
        base = np.array([0.5, 0.33, 0.18]) * rng.uniform(0.6, 1.1)
        grain = ndimage.gaussian_filter(noise, (1, 25)) * 6
        wave = np.sin((y + 8 * grain) / rng.uniform(4, 9) + 2 * np.sin(x / 60.0))
        shade = 0.85 + 0.1 * wave + 0.05 * grain
    elif kind == "dark desk":
        base = np.array([0.12, 0.12, 0.13]) * rng.uniform(0.7, 1.4)
        shade = 1 + 0.05 * noise
    elif kind == "grey laminate":
        base = np.array([0.5, 0.5, 0.48]) * rng.uniform(0.8, 1.1)
        shade = 1 + 0.03 * ndimage.gaussian_filter(noise, 1.5) * 3
    elif kind == "light desk":
        base = np.array([0.86, 0.86, 0.84]) * rng.uniform(0.9, 1.0)
        shade = 1 + 0.02 * noise
    else:  # a checked tablecloth
        size = rng.uniform(20, 45)
        checks = ((x // size + y // size) % 2).astype(np.float32)
        colour = np.array([0.6, 0.15, 0.15]) if rng.random() < 0.5 else np.array([0.2, 0.3, 0.6])
        return (checks[..., None] * colour + (1 - checks[..., None]) * 0.85).astype(np.float32)
    return np.clip(base * shade[..., None], 0, 1).astype(np.float32)


def on_table(paper: np.ndarray, rng) -> np.ndarray:
    """The note turned and laid on a table, covering 12-60% of the photo."""
    side = paper.shape[0]
    share = rng.uniform(0.12, 0.6)
    aspect = rng.choice([1.0, 4 / 3, 3 / 4])
    area = side * side / share
    height, width = int(np.sqrt(area / aspect)), int(np.sqrt(area * aspect))
    angle = rng.uniform(-35, 35)
    rgba = np.dstack([paper, np.ones(paper.shape[:2], np.float32)])
    turned = (
        np.asarray(
            Image.fromarray(gallery.to_uint8(rgba), "RGBA").rotate(
                angle, Image.Resampling.BICUBIC, expand=True
            ),
            np.float32,
        )
        / 255.0
    )
    h, w = turned.shape[:2]
    height, width = max(height, h + 4), max(width, w + 4)
    top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
    if rng.random() < 0.2:  # partly out of the picture
        top += int(rng.choice([-1, 1]) * rng.uniform(0.1, 0.3) * h)
        left += int(rng.choice([-1, 1]) * rng.uniform(0.1, 0.3) * w)
    photo = table(str(rng.choice(TABLES)), height, width, rng)
    alpha = np.zeros((height, width), np.float32)
    colour = np.zeros((height, width, 3), np.float32)
    ys = slice(max(top, 0), min(top + h, height))
    xs = slice(max(left, 0), min(left + w, width))
    inner = (slice(ys.start - top, ys.stop - top), slice(xs.start - left, xs.stop - left))
    alpha[ys, xs] = turned[inner][..., 3]
    colour[ys, xs] = turned[inner][..., :3]
    offset = rng.integers(2, 9, 2)
    shadow = ndimage.gaussian_filter(ndimage.shift(alpha, offset, order=0), rng.uniform(2, 6))
    photo = photo * (1 - rng.uniform(0.3, 0.6) * shadow[..., None])
    return photo * (1 - alpha[..., None]) + colour * alpha[..., None]


def photographed(image: np.ndarray, rng) -> np.ndarray:
    image = gallery.uneven_lighting(image, rng)
    if rng.random() < 0.3:
        image = gallery.perspective(image, rng)
    image = gallery.sensor_noise(image, rng, sigma=(0.01, 0.03))
    return gallery.to_uint8(gallery.jpeg(image, rng, quality=(60, 90)))


def scored(model, pictures: list[np.ndarray], labels: list[int]) -> dict:
    """``predict``'s accuracy on labelled digits, and how many it refused or misread."""
    answers = predict(model, pictures)
    wrong = Counter(
        "refused" if a.digit is None else "misread"
        for a, label in zip(answers, labels, strict=True)
        if a.digit != label
    )
    right = sum(a.digit == label for a, label in zip(answers, labels, strict=True))
    return {
        "accuracy": right / len(labels),
        "refused": wrong["refused"],
        "misread": wrong["misread"],
    }


def main() -> None:
    args = made_up_digits_parser(__doc__, 300, "notes with a digit", 0).parse_args()
    model = load_model(args.model)
    mnist = load_dataset("mnist", args.split, data_dir=args.data_dir)
    result = {**header("sheets.py"), "model": args.model or "bundled", "split": args.split}
    result |= {"n": args.n, "seed": args.seed}
    on, alone, labels = [], [], []
    for index in range(args.n):
        rng = np.random.default_rng([args.seed, index])
        ink, label = digit_ink(index, mnist, rng)
        paper = note(ink, rng)
        on.append(photographed(on_table(paper, rng), rng))
        alone.append(gallery.to_uint8(paper))
        labels.append(label)
    reference = scored(model, alone, labels)["accuracy"]
    result["digits"] = {**scored(model, on, labels), "note alone": reference}
    # Notes with nothing written on them, or a letter: to be refused.
    others = []
    for index in range(args.n // 3):
        rng = np.random.default_rng([args.seed, index, 1])
        source = "blank" if index % 2 == 0 else gallery.LETTERS[index // 2 % len(gallery.LETTERS)]
        ink, _ = gallery.ink_shape(source, rng)
        others.append(photographed(on_table(note(ink, rng), rng), rng))
    refused = [a.digit is None for a in predict(model, others)]
    result["not digits"] = {"n": len(others), "refused": float(np.mean(refused))}
    write_result(result, "sheets", args.output)


if __name__ == "__main__":
    main()
