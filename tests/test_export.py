"""ONNX export and the TensorFlow-free runtime: same answers as Keras, no TF at start."""

import zipfile

import numpy as np
import onnxruntime
import pytest

from digitrec.artifact import ONNX_ENTRY, load_model
from digitrec.cli import main
from digitrec.config import PRESETS
from digitrec.errors import ConfigError, ModelFileError
from digitrec.export import _same_padding, to_onnx_bytes
from digitrec.models import MODELS, build_model
from digitrec.runtime import OnnxNetwork


def _randomised(name: str, size: int):
    """An untrained network of ``name`` with random weights and batch-norm statistics,
    so folding the statistics into the convolutions is really tested."""
    config = PRESETS["default"].replace(model=name)
    network = build_model(config, (size, size), n_classes=11)
    rng = np.random.default_rng(1)
    network.set_weights(
        [
            rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
            if "variance" in v.path
            else rng.normal(0, 0.3, w.shape).astype(np.float32)
            for v, w in zip(network.weights, network.get_weights(), strict=True)
        ]
    )
    return network


@pytest.mark.parametrize("name", [n for n in MODELS if n != "sklearn-mlp"])
def test_every_model_exports_exactly(name):
    size = 8 if name == "mlp-64-15-10" else 28
    network = _randomised(name, size)
    inputs = np.random.default_rng(2).random((64, size, size, 1), dtype=np.float32)
    expected = network.predict(inputs, verbose=0)
    got = OnnxNetwork(to_onnx_bytes(network)).predict(inputs, batch_size=16)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4


def test_same_padding_matches_tensorflow():
    assert _same_padding(24, 5, 2) == (1, 2)  # 24 -> 12: the extra row goes last
    assert _same_padding(28, 3, 1) == (1, 1)
    assert _same_padding(5, 1, 1) == (0, 0)


def test_unsupported_layers_are_named():
    import keras

    network = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.GaussianNoise(0.1)])
    with pytest.raises(ConfigError, match="GaussianNoise"):
        to_onnx_bytes(network)


def test_bundled_model_onnx_equals_keras_on_all_mnist_test(real_data_dir):
    """The issue's contract: same argmax on all 10k test images, max |dp| <= 1e-4."""
    from digitrec.data import load_dataset
    from digitrec.preprocess import to_model_input

    images = to_model_input(load_dataset("mnist", "test", data_dir=real_data_dir).images)
    onnx_model, keras_model = load_model(), load_model(runtime="keras")
    assert onnx_model.runtime == "onnx" and keras_model.runtime == "keras"
    got = onnx_model._network.predict(images)
    expected = keras_model.keras_model.predict(images, batch_size=1024, verbose=0)
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert np.abs(got - expected).max() <= 1e-4


def test_saved_files_carry_onnx_and_old_files_still_load(digits_model, tmp_path):
    path = digits_model.save(tmp_path / "new.digitrec")
    assert ONNX_ENTRY in zipfile.ZipFile(path).namelist()
    assert load_model(path).runtime == "onnx"
    old = tmp_path / "old.digitrec"  # as saved before model.onnx existed
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.namelist():
            if item != ONNX_ENTRY:
                target.writestr(item, source.read(item))
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8)).astype(np.uint8)
    fallback = load_model(old)
    assert fallback.runtime == "keras"
    np.testing.assert_allclose(
        fallback.predict_proba(images), load_model(path).predict_proba(images), atol=1e-5
    )
    with pytest.raises(ModelFileError, match="has no ONNX network"):
        load_model(old, runtime="onnx")
    # `export --format digitrec` brings an old file up to date.
    assert (
        main(["export", str(old), "--format", "digitrec", "-o", str(tmp_path / "up.digitrec")]) == 0
    )
    assert load_model(tmp_path / "up.digitrec").runtime == "onnx"


def test_export_onnx_for_other_runtimes(digits_model_path, tmp_path, capsys):
    target = tmp_path / "out" / "model.onnx"
    assert main(["export", str(digits_model_path), "-o", str(target)]) == 0
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": np.zeros((3, 8, 8, 1), np.float32)})
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1, atol=1e-5)
    assert main(["export", str(tmp_path / "missing.digitrec"), "-o", str(target)]) == 1
    assert "no such model file" in capsys.readouterr().err


def test_a_damaged_onnx_network_is_a_clear_error(digits_model_path, tmp_path):
    damaged = tmp_path / "damaged.digitrec"
    with zipfile.ZipFile(digits_model_path) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.namelist():
            data = source.read(item)
            target.writestr(item, data[: len(data) // 2] if item == ONNX_ENTRY else data)
    with pytest.raises(ModelFileError, match="damaged network"):
        load_model(damaged)
