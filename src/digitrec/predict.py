"""Reading digits from the user's own images: files, folders, URLs or arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec.errors import ImageError
from digitrec.images import expand_sources, load_image
from digitrec.preprocess import prepare_image


@dataclass
class Prediction:
    """One image's answer; ``digit`` is None when no digit can be read (``reason`` says why)."""

    source: str
    digit: int | None = None
    confidence: float | None = None
    probabilities: list[float] | None = None
    reason: str | None = None
    error: str | None = None
    model_input: np.ndarray | None = field(default=None, repr=False)  # what the model saw
    picture: np.ndarray | None = field(default=None, repr=False)  # decoded, if kept

    def to_dict(self) -> dict:
        result = {
            "path": self.source,
            "digit": self.digit,
            "confidence": self.confidence,
            "probabilities": self.probabilities,
        }
        if self.reason:
            result["reason"] = self.reason
        if self.error:
            result["error"] = self.error
        return result


def predict(
    model, images, *, errors: str = "raise", keep_pictures: bool = False
) -> list[Prediction]:
    """Read one digit from each image.

    ``images``: a path, URL or folder, an image array, or a list of them. With
    ``errors="record"`` an unreadable image gives a ``Prediction`` with ``error`` set
    instead of raising, so one bad file does not lose a batch. ``keep_pictures`` keeps
    each decoded picture on its ``Prediction`` (for ``--explain``), not reading it twice.

    >>> [p.digit for p in predict(load_model("cnn30.digitrec"), "my_seven.png")]
    [7]
    """
    if isinstance(model, str | Path):
        from digitrec.artifact import load_model

        model = load_model(model)
    items = images if isinstance(images, list | tuple) else [images]
    sources = []
    for item in items:
        if isinstance(item, np.ndarray):
            sources.append(item)
        else:
            sources.extend(expand_sources([str(item)]))
    predictions = [
        _prepare(source, model.input_size, index, errors) for index, source in enumerate(sources)
    ]
    if not keep_pictures:
        for prediction in predictions:
            prediction.picture = None
    readable = [p for p in predictions if p.model_input is not None and p.reason is None]
    if readable:
        probabilities = model.predict_proba(np.stack([p.model_input for p in readable]))
        for prediction, row in zip(readable, probabilities, strict=True):
            prediction.digit = int(row.argmax())
            prediction.confidence = round(float(row.max()), 6)
            prediction.probabilities = [round(float(x), 6) for x in row]
    return predictions


def _prepare(source, size: tuple[int, int], index: int, errors: str) -> Prediction:
    name = f"<array {index}>" if isinstance(source, np.ndarray) else source
    try:
        image = source if isinstance(source, np.ndarray) else load_image(source)
        if image.dtype != np.uint8:
            raise ImageError(f"{name}: expected a uint8 image array, got {image.dtype}")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise ImageError(
                f"{name}: expected a grey (h, w) or colour (h, w, 3|4) image, "
                f"got shape {image.shape}"
            )
        if min(image.shape[:2]) < 1:
            raise ImageError(f"{name}: image has no pixels")
    except ImageError as error:
        if errors == "raise":
            raise
        return Prediction(name, error=str(error))
    model_input = prepare_image(image, size)
    if model_input is None:
        return Prediction(
            name,
            reason="blank image: no ink found",
            model_input=np.zeros(size, np.uint8),
            picture=image,
        )
    return Prediction(name, model_input=model_input, picture=image)
