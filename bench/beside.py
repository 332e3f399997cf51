"""How well are a digit and a number read with a pen, a pencil or a notebook's spiral
binding in the photo beside them?

People photograph what they wrote where they wrote it: the pen they wrote with lies on
the page, the page is torn from a spiral notebook. Each case is a test-gallery digit (an
MNIST digit's handwriting or a mouse drawing, ``digitrec.gallery``) on a page with one of:

- a pen: barrel, cap, clip and tip, in one of six colours (dark blue, black, red, green,
  silver, white), a light streak along it and a soft shadow under it; 0.1-0.45 of the
  digit's height wide and 1.5-5 times as long, at any angle, clear of the digit, and
  in one case of two running out of the picture;
- a pencil: three lit faces, a sharpened wooden cone with its lead, a ferrule and an
  eraser;
- a spiral binding: a row of punched holes (the desk showing through) along one edge of
  the page, with the wire through them.

Then the photo's light falls off across it, it may be seen at an angle, and it gets
sensor noise and JPEG. ``predict`` reads the digits; ``read`` reads numbers of 2-5 MNIST
digits with a pen or a pencil beside them. The same pictures without the object are
read too, for reference. Prints JSON and writes it to ``--output`` or
``bench/results/beside-<date>.json``:

    python bench/beside.py --data-dir ../shared/datasets --n 200

Tune on ``--split train``; report ``--split test`` (the default).
"""

from __future__ import annotations

import numpy as np
from machine import header, made_up_digits_parser, write_result
from marked import digit_ink
from PIL import Image, ImageDraw
from read_numbers import GAPS, number_ink
from scipy import ndimage
from sheets import photographed, scored

from digitrec import gallery
from digitrec.artifact import load_model
from digitrec.data import load_dataset
from digitrec.read import read

PEN_COLOURS = {
    "dark blue": (0.1, 0.15, 0.45),
    "black": (0.08, 0.08, 0.1),
    "red": (0.72, 0.1, 0.1),
    "green": (0.1, 0.45, 0.22),
    "silver": (0.7, 0.72, 0.75),
    "white": (0.96, 0.96, 0.95),
}
PENCIL_COLOURS = ((0.95, 0.78, 0.15), (0.2, 0.45, 0.25), (0.75, 0.15, 0.15), (0.15, 0.2, 0.5))
OBJECTS = ("pen", "pencil", "spiral")


def _along(centre, angle: float, width: float):
    """A point at ``t`` along the object's axis and ``s`` across it, from its tip."""
    axis = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-axis[1], axis[0]])

    def point(t: float, s: float) -> tuple[float, float]:
        x, y = np.asarray(centre) + t * axis + s * width * normal
        return float(x), float(y)

    return point


def _quad(point, t0: float, t1: float, s0: float, s1: float, s2: float | None = None):
    """A band from ``t0`` to ``t1`` along the axis, ``s0``..``s1`` across it at ``t0``
    and ``s0``..``s2`` at ``t1`` (a cone when ``s2`` differs)."""
    s2 = s1 if s2 is None else s2
    scale = s2 / s1 if s1 else 1.0
    return [point(t0, s0), point(t0, s1), point(t1, s2), point(t1, s0 * scale)]


def _rgb(colour, light: float = 1.0) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * light, 0, 1) * 255) for c in colour)


def pen(
    draw: ImageDraw.ImageDraw, centre, angle: float, length: float, width: float, colour, paint=_rgb
):
    """A pen from its tip (at ``centre - length/2`` along the axis) to its cap's end.
    ``paint(colour, light)``: the fill for a part (``_rgb``; a mask's 255 for its shape)."""
    point = _along(centre, angle, width)
    start = -length / 2
    tip, cap = start + 0.08 * length, start + 0.65 * length
    draw.polygon(_quad(point, start, tip, -0.08, 0.08, 0.5), fill=paint((0.2, 0.2, 0.22)))
    draw.polygon(_quad(point, tip, cap, -0.5, 0.5), fill=paint(colour))
    draw.polygon(_quad(point, cap, length / 2, -0.55, 0.55), fill=paint(colour, 0.8))
    draw.polygon(_quad(point, tip, length / 2, -0.3, -0.12), fill=paint(colour, 1.5))  # light
    clip = (0.6, 0.75, 0.8)
    draw.polygon(
        _quad(point, cap + 0.05 * length, length / 2 - 0.03 * length, 0.2, 0.4), fill=paint(clip)
    )


def pencil(
    draw: ImageDraw.ImageDraw, centre, angle: float, length: float, width: float, colour, paint=_rgb
):
    """A hexagonal pencil: three faces in view, a sharpened end and an eraser."""
    point = _along(centre, angle, width)
    start = -length / 2
    lead, wood, ferrule = start + 0.03 * length, start + 0.12 * length, length / 2 - 0.1 * length
    draw.polygon(_quad(point, start, lead, -0.06, 0.06, 0.15), fill=paint((0.15, 0.15, 0.17)))
    draw.polygon(_quad(point, lead, wood, -0.15, 0.15, 0.5), fill=paint((0.88, 0.72, 0.52)))
    for (s0, s1), light in zip(
        ((-0.5, -0.17), (-0.17, 0.17), (0.17, 0.5)), (1.0, 0.85, 0.7), strict=True
    ):
        draw.polygon(_quad(point, wood, ferrule, s0, s1), fill=paint(colour, light))
    eraser = length / 2 - 0.04 * length
    draw.polygon(_quad(point, ferrule, eraser, -0.52, 0.52), fill=paint((0.72, 0.72, 0.7)))
    draw.polygon(_quad(point, eraser, length / 2, -0.5, 0.5), fill=paint((0.9, 0.5, 0.55)))


def lay_object(page: np.ndarray, box, kind: str, rng) -> np.ndarray:
    """``page`` (float RGB) with a pen or pencil lying beside ``box`` (top, bottom, left,
    right: the writing), clear of it, and its soft shadow."""
    height, width = page.shape[:2]
    tall = box[1] - box[0]
    thick = tall * rng.uniform(0.1, 0.45 if kind == "pen" else 0.3)
    length = tall * rng.uniform(1.5, 5.0)
    angle = rng.uniform(0, np.pi)
    if kind == "pen":
        shape, colour = pen, PEN_COLOURS[str(rng.choice(list(PEN_COLOURS)))]
    else:
        shape, colour = pencil, PENCIL_COLOURS[int(rng.integers(len(PENCIL_COLOURS)))]
    off = rng.random() < 0.5  # runs out of the picture
    clear = np.zeros((height, width), bool)
    gap = int(0.1 * tall + thick)
    clear[max(0, box[0] - gap) : box[1] + gap, max(0, box[2] - gap) : box[3] + gap] = True
    for attempt in range(400):
        if attempt and attempt % 50 == 0:
            length *= 0.8  # no room for it that long
        centre = rng.uniform([-0.2 * width, -0.2 * height], [1.2 * width, 1.2 * height])
        outline = Image.new("L", (width, height))
        shape(ImageDraw.Draw(outline), centre, angle, length, thick, colour, lambda *_: 255)
        mask = np.asarray(outline) > 0
        inside = mask.sum() / max(1.0, 0.9 * length * thick)
        if (
            mask.any()
            and not (mask & clear).any()
            and (0.3 < inside < 0.9 if off else inside > 0.98)
        ):
            break
    else:
        return page  # no room beside it: the picture stays as it is
    picture = Image.fromarray(gallery.to_uint8(page))
    shape(ImageDraw.Draw(picture), centre, angle, length, thick, colour)
    drawn = np.asarray(picture, np.float32) / 255.0
    offset = rng.uniform(0.1, 0.4, 2) * thick
    shadow = ndimage.gaussian_filter(
        ndimage.shift(mask.astype(np.float32), offset, order=0), thick * 0.3
    )
    shaded = page * (1 - rng.uniform(0.2, 0.45) * shadow[..., None])
    return np.where(mask[..., None], drawn, shaded)


def spiral(page: np.ndarray, rng) -> np.ndarray:
    """``page`` with a spiral binding's holes and wire along its left or top edge."""
    turned = rng.random() < 0.3  # along the top edge: drawn along the left, turned back
    page = np.ascontiguousarray(np.rot90(page)) if turned else page.copy()
    height, width = page.shape[:2]
    size = height * rng.uniform(0.02, 0.04)
    step = size * rng.uniform(1.6, 2.5)
    inset = size * rng.uniform(0.6, 1.5)
    desk = rng.uniform(0.08, 0.35)
    wire = rng.uniform(0.15, 0.5)
    picture = Image.fromarray(gallery.to_uint8(page))
    draw = ImageDraw.Draw(picture)
    round_holes = rng.random() < 0.5
    for y in np.arange(rng.uniform(0, step), height, step):
        hole = (inset, y, inset + size, y + size * (1 if round_holes else 0.7))
        if round_holes:
            draw.ellipse(hole, fill=_rgb((desk,) * 3))
        else:
            draw.rectangle(hole, fill=_rgb((desk,) * 3))
        draw.line(
            [(-2, y + size * 0.9), (inset + size * 0.5, y + size * 0.35)],
            fill=_rgb((wire,) * 3),
            width=max(1, int(size * 0.25)),
        )
    image = np.asarray(picture, np.float32) / 255.0
    return np.ascontiguousarray(np.rot90(image, -1)) if turned else image


def on_page(ink: np.ndarray, rng) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The ink written on a page with room around it: float RGB, and the writing's box."""
    height, width = ink.shape
    pad = [int(rng.uniform(0.2, 0.9) * height) for _ in range(4)]
    paper = np.clip(np.array([0.97, 0.96, 0.92]) + rng.normal(0, 0.02, 3), 0, 1)
    page = np.ones((height + pad[0] + pad[1], width + pad[2] + pad[3], 3), np.float32) * paper
    region = page[pad[0] : pad[0] + height, pad[2] : pad[2] + width]
    region *= 1 - 0.9 * ink[..., None]
    rows, cols = np.nonzero(ink > 0.3)
    box = (
        rows.min() + pad[0],
        rows.max() + 1 + pad[0],
        cols.min() + pad[2],
        cols.max() + 1 + pad[2],
    )
    return page, box


def besides(page: np.ndarray, box, kind: str, rng) -> np.ndarray:
    return spiral(page, rng) if kind == "spiral" else lay_object(page, box, kind, rng)


def main() -> None:
    args = made_up_digits_parser(__doc__, 200, "cases of each object", 0).parse_args()
    model = load_model(args.model)
    mnist = load_dataset("mnist", args.split, data_dir=args.data_dir)
    result = {**header("beside.py"), "model": args.model or "bundled", "split": args.split}
    result |= {"n": args.n, "seed": args.seed}
    for number, kind in enumerate(OBJECTS):
        beside, alone, labels = [], [], []
        for index in range(args.n):
            rng = np.random.default_rng([args.seed, index, number])
            ink, label = digit_ink(index, mnist, rng)
            page, box = on_page(ink, rng)
            seed = [args.seed, index, number, 1]
            beside.append(photographed(besides(page, box, kind, rng), np.random.default_rng(seed)))
            alone.append(photographed(page, np.random.default_rng(seed)))
            labels.append(label)
        alone_right = scored(model, alone, labels)["accuracy"]
        result[kind] = {**scored(model, beside, labels), "alone": alone_right}
    for number, kind in enumerate(OBJECTS[:2]):
        beside, alone, truths = [], [], []
        for index in range(args.n // 2):
            rng = np.random.default_rng([args.seed, index, number, 2])
            chosen = rng.choice(len(mnist.labels), int(rng.integers(2, 6)), replace=False)
            truths.append("".join(str(mnist.labels[i]) for i in chosen))
            ink = number_ink([mnist.images[i] for i in chosen], GAPS["apart"], rng)
            page, box = on_page(ink, rng)
            seed = [args.seed, index, number, 3]
            beside.append(photographed(besides(page, box, kind, rng), np.random.default_rng(seed)))
            alone.append(photographed(page, np.random.default_rng(seed)))
        texts = [r.text for r in read(model, beside)]
        plain = [r.text for r in read(model, alone)]
        result[f"number, {kind}"] = {
            "n": len(truths),
            "read right": float(np.mean([t == x for t, x in zip(truths, texts, strict=True)])),
            "alone": float(np.mean([t == x for t, x in zip(truths, plain, strict=True)])),
            "examples": [x for t, x in zip(truths, texts, strict=True) if t != x][:5],
        }
    write_result(result, "beside", args.output)


if __name__ == "__main__":
    main()
