"""Reading whole numbers: the digit string in each image, left to right.

``segment`` finds the digits; ``predict.classify`` reads them exactly as it reads single
digits, so a refusal or a confidence means the same here as in ``predict``. Where digits
touch, the model's confidence also decides where to cut them (``segment.split_by_reading``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec.errors import ConfigError, DigitrecError, ImageError
from digitrec.pipeline import SIZE
from digitrec.predict import (
    Answer,
    Prediction,
    classify,
    list_sources,
    load_picture,
    source_name,
)
from digitrec.segment import segment

UNREADABLE = "?"  # stands in the text for a digit the model refuses to read


@dataclass
class ReadDigit:
    """One digit of a reading; ``digit`` is None when the model refuses it (``reason``)."""

    digit: int | None
    confidence: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the image's pixels
    reason: str | None = None

    def to_dict(self) -> dict:
        result = {"digit": self.digit, "confidence": self.confidence, "box": list(self.box)}
        if self.reason:
            result["reason"] = self.reason
        return result


@dataclass
class Reading:
    """One image's number. ``text`` holds "?" for each digit the model refused, and is
    None when nothing could be read (``reason`` or ``error`` says why)."""

    source: str
    text: str | None = None
    digits: list[ReadDigit] = field(default_factory=list)
    reason: str | None = None
    error: str | None = None

    def summary(self) -> str:
        """``2024 (min confidence 97.1%)``, or why there is no number."""
        if self.text is None:
            return f"no number ({self.error or self.reason})"
        lowest = min(digit.confidence for digit in self.digits)
        return f"{self.text} (min confidence {lowest:.1%})"

    def to_dict(self) -> dict:
        result = {
            "path": self.source,
            "text": self.text,
            "digits": [digit.to_dict() for digit in self.digits],
        }
        if self.reason:
            result["reason"] = self.reason
        if self.error:
            result["error"] = self.error
        return result


def read(model, images, *, errors: str = "raise") -> list[Reading]:
    """Read the number written in each image: its digits, left to right.

    ``model``: a ``DigitModel``, a model file, or None for the bundled model. ``images``:
    a path, URL, folder or glob pattern, an image array, or a list of them, as for
    ``predict``. With ``errors="record"`` an unreadable image gives a ``Reading`` with
    ``error`` set instead of raising, so one bad file does not lose a batch.

    >>> [r.text for r in read("cnn30.digitrec", "meter.jpg")]
    ['04719']
    """
    return list(iter_read(model, images, errors=errors))


def iter_read(model, images, *, errors: str = "raise", batch_size: int = 64) -> Iterator[Reading]:
    """``read`` as a stream, in the order of ``images``: the digits of ``batch_size``
    pictures are classified at a time, so readings come out as they are made."""
    if errors not in ("raise", "record"):
        raise ConfigError(f'errors must be "raise" or "record", got {errors!r}')
    if model is None or isinstance(model, str | Path):
        from digitrec.artifact import load_model

        model = load_model(model)
    if model.input_size != (SIZE, SIZE):
        raise DigitrecError(
            f"reading numbers needs a model that takes {SIZE}x{SIZE} images; this one takes "
            f"{model.input_size[0]}x{model.input_size[1]}"
        )

    # Every answer the model gave for this batch, by model input: most digits found were
    # read already while cuts were scored, and different pieces can give the same input.
    known: dict[bytes, Answer] = {}

    def answers(inputs: list[np.ndarray]) -> list[Answer]:
        new = {x.tobytes(): x for x in inputs if x.tobytes() not in known}
        if new:
            known.update(zip(new, classify(model, np.stack(list(new.values()))), strict=True))
        return [known[x.tobytes()] for x in inputs]

    def score(inputs: np.ndarray) -> list[float]:
        """How well each input reads as one digit: the log of its (calibrated) confidence,
        which a model with a "not a digit" output keeps low for a stray piece."""
        return [math.log(max(answer.confidence, 1e-6)) for answer in answers(list(inputs))]

    sources = list_sources(images, errors=errors)
    for start in range(0, len(sources), batch_size):
        known.clear()
        batch = [
            _segment(source, index, errors, score)
            for index, source in enumerate(sources[start : start + batch_size], start)
        ]
        found = iter(answers([digit.model_input for _, digits in batch for digit in digits]))
        for reading, digits in batch:
            for digit in digits:
                answer = next(found)
                reading.digits.append(
                    ReadDigit(answer.digit, answer.confidence, digit.box, answer.reason)
                )
            if digits:
                reading.text = "".join(
                    UNREADABLE if d.digit is None else str(d.digit) for d in reading.digits
                )
            yield reading


def _segment(source, index: int, errors: str, score) -> tuple[Reading, list]:
    """A reading still without answers, and the digits found in its picture."""
    if isinstance(source, Prediction):  # an argument that named no image at all
        return Reading(source.source, error=source.error), []
    try:
        name, image = load_picture(source, index)
    except ImageError as error:
        if errors == "raise":
            raise
        return Reading(source_name(source, index), error=str(error)), []
    digits = segment(image, score)
    return Reading(name, reason=None if digits else "blank image: no ink found"), digits
