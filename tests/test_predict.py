import json

import numpy as np
import pytest
from PIL import Image

from digitrec.data import load_dataset
from digitrec.errors import ImageError
from digitrec.predict import predict


def paper_photo(image8: np.ndarray, path) -> None:
    """An 8x8 test digit as a user would have it: dark ink on white paper, RGB, larger."""
    picture = Image.fromarray(255 - image8).resize((64, 64), Image.Resampling.NEAREST)
    picture.convert("RGB").save(path)


def test_user_images_are_read(digits_model, tmp_path):
    test = load_dataset("digits8x8", "test")
    for index in range(30):
        paper_photo(test.images[index], tmp_path / f"{index:02d}_{test.labels[index]}.png")
    predictions = predict(digits_model, tmp_path)
    assert len(predictions) == 30
    correct = sum(p.digit == int(p.source[-5]) for p in predictions)
    assert correct >= 25
    first = predictions[0].to_dict()
    assert set(first) == {"path", "digit", "confidence", "probabilities"}
    assert len(first["probabilities"]) == 10 and abs(sum(first["probabilities"]) - 1) < 1e-4
    assert first["confidence"] == max(first["probabilities"])
    json.dumps(first)


def test_arrays_and_blank_images(digits_model):
    test = load_dataset("digits8x8", "test")
    blank = np.full((50, 50, 3), 240, np.uint8)
    digit, empty = predict(digits_model, [test.images[0], blank])
    assert digit.digit == test.labels[0]
    assert empty.digit is None and empty.confidence is None and "blank" in empty.reason


def test_bad_images_raise_or_are_recorded(digits_model, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ImageError, match="bad.png: not a supported image"):
        predict(digits_model, tmp_path / "bad.png")
    [recorded] = predict(digits_model, [str(tmp_path / "bad.png")], errors="record")
    assert recorded.digit is None and "not a supported image" in recorded.error
    with pytest.raises(ImageError, match="expected a uint8"):
        predict(digits_model, np.zeros((8, 8), np.float32))
