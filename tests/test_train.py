import dataclasses
import zipfile

import numpy as np
import pytest

from digitrec import data
from digitrec.artifact import load_model, read_metadata
from digitrec.config import TrainConfig, get_preset
from digitrec.errors import ConfigError, DataError
from digitrec.evaluate import evaluate
from digitrec.train import (
    TrainingInterrupted,
    _read_ahead,
    fit_arrays,
    split_validation,
    train,
)

from .conftest import synthetic_digits, write_fake_mnist


def test_digits8x8_preset_reaches_its_floor(digits_model_path):
    metadata = read_metadata(digits_model_path)
    assert metadata["metrics"]["test"]["accuracy"] >= 0.90
    assert metadata["metrics"]["test"]["n"] == 797
    assert metadata["epochs_completed"] == 50 and metadata["complete"]
    assert len(metadata["history"]["loss"]) == 50


def test_sklearn_preset_is_copied_into_an_equivalent_network(tmp_path):
    model = train("sklearn-mlp", output=tmp_path / "sk.digitrec", verbose=0)
    assert model.metadata["metrics"]["test"]["accuracy"] >= 0.90
    assert read_metadata(tmp_path / "sk.digitrec")["config"]["model"] == "sklearn-mlp"
    assert (
        evaluate(tmp_path / "sk.digitrec", "digits8x8").accuracy
        == model.metadata["metrics"]["test"]["accuracy"]
    )


def test_same_seed_same_model():
    images, labels = synthetic_digits(300, size=8)
    config = TrainConfig(
        model="mlp-64-15-10", dataset="digits8x8", epochs=2, validation_size=50, seed=3
    )
    first, second = fit_arrays(config, images, labels), fit_arrays(config, images, labels)
    for a, b in zip(first.keras_model.get_weights(), second.keras_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    other = fit_arrays(config.replace(seed=4), images, labels)
    assert not np.array_equal(
        first.keras_model.get_weights()[0], other.keras_model.get_weights()[0]
    )


def test_validation_comes_from_training_data_only():
    images, labels = synthetic_digits(100, size=8)
    fit_images, fit_labels, val_images, val_labels = split_validation(images, labels, 20, 0)
    assert len(fit_labels) == 80 and len(val_labels) == 20
    seen = {image.tobytes() for image in fit_images}
    assert not any(image.tobytes() in seen for image in val_images)
    with pytest.raises(ConfigError, match="leaves no training data"):
        split_validation(images, labels, 100, 0)


@pytest.mark.parametrize("preset", ["cnn30", "keras-docs-cnn", "dense512"])
def test_mnist_presets_train_end_to_end(preset, fake_data_dir, tmp_path):
    output = tmp_path / f"{preset}.digitrec"
    model = train(
        preset,
        output=output,
        data_dir=fake_data_dir,
        epochs=2,
        batch_size=64,
        validation_size=100,
        verbose=0,
    )
    metadata = read_metadata(output)
    assert metadata["preset"] == preset and metadata["config"]["epochs"] == 2
    assert set(metadata["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert metadata["data"]["n_train"] == 500 and metadata["data"]["n_validation"] == 100
    assert metadata["metrics"]["test"]["n"] == 200
    assert model.metadata["metrics"]["test"]["accuracy"] > 0.5  # synthetic data is easy


def test_data_is_read_while_keras_starts(fake_data_dir):
    train_set, test_set = _read_ahead("mnist", fake_data_dir)()
    assert (train_set.split, len(train_set.labels), len(test_set.labels)) == ("train", 600, 200)
    again = data.load_dataset("mnist", "test", fake_data_dir)
    assert np.array_equal(test_set.images, again.images)
    assert np.array_equal(test_set.labels, again.labels)


def test_data_the_read_ahead_cannot_read_gets_the_usual_error(fake_data_dir):
    """The thread gives up quietly; loading again in the foreground says what is wrong."""
    spec = data.IDX_DATASETS["mnist"]
    damaged = fake_data_dir / spec.folder / spec.files["test"][0]
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(DataError, match="damaged or truncated"):
        _read_ahead("mnist", fake_data_dir)()


def test_data_to_download_is_fetched_in_the_foreground(http_server, tmp_path, monkeypatch):
    """The thread never downloads (a progress bar would cross Keras's start-up); the
    foreground does, as load_dataset always has."""
    base_url, www = http_server
    source = write_fake_mnist(tmp_path / "source", monkeypatch)
    for path in (source / "mnist").iterdir():
        (www / path.name).write_bytes(path.read_bytes())
    spec = data.IDX_DATASETS["mnist"]
    monkeypatch.setitem(data.IDX_DATASETS, "mnist", dataclasses.replace(spec, mirrors=(base_url,)))
    train_set, test_set = _read_ahead("mnist", tmp_path / "nowhere")()
    assert (len(train_set.labels), len(test_set.labels)) == (600, 200)
    assert len(list((data.cache_dir() / "mnist").iterdir())) == 4


def test_checkpoint_survives_ctrl_c(fake_data_dir, tmp_path, monkeypatch):
    import keras

    output = tmp_path / "cnn.digitrec"

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    original_fit = keras.Model.fit

    def fit_with_interrupt(self, *args, callbacks=(), **kwargs):
        return original_fit(self, *args, callbacks=[*callbacks, CtrlC()], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit_with_interrupt)
    with pytest.raises(TrainingInterrupted, match="holds the checkpoint of epoch 2"):
        train("dense512", output=output, data_dir=fake_data_dir, epochs=5, verbose=0)
    metadata = read_metadata(output)
    assert metadata["epochs_completed"] == 2 and not metadata["complete"]
    assert load_model(output).predict_proba(np.zeros((1, 28, 28), np.uint8)).shape == (1, 10)
    assert [p.name for p in tmp_path.glob("*digitrec*")] == ["cnn.digitrec"]  # no .part files
    with zipfile.ZipFile(output) as archive:
        assert archive.testzip() is None


def test_save_best_and_early_stopping(fake_data_dir, tmp_path):
    model = train(
        "dense512",
        output=tmp_path / "m.digitrec",
        data_dir=fake_data_dir,
        epochs=30,
        validation_size=100,
        early_stopping=1,
        learning_rate=0.05,
        save_best=True,
        verbose=0,
    )
    assert model.metadata["epochs_completed"] < 30  # stopped early
    with pytest.raises(ConfigError, match="needs validation"):
        train("dense512", data_dir=fake_data_dir, validation_size=0, save_best=True)


def test_unwritable_output_fails_before_training(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        train("digits8x8-mlp", output=tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot write the model"):
        train("digits8x8-mlp", output=tmp_path / "file" / "model.digitrec")


def test_evaluation_sets_are_never_trained_on():
    config = get_preset("cnn30").replace(dataset="usps")
    with pytest.raises(ConfigError, match="evaluation only"):
        train(config)


def test_real_world_preset_learns_refusal_and_calibrates(fake_data_dir, tmp_path):
    """The bundled model's recipe, tiny: augmented batches, printed digits, an 11th
    "not a digit" output and a calibration fitted on validation data."""
    model = train(
        "default",
        output=tmp_path / "default.digitrec",
        data_dir=fake_data_dir,
        epochs=1,
        batch_size=64,
        validation_size=100,
        negatives=60,
        printed=30,
        pen=40,
        verbose=0,
    )
    assert model.keras_model.output_shape[-1] == 11
    calibration = model.metadata["calibration"]
    assert calibration["reject"] and calibration["temperature"] > 0
    assert calibration["n_non_digits"] == 500 and calibration["n_validation"] == 200
    assert 0 <= calibration["refused_digits"] <= 0.011
    loaded = load_model(tmp_path / "default.digitrec")
    digits, not_digit = loaded.scores(np.zeros((2, 28, 28), np.uint8))
    np.testing.assert_allclose(digits.sum(axis=1) + not_digit, 1, atol=1e-5)
    assert loaded.predict_proba(np.zeros((2, 28, 28), np.uint8)).shape == (2, 10)


@pytest.mark.parametrize("pen_views", [False, True])
def test_pen_digits_get_scanned_views_only_when_asked(pen_views):
    """With ``pen_views`` a pen-stroke digit is also seen scanned coarse or boxed; without,
    its views are the drawing itself (the printed digits' always are)."""
    from digitrec.train import _TrainingData

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 30).astype(np.uint8)
    config = get_preset("default").replace(
        negatives=0, printed=12, pen=16, pen_views=pen_views, validation_size=0
    )
    data = _TrainingData.build(config, images, labels, images[:0], labels[:0])
    assert len(data.images) == len(data.coarse) == len(data.labels) == 30 + 12 + 16
    printed, pen = slice(30, 42), slice(42, 58)
    np.testing.assert_array_equal(data.coarse[printed], data.images[printed])
    np.testing.assert_array_equal(data.clean[printed], data.images[printed])
    changed = (data.coarse[pen] != data.images[pen]).any(axis=(1, 2))
    assert changed.all() if pen_views else not changed.any()
    assert (data.labels[pen] < 10).all()


def test_digit_pairs_are_taught_and_validated_as_not_a_digit(monkeypatch):
    """Pairs are drawn from the training digits, and the validation ones (on which
    calibration and the refusal threshold are fitted) from the held-out digits."""
    from digitrec import train as train_module
    from digitrec.train import _TrainingData

    # the made-up non-digits are tested in test_synthetic; here they only take time
    monkeypatch.setattr(
        train_module, "_non_digits", lambda n, seed, kinds=1: np.zeros((n, 28, 28), np.uint8)
    )

    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28), np.uint8)
    for image in images:
        left = int(rng.integers(4, 9))  # wide bars: most pairs of them are wide enough
        image[4:24, left : left + int(rng.integers(12, 19))] = 255
    labels = rng.integers(0, 10, 40).astype(np.uint8)
    config = get_preset("default").replace(negatives=4, pairs=6, printed=0, pen=0)
    data = _TrainingData.build(config, images[:30], labels[:30], images[30:], labels[30:])
    assert len(data.labels) == 30 + 4 + 6 and (data.labels[30:] == 10).all()
    assert (data.labels[:30] < 10).all()
    # 10 held-out digits, then 500 made-up non-digits and 250 pairs of held-out digits
    assert len(data.val_labels) == 10 + 500 + 250 and (data.val_labels[10:] == 10).all()


def test_one_cycle_rate_warms_up_then_decays():
    from digitrec.backend import import_keras
    from digitrec.train import learning_rate

    config = TrainConfig(model="fast-cnn", learning_rate=0.01, schedule="one-cycle")
    schedule = learning_rate(import_keras(), config, total_steps=100)
    at = [float(schedule(step)) for step in (0, 10, 20, 60, 100)]
    assert at[0] == pytest.approx(0.001)  # a tenth at the start
    assert at[0] < at[1] < at[2] == pytest.approx(0.01)  # linear warm-up over a fifth
    assert at[2] > at[3] > at[4] == pytest.approx(0.0001)  # cosine down to 1%


def test_label_smoothing_spreads_a_share_of_each_target():
    from digitrec.backend import import_keras
    from digitrec.train import _loss

    keras = import_keras()
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([0, 2])
    loss = _loss(keras, 0.3)
    targets = np.eye(3)[labels] * 0.7 + 0.1
    expected = -(targets * np.log(probabilities)).sum(1)
    got = keras.ops.convert_to_numpy(loss(labels, probabilities))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert _loss(keras, 0.0) == "sparse_categorical_crossentropy"


def test_a_config_equal_to_a_preset_is_recorded_under_its_name():
    exact = train(get_preset("digits8x8-mlp"), verbose=0)
    assert exact.metadata["preset"] == "digits8x8-mlp"
    changed = train(get_preset("digits8x8-mlp").replace(epochs=1), verbose=0)
    assert changed.metadata["preset"] == "custom"


@pytest.mark.parametrize("prefers_bf16", [False, True])
def test_fast_preset_trains_in_bfloat16_only_where_the_cpu_prefers_it(
    prefers_bf16, fake_data_dir, tmp_path, monkeypatch
):
    import digitrec.train as training

    monkeypatch.setattr(training, "cpu_prefers_bf16", lambda: prefers_bf16)
    output = tmp_path / "fast.digitrec"
    model = train(
        "fast", output=output, data_dir=fake_data_dir, epochs=1, validation_size=100, verbose=0
    )
    expected = "mixed_bfloat16" if prefers_bf16 else "float32"
    assert read_metadata(output)["training_precision"] == expected
    # Saved in float32 either way: the file's network answers as the trained one did.
    saved = load_model(output, runtime="keras")
    assert saved.keras_model.dtype_policy.name == "float32"
    images = data.load_dataset("mnist", "test", fake_data_dir).images[:50]
    np.testing.assert_allclose(
        saved.predict_outputs(images), model.predict_outputs(images), atol=1e-4
    )
