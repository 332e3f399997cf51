"""Does ``digitrec.read`` read a form's number field? MNIST digits written one to a box.

    python bench/read_forms.py --data-dir ../shared/datasets [--model M] [--n 20]
        [--seed 2000] [--split test]

Each field is 3-6 MNIST digits, each written in its own printed box (varied in size and
place, as people write), in these layouts: boxes side by side, a comb (a baseline with a
short tick between digits), thin and thick lines, boxes drawn apart, small boxes (a
low-resolution scan), digits larger than their boxes, a blurred and noisy photo, and the
field turned 1.5 degrees. Counts the fields read exactly, and for one digit in one box
of each layout, the digits ``digitrec predict`` reads right. For comparison, the same
digits are also read with the lines left out (``no lines``), which is the most the
lines' removal can give. Tune on ``--split train``; report ``--split test`` with a seed
not used to choose anything. Writes bench/results/read-forms-<date>.json.
"""

from __future__ import annotations

import numpy as np
from machine import header, made_up_digits_parser, write_result
from PIL import Image, ImageDraw, ImageFilter

from digitrec.artifact import load_model
from digitrec.data import load_dataset
from digitrec.predict import predict
from digitrec.read import read

PAPER, LINE = 245, 60
LAYOUTS = {
    "no lines": {"line": 0},
    "boxes side by side": {},
    "comb": {"comb": True},
    "thin lines (1 px)": {"line": 1},
    "thick lines (4 px)": {"line": 4},
    "boxes drawn apart": {"gap": 12},
    "small boxes": {"box": 36, "margin": 10},
    "digits over the lines": {"big": True},
    "photo: blur and noise": {"photo": True},
    "turned 1.5 degrees": {"angle": 1.5},
    "comb, turned 1.5 degrees": {"comb": True, "angle": -1.5},
}


def form_field(
    digits: list[np.ndarray],
    rng: np.random.Generator,
    box: int = 70,
    line: int = 2,
    comb: bool = False,
    gap: int = 0,
    angle: float = 0.0,
    photo: bool = False,
    big: bool = False,
    margin: int = 20,
) -> np.ndarray:
    """MNIST digits (white on black, 28x28) written one to a box: a grey ``uint8`` scan."""
    n, step = len(digits), box + gap
    picture = Image.new("L", (2 * margin + n * step - gap, box + 2 * margin), PAPER)
    pen = ImageDraw.Draw(picture)
    for k in range(n if line else 0):
        x = margin + k * step
        if comb:
            pen.line((x, margin + box, x + box, margin + box), fill=LINE, width=line)
            pen.line((x, margin + 0.7 * box, x, margin + box), fill=LINE, width=line)
        else:
            pen.rectangle((x, margin, x + box, margin + box), outline=LINE, width=line)
    if comb and line:
        x = margin + n * step - gap
        pen.line((x, margin + 0.7 * box, x, margin + box), fill=LINE, width=line)
    page = np.asarray(picture).copy()
    for k, digit in enumerate(digits):
        size = int(rng.integers(box + 4, box + 16) if big else rng.integers(box - 24, box - 2))
        ink = np.asarray(Image.fromarray(255 - digit).resize((size, size)))
        x = max(0, margin + k * step + (box - size) // 2 + int(rng.integers(-6, 7)))
        y = max(0, margin + (box - size) // 2 + int(rng.integers(-6, 7)))
        region = page[y : y + size, x : x + size]
        np.minimum(region, ink[: region.shape[0], : region.shape[1]], out=region)
    picture = Image.fromarray(page)
    if angle:
        picture = picture.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=PAPER)
    if photo:
        blurred = np.asarray(picture.filter(ImageFilter.GaussianBlur(1.0)), np.float32)
        picture = Image.fromarray(np.clip(blurred + rng.normal(0, 6, blurred.shape), 0, 255))
    return np.asarray(picture.convert("L"))


def main() -> None:
    args = made_up_digits_parser(__doc__, 20, "fields per layout", 2000).parse_args()

    model = load_model(args.model)
    mnist = load_dataset("mnist", args.split, data_dir=args.data_dir)
    result = {**header("read_forms.py"), "model": args.model or "bundled", "n": args.n}
    layouts, right_with_lines = {}, 0
    for name, layout in LAYOUTS.items():
        truths, fields = [], []
        for k in range(args.n):
            rng = np.random.default_rng([args.seed, k])  # the same digits in every layout
            chosen = rng.choice(len(mnist.labels), int(rng.integers(3, 7)), replace=False)
            truths.append("".join(str(mnist.labels[i]) for i in chosen))
            fields.append(form_field([mnist.images[i] for i in chosen], rng, **layout))
        texts = [r.text or "" for r in read(model, fields)]
        right = sum(t == x for t, x in zip(truths, texts, strict=True))
        if name != "no lines":
            right_with_lines += right
        wrong = [[t, x] for t, x in zip(truths, texts, strict=True) if t != x]
        labels, singles = [], []
        for k in range(args.n):
            rng = np.random.default_rng([args.seed, k, 1])
            one = int(rng.integers(len(mnist.labels)))
            labels.append(int(mnist.labels[one]))
            singles.append(form_field([mnist.images[one]], rng, **layout))
        alone = sum(p.digit == t for p, t in zip(predict(model, singles), labels, strict=True))
        layouts[name] = {
            "fields read right": right,
            "wrong (truth, read)": wrong[:5],
            "one digit in one box, predict right": alone,
        }
        print(f"{name:26} read {right}/{args.n}, predict {alone}/{args.n}", flush=True)
    total = args.n * (len(LAYOUTS) - 1)
    result["fields read right, with lines"] = f"{right_with_lines} of {total}"
    result["layouts"] = layouts
    write_result(result, "read-forms", args.output)


if __name__ == "__main__":
    main()
