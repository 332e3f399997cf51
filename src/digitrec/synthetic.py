"""Made-up training pictures: what is not a digit, and digits in printed type.

A model trained only on digits has to call everything a digit: a letter, a scribble,
a smudge of noise all come out as "4 (99%)". The bundled model gets an eleventh class,
"not a digit", learnt from the pictures below. Each is drawn at photo-like size and sent
through the same pipeline as a user's picture, so the model sees non-digits exactly as
it would see them in use.

Printed digits from the same fonts are added as *digits*, so that "drawn with a font"
never becomes the cue for "not a digit".
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitrec import pipeline

CANVAS = 128
# Letters and signs that no careful writer's digit resembles. Left out on purpose:
# O o D Q (0), I l i j (1), Z z (2), S s $ (5), b G (6), T (7), B & (8), g q a P (9),
# C c U u (an open 0), r (a 7's hook).
NOT_DIGITS = "AEFHKMNRWXYefhkmnwx#%@*+=?"
FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSansMono.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralItalic.ttf",
)  # (not the cm* fonts: they map ASCII to Greek and script letters like a 9 or an l)


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    import matplotlib  # ships the fonts; imported only when drawing

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("L", (CANVAS, CANVAS), 255)
    return image, ImageDraw.Draw(image)


def glyph(text: str, rng: np.random.Generator) -> np.ndarray:
    """``text`` in a random font, weight and slant, dark on white, ``uint8`` 128x128."""
    image, draw = _canvas()
    font = _font(FONTS[rng.integers(len(FONTS))], int(rng.integers(60, 96)))
    stroke = int(rng.integers(0, 5))
    draw.text((CANVAS / 2, CANVAS / 2), text, fill=0, font=font, anchor="mm", stroke_width=stroke)
    angle = rng.uniform(-15, 15)
    image = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=255)
    return np.asarray(image)


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A tangled pen trace: a smooth random walk that turns and crosses itself. Long
    and twisty on purpose: a short, simple curve could be someone's 1, 2, 3 or 6."""
    image, draw = _canvas()
    n = int(rng.integers(90, 160))
    turn = np.cumsum(rng.normal(0, 0.6, n))
    step = rng.uniform(4, 9)
    points = np.cumsum(np.stack([np.cos(turn), np.sin(turn)], 1) * step, axis=0)
    points -= points.mean(axis=0)
    points *= (CANVAS * 0.35) / max(np.abs(points).max(), 1)
    points += CANVAS / 2
    draw.line([tuple(p) for p in points], fill=0, width=int(rng.integers(3, 10)), joint="curve")
    return np.asarray(image)


def hatching(rng: np.random.Generator) -> np.ndarray:
    """A grid, hash or star of crossing straight strokes."""
    image, draw = _canvas()
    width = int(rng.integers(3, 9))
    for _ in range(int(rng.integers(4, 8))):
        angle = rng.uniform(0, np.pi)
        offset = rng.uniform(-30, 30)
        dx, dy = np.cos(angle) * 45, np.sin(angle) * 45
        cx, cy = CANVAS / 2 - np.sin(angle) * offset, CANVAS / 2 + np.cos(angle) * offset
        draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=0, width=width)
    return np.asarray(image)


def blob(rng: np.random.Generator) -> np.ndarray:
    """A filled box, square-ish (a filled oval would be too close to a bold 0)."""
    image, draw = _canvas()
    width = rng.uniform(45, 90)
    height = width * rng.uniform(0.7, 1.4)
    x0, y0 = (CANVAS - width) / 2, (CANVAS - height) / 2
    draw.rectangle((x0, y0, x0 + width, y0 + height), fill=0)
    angle = rng.uniform(0, 90)
    return np.asarray(image.rotate(angle, fillcolor=255))


def noise(rng: np.random.Generator) -> np.ndarray:
    """Speckle, grain or blotchy texture with nothing written on it."""
    from scipy import ndimage

    field = rng.uniform(0, 255, (CANVAS, CANVAS))
    field = ndimage.gaussian_filter(field, rng.uniform(0, 4))
    field = (field - field.min()) / max(np.ptp(field), 1e-6) * 255
    return field.astype(np.uint8)


GENERATORS = {
    "letter": lambda rng: glyph(NOT_DIGITS[rng.integers(len(NOT_DIGITS))], rng),
    "scribble": scribble,
    "hatching": hatching,
    "blob": blob,
    "noise": noise,
}
WEIGHTS = {"letter": 0.5, "scribble": 0.15, "hatching": 0.1, "blob": 0.1, "noise": 0.15}


def non_digits(n: int, seed: int = 0) -> np.ndarray:
    """``n`` pipeline-normalised 28x28 pictures of things that are not digits.

    Pictures the pipeline finds blank are redrawn (they are refused before the model),
    and so are thin, elongated ones: a lone stroke may be someone's 1.
    """
    rng = np.random.default_rng(seed)
    kinds = list(GENERATORS)
    weights = np.array([WEIGHTS[kind] for kind in kinds])
    out = []
    while len(out) < n:
        kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
        stages = pipeline.normalize_stages(GENERATORS[kind](rng))
        if not stages.blank and _elongation(stages.cleaned) < 2.5:
            out.append(stages.output)
    return np.stack(out)


def _elongation(mask: np.ndarray) -> float:
    """Length over width of the mask's principal axes (1 for a disk, large for a line)."""
    points = np.argwhere(mask).astype(np.float64)
    if len(points) < 3:
        return np.inf
    spread = np.linalg.eigvalsh(np.cov(points.T))
    return float(np.sqrt(spread[1] / max(spread[0], 1e-6)))


def printed_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` digits in random fonts, pipeline-normalised 28x28, and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.stack([pipeline.normalize(glyph(str(label), rng)) for label in labels])
    return images, labels
