"""How well does ``digitrec.read`` read numbers? MNIST digits written side by side.

Each number is 2-6 MNIST digits in a row, upscaled 2-4x and darkened onto yellowish
paper with a lighting gradient and noise. Three kinds of spacing (in MNIST pixels,
between the digits' ink): apart (2-8), touching (-1-0: the ink meets) and overlapping
(-4 to -2: strokes cross). Prints string accuracy, how often the digit count is right,
digit accuracy (1 - edit distance / length), and for reference the accuracy on the same
digits one per picture:

    python bench/read_numbers.py --model /tmp/m/kdc.digitrec --n 300

Tune on ``--split train``; report ``--split test`` (the default).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image

from digitrec.artifact import load_model
from digitrec.data import load_dataset
from digitrec.predict import classify
from digitrec.read import read
from digitrec.segment import segment

# The gap between neighbouring digits' ink in MNIST pixels: rng.integers(low, high).
GAPS = {"apart": (2, 9), "touching": (-1, 1), "overlapping": (-4, -1)}


def ink_columns(digit: np.ndarray) -> np.ndarray:
    """The digit without its empty columns: gaps are then between ink, not between boxes."""
    cols = np.flatnonzero(digit.max(axis=0) > 40)
    return digit[:, cols[0] : cols[-1] + 1]


def number_ink(digits: list[np.ndarray], gap: tuple[int, int], rng) -> np.ndarray:
    """MNIST digits (white on black, 28x28) side by side, ``gap`` MNIST pixels apart
    between their ink, upscaled 2-4x: ink strength in [0, 1]."""
    pieces = [ink_columns(d) for d in digits]
    margin = int(rng.integers(4, 16))
    offsets, x = [], margin
    for piece in pieces:
        offsets.append(x)
        x += piece.shape[1] + int(rng.integers(*gap))
    canvas = np.zeros((28 + 2 * margin, offsets[-1] + pieces[-1].shape[1] + margin), np.float32)
    for piece, left in zip(pieces, offsets, strict=True):
        top = margin + int(rng.integers(-2, 3))
        region = canvas[top : top + 28, left : left + piece.shape[1]]
        np.maximum(region, piece / 255.0, out=region)
    scale = rng.uniform(2.0, 4.0)
    size = (round(canvas.shape[1] * scale), round(canvas.shape[0] * scale))
    return np.clip(np.asarray(Image.fromarray(canvas, mode="F").resize(size)), 0, 1)


def write_number(digits: list[np.ndarray], gap: tuple[int, int], rng) -> np.ndarray:
    """MNIST digits (white on black, 28x28) -> an RGB photo of them written in a row."""
    ink = number_ink(digits, gap, rng)
    height, width = ink.shape
    light = 0.95 - rng.uniform(0, 0.25) * np.linspace(0, 1, width)[None, :]
    paper = np.clip(light + rng.normal(0, 0.015, (height, width)), 0, 1)
    grey = paper * (1 - rng.uniform(0.7, 0.9) * ink)
    tint = np.array([1.0, 0.97, 0.9])  # yellowish paper
    return np.clip(grey[..., None] * tint * 255, 0, 255).astype(np.uint8)


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
            )
        previous = current
    return previous[-1]


def by_width(model, picture: np.ndarray) -> str:
    digits = segment(picture)
    answers = classify(model, np.stack([d.model_input for d in digits])) if digits else []
    return "".join("?" if a.digit is None else str(a.digit) for a in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a 28x28 .digitrec model")
    parser.add_argument("--data-dir", default=None, help="folder holding mnist/")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--n", type=int, default=300, help="numbers of each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--by-width",
        action="store_true",
        help="cut touching digits by width alone (segment without a scorer), to compare",
    )
    args = parser.parse_args()

    model = load_model(args.model)
    mnist = load_dataset("mnist", args.split, data_dir=args.data_dir)
    rng = np.random.default_rng(args.seed)
    for kind, gap in GAPS.items():
        truths, pictures, singles = [], [], []
        for _ in range(args.n):
            chosen = rng.choice(len(mnist.labels), int(rng.integers(2, 7)), replace=False)
            truths.append("".join(str(mnist.labels[i]) for i in chosen))
            pictures.append(write_number([mnist.images[i] for i in chosen], gap, rng))
            singles.extend(write_number([mnist.images[i]], gap, rng) for i in chosen)
        started = time.perf_counter()
        if args.by_width:
            texts = [by_width(model, picture) for picture in pictures]
        else:
            texts = [r.text or "" for r in read(model, pictures)]
        seconds = time.perf_counter() - started
        alone = [r.text for r in read(model, singles)]
        labels = "".join(truths)
        pairs = list(zip(truths, texts, strict=True))
        errors = sum(edit_distance(truth, text) for truth, text in pairs)
        single = np.mean([text == label for text, label in zip(alone, labels, strict=True)])
        print(
            f"{kind:9} {args.n} numbers, {len(labels)} digits ({args.split}): "
            f"strings {np.mean([truth == text for truth, text in pairs]):.1%}, "
            f"digit count {np.mean([len(truth) == len(text) for truth, text in pairs]):.1%}, "
            f"digits {1 - errors / len(labels):.1%} (1 - edit distance / length); "
            f"the same digits one per picture {single:.1%}; "
            f"{1000 * seconds / args.n:.0f} ms per number"
        )


if __name__ == "__main__":
    main()
