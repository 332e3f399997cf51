"""Bold digits cropped tight: does the pipeline find which side is ink?

    python bench/tight_crops.py --data-dir ../shared/datasets [--model M] [--n 2000]

A tight crop of a bold digit can hold more ink than paper, which fools a polarity test
that takes the most common brightness for the paper (``pipeline.polarity_unsure``). The
proxy: the model's own held-out validation digits (never trained on), thickened by 0-2
pixels, cropped to their ink and scaled to 12-32 pixels square, white on black and black
on white. Each is read three ways: with the pipeline's polarity alone, with the model
choosing between the two readings where the pipeline is unsure (what digitrec does), and
with the right polarity forced (the ceiling).

A second proxy stands for scanners that stretch every digit to fill its box (Semeion):
the same digits, not made bold, cropped to their ink and stretched to 16x16, dark on
light, binarised or grey, read as ``digitrec predict`` reads them. A third does the same
to pen-stroke digits in the shapes taught outside the US (``synthetic.pen_digit``, drawn
with a seed training never uses), where a stretched 1 with a flag looks like a 7. These
two chose ``pipeline.NARROWER``; ``--no-narrow`` reads them without it, for comparison.
What that may cost: the held-out digits cropped to their ink *without* stretching, so
many fill their frame although nothing stretched them.
Writes bench/results/tight-<date>.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from machine import header, write_result
from PIL import Image
from scipy import ndimage

from digitrec import pipeline, synthetic
from digitrec.artifact import load_model
from digitrec.data import load_dataset
from digitrec.predict import choose_readings
from digitrec.preprocess import prepare_dataset_readings
from digitrec.train import split_validation


def crop_to_ink(image: np.ndarray, threshold: int) -> np.ndarray:
    """The picture cut to the box of its pixels brighter than ``threshold``."""
    rows, cols = np.nonzero(image > threshold)
    return image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def tight_crops(images: np.ndarray, seed: int) -> list[np.ndarray]:
    """MNIST digits (white on black) made bold, cropped to their ink, scaled square."""
    rng = np.random.default_rng(seed)
    crops = []
    for image in images:
        bold = ndimage.grey_dilation(image, size=int(rng.integers(1, 4)))
        crop = crop_to_ink(bold, 30)
        side = int(rng.integers(12, 33))
        crops.append(np.asarray(Image.fromarray(crop).resize((side, side), Image.BILINEAR)))
    return crops


def stretched(images: np.ndarray, binary: bool) -> list[np.ndarray]:
    """MNIST digits cropped to their ink and stretched to fill 16x16, dark on light."""
    out = []
    for image in images:
        crop = crop_to_ink(image, 40)
        small = np.asarray(Image.fromarray(crop).resize((16, 16), Image.BILINEAR))
        if binary:
            small = np.where(small > 100, 255, 0).astype(np.uint8)
        out.append(255 - small)
    return out


def pen_stretched(n: int, binary: bool, seed: int = 777001) -> tuple[list[np.ndarray], np.ndarray]:
    """Pen-stroke digits of the first taught shapes, stretched as ``stretched`` does.
    Training draws its pen digits with the preset's seed (0)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    inks = [255 - synthetic.pen_digit(int(label), rng) for label in labels]
    return stretched(inks, binary), labels


def cropped(images: np.ndarray, seed: int) -> list[np.ndarray]:
    """MNIST digits cropped to their ink, aspect kept, scaled by 0.8-1.6, dark on light."""
    rng = np.random.default_rng(seed)
    out = []
    for image in images:
        crop = crop_to_ink(image, 40)
        scale = rng.uniform(0.8, 1.6)
        size = (max(2, round(crop.shape[1] * scale)), max(2, round(crop.shape[0] * scale)))
        out.append(255 - np.asarray(Image.fromarray(crop).resize(size, Image.BILINEAR)))
    return out


def accuracy(model, inputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(model.predict_proba(inputs).argmax(axis=1) == labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", help="a 28x28 .digitrec file (default: the bundled model)")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--no-narrow", action="store_true", help="read without NARROWER")
    args = parser.parse_args()
    if args.no_narrow:
        pipeline.NARROWER = ()

    model = load_model(args.model)
    train = load_dataset(model.config.dataset, "train", args.data_dir)
    seed, size = model.validation_split
    _, _, images, labels = split_validation(train.images, train.labels, size or 5000, seed)
    images, labels = images[: args.n], labels[: args.n]
    crops = tight_crops(images, args.seed)
    result = {**header("tight_crops.py"), "model": args.model or "bundled", "n": len(labels)}
    result["narrower"] = list(pipeline.NARROWER)
    for name, pictures, dark in (
        ("white on black", crops, False),
        ("black on white", [255 - crop for crop in crops], True),
    ):
        first, others = prepare_dataset_readings(pictures, (28, 28), normalized=False)
        own = np.stack([pipeline.normalize_stages(p).output for p in pictures])
        forced = np.stack([pipeline.normalize_stages(p, ink_dark=dark).output for p in pictures])
        result[name] = {
            "pipeline polarity alone": accuracy(model, own, labels),
            "read both ways where unsure, the model chooses": accuracy(
                model, choose_readings(model, first, others), labels
            ),
            "right polarity forced": accuracy(model, forced, labels),
            "unsure": sum(len({r.ink_dark for r in rs}) > 1 for rs in others.values()),
        }
    for name, (pictures, truth) in (
        ("stretched to 16x16, binarised", (stretched(images, True), labels)),
        ("stretched to 16x16, grey", (stretched(images, False), labels)),
        ("pen-stroke digits stretched to 16x16, binarised", pen_stretched(args.n, True)),
        ("pen-stroke digits stretched to 16x16, grey", pen_stretched(args.n, False)),
        ("cropped to their ink, not stretched", (cropped(images, args.seed), labels)),
    ):
        first, others = prepare_dataset_readings(pictures, (28, 28), False)
        inputs = choose_readings(model, first, others)
        digits, not_digit = model.scores(inputs)
        refused = model.calibration.refused(digits, not_digit)
        right = digits.argmax(axis=1) == truth  # one network pass serves both figures
        result[name] = {
            "accuracy (forced choice)": float(np.mean(right)),
            "read right (a refusal counts as wrong)": float(np.mean(right & ~refused)),
            "refused": int(refused.sum()),
            "read narrowed too": sum(
                any(r.width < 1 for r in readings) for readings in others.values()
            ),
        }
    write_result(result, "tight", args.output)


if __name__ == "__main__":
    main()
