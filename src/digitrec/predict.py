"""Reading digits from the user's own images: files, folders, URLs or arrays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from digitrec.errors import ImageError
from digitrec.images import expand_source, load_image
from digitrec.pipeline import SIZE
from digitrec.preprocess import Reading, prepare_readings
from digitrec.segment import digits_apart


@dataclass
class Prediction:
    """One image's answer; ``digit`` is None when no digit can be read (``reason`` says why)."""

    source: str
    digit: int | None = None
    confidence: float | None = None
    probabilities: list[float] | None = None
    reason: str | None = None
    error: str | None = None
    number: str | None = None  # the digits, when the picture holds a number, not one digit
    model_input: np.ndarray | None = field(default=None, repr=False)  # what the model saw
    picture: np.ndarray | None = field(default=None, repr=False)  # decoded, if kept
    ink_dark: bool | None = field(default=None, repr=False)  # the polarity read
    width: float = field(default=1.0, repr=False)  # the share of its width read at
    # All the picture's readings, when it has more than one (the other polarity, when the
    # pipeline could not tell which is ink; narrower, when its ink fills the frame:
    # ``preprocess.prepare_readings``). The model picks, then these are dropped.
    readings: list = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        result = {
            "path": self.source,
            "digit": self.digit,
            "confidence": self.confidence,
            "probabilities": self.probabilities,
        }
        if self.reason:
            result["reason"] = self.reason
        if self.number:
            result["number"] = self.number
        if self.error:
            result["error"] = self.error
        return result

    def to_row(self, n_classes: int = 10) -> list:
        """The cells under ``csv_header(n_classes)``; ``csv`` writes None as an empty cell."""
        probabilities = self.probabilities or [None] * n_classes
        return [self.source, self.digit, self.confidence, self.reason, self.error, *probabilities]


def csv_header(n_classes: int = 10) -> list[str]:
    return ["path", "digit", "confidence", "reason", "error", *(f"p{i}" for i in range(n_classes))]


def predict(
    model, images, *, errors: str = "raise", keep_pictures: bool = False
) -> list[Prediction]:
    """Read one digit from each image.

    ``images``: a path, URL, folder or glob pattern, an image array, or a list of them.
    With ``errors="record"`` an unreadable image gives a ``Prediction`` with ``error`` set
    instead of raising, so one bad file does not lose a batch. ``keep_pictures`` keeps
    each decoded picture on its ``Prediction`` (for ``--explain``), not reading it twice.

    >>> [p.digit for p in predict(load_model("cnn30.digitrec"), "my_seven.png")]
    [7]
    """
    return list(iter_predict(model, images, errors=errors, keep_pictures=keep_pictures))


def iter_predict(
    model, images, *, errors: str = "raise", keep_pictures: bool = False, batch_size: int = 256
) -> Iterator[Prediction]:
    """``predict`` as a stream, in the order of ``images``: ``batch_size`` pictures are
    decoded and classified at a time, so answers come out as they are made and memory
    stays bounded on a folder of 100,000 images.

    >>> for prediction in iter_predict(model, "scans/*.png", errors="record"):
    ...     print(prediction.source, prediction.digit)
    """
    if isinstance(model, str | Path):
        from digitrec.artifact import load_model

        model = load_model(model)
    sources = list_sources(images, errors=errors)
    for start in range(0, len(sources), batch_size):
        batch = [
            _prepare(source, model.input_size, index, errors)
            for index, source in enumerate(sources[start : start + batch_size], start)
        ]
        readable = [p for p in batch if p.model_input is not None and p.reason is None]
        _pick_readings(model, [p for p in readable if p.readings])
        if readable:
            answers = classify(model, np.stack([p.model_input for p in readable]))
            for prediction, answer in zip(readable, answers, strict=True):
                prediction.digit = answer.digit
                prediction.confidence = answer.confidence
                prediction.probabilities = answer.probabilities
                prediction.reason = answer.reason
        for prediction in batch:
            _check_number(model, prediction)
            if not keep_pictures:
                prediction.picture = None
            yield prediction


def list_sources(images, *, errors: str = "raise") -> list[str | np.ndarray | Prediction]:
    """Every image ``iter_predict`` will read, in order, without reading any (so a caller
    can count them first): folders and glob patterns expanded, arrays and files as given.

    With ``errors="record"`` an argument that names no image (an empty folder, a pattern
    matching nothing) stays in the list as a failed ``Prediction`` instead of raising.
    """
    items = images if isinstance(images, list | tuple) else [images]
    sources = []
    for item in items:
        if isinstance(item, np.ndarray | Prediction):
            sources.append(item)
            continue
        try:
            sources.extend(expand_source(str(item)))
        except ImageError as error:
            if errors == "raise":
                raise
            sources.append(Prediction(str(item), error=str(error)))
    return sources


@dataclass(frozen=True)
class Answer:
    """The model's reading of one prepared input; ``digit`` is None when it refuses."""

    digit: int | None
    confidence: float
    probabilities: list[float]
    reason: str | None = None


def classify(model, inputs: np.ndarray) -> list[Answer]:
    """Read prepared ``uint8`` model inputs ``(n, h, w)`` (from ``prepare_image``).

    The one place where model outputs become answers, shared by ``predict``, ``read`` and
    the server, so every entry point refuses and reports confidence the same way.
    """
    digit_probabilities, not_digit = model.scores(inputs)
    refused = model.calibration.refused(digit_probabilities, not_digit)
    threshold = model.calibration.threshold
    answers = []
    for row, other, refuse in zip(digit_probabilities, not_digit, refused, strict=True):
        best = int(row.argmax())
        confidence = round(float(row[best]), 6)
        reason = None
        if refuse and other >= row[best]:
            reason = f"not a digit ({other:.0%} sure; best digit {best} at {confidence:.0%})"
        elif refuse:
            reason = (
                f"unsure: best guess {best} at {confidence:.0%}, below the "
                f"{threshold:.0%} needed to answer"
            )
        answers.append(
            Answer(
                digit=None if refuse else best,
                confidence=confidence,
                probabilities=[round(float(x), 6) for x in row],
                reason=reason,
            )
        )
    return answers


# A first reading that the model takes for "not a digit" this surely stays as read (the
# other polarity of a letter or a scribble under a shadow is a blob that can pass for a
# 1), unless the other reading is a digit this surely (a bold 0 cropped tight reads as a
# filled blob one way, and as a clear 0 the other).
KEEP_NOT_DIGIT, SURE_DIGIT = 0.9, 0.99


def best_readings(model, readings: dict[int, list[Reading]]) -> dict[int, int]:
    """Which of picture ``i``'s ``readings[i]`` (``preprocess.prepare_readings``, the
    pipeline's own first) to keep: its index in that list.

    First the polarity: the readings at full width are taken in turn, and the one kept so
    far gives way to a surer digit, not to a refusal: the wrong polarity of a bold digit is
    its background (a blob, corners), which may look like nothing at all. Chosen on bold
    MNIST training digits cropped to their ink and on the gallery; measured by
    ``bench/tight_crops.py`` (held-out digits: 72.5% read right with the pipeline's own
    polarity, 96.1% with this choice).

    Then the width, where that polarity was also read narrowed (``pipeline.NARROWER``):
    those readings vote with their probabilities, "not a digit" included, and the one
    that gives the winning digit most is kept (the full-width one, if "not a digit"
    wins: noise fills its frame too, and one of four readings may pass for an 8). The
    surest reading alone would not do: a stretched 1 read at full width is often a sure 7.
    """
    if not readings:
        return {}
    digits, not_digit = model.scores(np.stack([r.image for rs in readings.values() for r in rs]))
    best = digits.max(axis=1)
    chosen, start = {}, 0
    for index, candidates in readings.items():
        rows = range(start, start + len(candidates))
        start += len(candidates)
        full = [k for k, row in zip(rows, candidates, strict=True) if row.width == 1]
        kept = full[0]
        for k in full[1:]:
            if best[k] > best[kept] and (not_digit[kept] < KEEP_NOT_DIGIT or best[k] >= SURE_DIGIT):
                kept = k
        dark = candidates[kept - rows.start].ink_dark
        group = [k for k, row in zip(rows, candidates, strict=True) if row.ink_dark == dark]
        if len(group) > 1:
            votes = np.column_stack([digits[group], not_digit[group]]).mean(axis=0)
            winner = int(votes.argmax())
            if winner < digits.shape[1]:  # else "not a digit" won: keep the full width
                kept = group[int(digits[group, winner].argmax())]
        chosen[index] = kept - rows.start
    return chosen


def choose_readings(model, inputs: np.ndarray, readings: dict[int, list[Reading]]) -> np.ndarray:
    """``inputs`` with the reading of picture ``i`` that the model prefers among
    ``readings[i]`` (``best_readings``) put in."""
    chosen = inputs.copy() if readings else inputs
    for index, kept in best_readings(model, readings).items():
        chosen[index] = readings[index][kept].image
    return chosen


def _pick_readings(model, predictions: list[Prediction]) -> None:
    if not predictions:
        return
    readings = {i: p.readings for i, p in enumerate(predictions)}
    for index, kept in best_readings(model, readings).items():
        prediction = predictions[index]
        reading = prediction.readings[kept]
        prediction.model_input, prediction.ink_dark = reading.image, reading.ink_dark
        prediction.width = reading.width
        prediction.readings = []


def source_name(source, index: int) -> str:
    """How answers name a source: its path or URL, or ``<array N>`` for an array."""
    return f"<array {index}>" if isinstance(source, np.ndarray) else source


def load_picture(source, index: int) -> tuple[str, np.ndarray]:
    """``(name, image)`` for a file, URL or array, checked to be a ``uint8`` grey or
    colour picture; raises ``ImageError`` naming the source. Shared with ``read``."""
    name = source_name(source, index)
    image = source if isinstance(source, np.ndarray) else load_image(source)
    if image.dtype != np.uint8:
        raise ImageError(f"{name}: expected a uint8 image array, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ImageError(
            f"{name}: expected a grey (h, w) or colour (h, w, 3|4) image, got shape {image.shape}"
        )
    if min(image.shape[:2]) < 1:
        raise ImageError(f"{name}: image has no pixels")
    return name, image


def _prepare(source, size: tuple[int, int], index: int, errors: str) -> Prediction:
    if isinstance(source, Prediction):  # an argument that named no image at all
        return source
    try:
        name, image = load_picture(source, index)
    except ImageError as error:
        if errors == "raise":
            raise
        return Prediction(source_name(source, index), error=str(error))
    readings = prepare_readings(image, size)
    if not readings:
        return Prediction(
            name,
            reason="blank image: no ink found",
            model_input=np.zeros(size, np.uint8),
            picture=image,
        )
    return Prediction(
        name,
        model_input=readings[0].image,
        picture=image,
        ink_dark=readings[0].ink_dark,
        readings=readings if len(readings) > 1 else [],
    )


# A refused picture is said to hold a number only when each of its digits reads this surely
# (a hand-drawn K is a 1 and a "<" that passes for a 6 at 83%).
NUMBER_SURE = 0.9


def _check_number(model, prediction: Prediction) -> None:
    """A picture refused as one digit, or read as one though its model input shows
    several side by side, that holds a number is refused, and says which (``number``)."""
    if prediction.picture is None:  # unreadable
        return
    if prediction.digit is not None and not side_by_side(prediction.model_input):
        return
    text = number(model, prediction.picture)
    if text:
        prediction.digit, prediction.number = None, text
        prediction.reason = (
            f"{len(text)} digits in a row, not one: read as a number (digitrec read), "
            f'it says "{text}"'
        )


def side_by_side(model_input: np.ndarray, level: int = 64, tall: float = 0.6) -> bool:
    """Whether a model input holds two or more pieces of ink with paper between them, each
    at least ``tall`` times as tall as the tallest: the pipeline kept a digit and its
    neighbours. Cheap, so every answer can be checked. It held for 11 of the 13 numbers
    written apart that were read as one digit, and for none of 2,000 gallery digits read
    (MNIST training digits and mouse drawings, seeds 811 and 812)."""
    ink = model_input > level
    labels, count = ndimage.label(ink.any(axis=0))
    if count < 2:
        return False
    rows = [np.flatnonzero(ink[:, labels == k].any(axis=1)) for k in range(1, count + 1)]
    heights = np.array([r[-1] - r[0] + 1 for r in rows])
    return np.count_nonzero(heights >= tall * heights.max()) >= 2


def number(model, picture: np.ndarray) -> str | None:
    """The number a picture holds instead of one digit: its digits, when they stand apart
    and each reads surely (``segment.digits_apart``), else None. Read numbers with
    ``read``; this only tells a number from a digit."""
    if model.input_size != (SIZE, SIZE):
        return None
    digits = digits_apart(picture)
    if not digits:
        return None
    answers = classify(model, np.stack([digit.model_input for digit in digits]))
    if any(answer.digit is None or answer.confidence < NUMBER_SURE for answer in answers):
        return None
    return "".join(str(answer.digit) for answer in answers)
