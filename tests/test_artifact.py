import json
import zipfile

import numpy as np
import pytest

from digitrec.artifact import DigitModel, load_model, read_metadata
from digitrec.errors import ModelFileError


def test_round_trip_keeps_predictions_and_metadata(digits_model, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8)).astype(np.uint8)
    path = digits_model.save(tmp_path / "copy.digitrec")
    loaded = load_model(path)
    np.testing.assert_allclose(
        loaded.predict_proba(images), digits_model.predict_proba(images), atol=1e-6
    )
    metadata = loaded.metadata
    assert metadata["format"] == "digitrec-model" and metadata["preset"] == "digits8x8-mlp"
    assert metadata["preprocessing"]["input_size"] == [8, 8]
    assert metadata["class_names"] == list("0123456789")
    assert set(metadata["versions"]) >= {"digitrec", "keras", "numpy", "python"}
    assert len(metadata["data"]["sha256"]["sklearn-digits-train"]) == 64
    assert loaded.config.learning_rate == 0.1
    assert (path.stat().st_mode & 0o777) != 0o600  # readable like any file the user writes


def test_read_metadata_does_not_need_keras(digits_model_path):
    assert read_metadata(digits_model_path)["config"]["epochs"] == 50


def test_wrong_input_shape(digits_model):
    with pytest.raises(ValueError, match=r"model expects images \(n, 8, 8\)"):
        digits_model.predict_proba(np.zeros((1, 28, 28), np.uint8))
    assert digits_model.predict_proba(np.zeros((0, 8, 8), np.uint8)).shape == (0, 10)


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"not a zip at all"), "not a digitrec model file"),
        (lambda p: _zip(p, {"model.keras": b"x"}), "no digitrec.json"),
        (lambda p: _zip(p, {"digitrec.json": "{not json"}), "damaged"),
        (lambda p: _zip(p, {"digitrec.json": json.dumps({"format": "other"})}), "not a digitrec"),
        (
            lambda p: _zip(p, {"digitrec.json": json.dumps({"format": "digitrec-model"})}),
            "metadata lacks",
        ),
    ],
)
def test_files_that_are_not_models(tmp_path, make, message):
    path = tmp_path / "bad.digitrec"
    make(path)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_missing_and_newer_files(digits_model_path, tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nope.digitrec")
    metadata = read_metadata(digits_model_path)
    newer = _zip(
        tmp_path / "new.digitrec", {"digitrec.json": json.dumps({**metadata, "format_version": 99})}
    )
    with pytest.raises(ModelFileError, match="newer digitrec"):
        load_model(newer)


def test_plain_keras_file_is_refused_with_a_hint(digits_model, tmp_path):
    digits_model.keras_model.save(tmp_path / "plain.keras")
    with pytest.raises(ModelFileError, match="plain .keras file"):
        load_model(tmp_path / "plain.keras")


def test_loading_never_runs_code_from_the_file(digits_model, tmp_path):
    import keras

    marker = tmp_path / "pwned"
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Lambda(lambda x: x * 1.0)(inputs)  # code inside the file
    evil = DigitModel(
        keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(outputs))),
        digits_model.metadata,
    )
    with pytest.warns(UserWarning, match="without an ONNX network"):
        path = evil.save(tmp_path / "evil.digitrec")
    with pytest.raises(ModelFileError, match="cannot be loaded"):
        load_model(path)
    assert not marker.exists()


def test_writing_where_no_file_can_go_is_one_clear_error(tmp_path):
    from digitrec.artifact import write_atomically
    from digitrec.errors import DigitrecError

    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(DigitrecError, match="cannot write here"):
        write_atomically(tmp_path / "a-file" / "model.digitrec", b"data")
