"""Training: a preset's config -> a fitted, evaluated, saved ``DigitModel``.

The validation split is a seeded random part of the *training* data; the test split is
touched once, after training, to report the final metrics. With an output path, the
model file is rewritten atomically after every epoch (or every improvement, with
``save_best``), so Ctrl-C leaves the last good checkpoint and never a half-written file.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

from digitrec.artifact import DigitModel, onnx_network
from digitrec.backend import cpu_prefers_bf16, import_keras, versions
from digitrec.config import PRESETS, TrainConfig, get_preset
from digitrec.data import IDX_DATASETS, Dataset, class_names, is_normalized, load_dataset, splits
from digitrec.ensemble import fit_ensemble, member_path
from digitrec.errors import ConfigError, DigitrecError
from digitrec.evaluate import evaluate_arrays
from digitrec.models import build_model
from digitrec.preprocess import to_model_input


class TrainingInterrupted(DigitrecError):
    """Ctrl-C during training; the message says what was kept."""


def train(
    preset: str | TrainConfig = "cnn30",
    *,
    output: str | Path | None = None,
    data_dir: str | Path | None = None,
    save_best: bool = False,
    verbose: int = 1,
    **overrides,
) -> DigitModel:
    """Train a preset (or a ``TrainConfig``), evaluate it on the test split, save it.

    >>> model = train("dense512", epochs=1, output="dense512.digitrec")
    >>> model.metadata["metrics"]["test"]["accuracy"]  # measured on the test split
    """
    config = (get_preset(preset) if isinstance(preset, str) else preset).replace(**overrides)
    # A config that is exactly a preset is recorded under that preset's name.
    preset_name = (
        preset
        if isinstance(preset, str)
        else next((name for name, known in PRESETS.items() if known == config), "custom")
    )
    if "train" not in splits(config.dataset):
        raise ConfigError(
            f"{config.dataset} is for evaluation only: it measures how well a "
            f"model reads handwriting it has never seen, so never train on it"
        )
    if output is not None:
        _check_writable(Path(output))
    started = time.perf_counter()
    local_data = _read_ahead(config.dataset, data_dir)
    import_keras("training")  # before any download: a light install stops here, at once
    train_set, test_set = local_data()
    fit = partial(
        fit_arrays if config.ensemble == 1 else fit_ensemble,
        config,
        train_set.images,
        train_set.labels,
        output=output,
        save_best=save_best,
        verbose=verbose,
        preset=preset_name,
        data_sha256=train_set.sha256,
        started=started,
    )
    # An ensemble comes back with its members, each scored on the test split too.
    model, members = (fit(), []) if config.ensemble == 1 else fit()
    for scored in (model, *members):
        test = evaluate_arrays(
            scored,
            test_set.images,
            test_set.labels,
            config.dataset,
            "test",
            normalized=is_normalized(config.dataset),
        )
        metrics = {"accuracy": test.accuracy, "loss": test.loss, "n": test.n}
        scored.metadata["metrics"]["test"] = metrics
        scored.metadata["data"]["test_sha256"] = test_set.sha256
    for index, member in enumerate(members):
        model.metadata["ensemble"]["members"][index]["metrics"] = member.metadata["metrics"]
        if output is not None:
            member.save(member_path(output, index))
    model.metadata["train_seconds"] = round(time.perf_counter() - started, 2)
    if output is not None:
        model.save(output)
    return model


def _read_ahead(dataset: str, data_dir: str | Path | None) -> Callable[[], tuple[Dataset, Dataset]]:
    """Read the train and test splits from disk in a thread while Keras starts (seconds,
    mostly spent waiting on disk; decompressing and checksumming release the GIL).
    Returns a function that gives both; what the thread could not read (files to
    download, a damaged file) is loaded again in the foreground, with its messages."""
    found: dict[str, tuple[Dataset, Dataset]] = {}

    def read() -> None:
        with contextlib.suppress(Exception):
            found["sets"] = tuple(
                load_dataset(dataset, split, data_dir, download=False)
                for split in ("train", "test")
            )

    thread = None
    # Not digits8x8: it comes from scikit-learn, which the CLI's Keras starts without.
    if dataset in IDX_DATASETS:
        thread = threading.Thread(target=read, name="digitrec-read-ahead", daemon=True)
        thread.start()

    def result() -> tuple[Dataset, Dataset]:
        if thread is not None:
            thread.join()
        if "sets" in found:
            return found["sets"]
        return load_dataset(dataset, "train", data_dir), load_dataset(dataset, "test", data_dir)

    return result


def fit_arrays(
    config: TrainConfig,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    output: str | Path | None = None,
    save_best: bool = False,
    verbose: int = 0,
    preset: str = "custom",
    data_sha256: dict | None = None,
    started: float | None = None,
    split_seed: int | None = None,
) -> DigitModel:
    """Fit ``config``'s model on ``uint8`` images ``(n, h, w)`` and labels; no test split.
    ``split_seed`` (default: the config's seed) picks the validation images: the networks
    of an ensemble share them, so that none has trained on what calibrates them all."""
    if save_best and not config.validation_size:
        raise ConfigError("--save-best needs validation data (validation size > 0)")
    started = time.perf_counter() if started is None else started
    split_seed = config.seed if split_seed is None else split_seed
    fit_images, fit_labels, val_images, val_labels = split_validation(
        images, labels, config.validation_size, split_seed
    )
    if data_sha256 is None:
        data_sha256 = {"arrays": hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()}
    base_metadata = {
        "preset": preset,
        "config": config.to_dict(),
        "preprocessing": {
            "input_size": list(images.shape[1:]),
            "scale": 1 / 255,
            "polarity": "ink-bright",
            "pipeline": "mnist-normalize" if images.shape[1:] == (28, 28) else "resize",
        },
        "class_names": list(class_names(config.dataset)),
        # Checkpoints need to know of the "not a digit" output before calibration.
        "calibration": {"reject": config.negatives > 0},
        "data": {
            "dataset": config.dataset,
            "sha256": data_sha256,
            "n_train": len(fit_labels),
            "n_validation": len(val_labels),
            "validation_seed": split_seed,
        },
        "versions": versions(),
    }
    checkpoint = _Checkpointer(base_metadata, output, save_best, started)
    fit = _fit_sklearn if config.model == "sklearn-mlp" else _fit_keras
    keras_model, history = fit(
        config, fit_images, fit_labels, val_images, val_labels, verbose, checkpoint
    )
    return checkpoint.final_model(keras_model, history)


def _check_writable(output: Path) -> None:
    """Fail before training, not after the first epoch, if the model cannot be saved."""
    if output.is_dir():
        raise ConfigError(
            f"--output {output} is a folder; give a file name such as {output / 'model.digitrec'}"
        )
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output.parent):
            pass
    except OSError as error:
        raise ConfigError(
            f"cannot write the model to {output} ({error.strerror or error})"
        ) from None


def split_validation(images: np.ndarray, labels: np.ndarray, size: int, seed: int):
    """A seeded random ``size`` images of the training set held out for validation."""
    if size >= len(labels):
        raise ConfigError(
            f"validation size {size} leaves no training data ({len(labels)} training images)"
        )
    order = np.random.default_rng(seed).permutation(len(labels))
    fit, held_out = np.sort(order[size:]), np.sort(order[:size])
    return images[fit], labels[fit], images[held_out], labels[held_out]


def _fit_keras(config: TrainConfig, images, labels, val_images, val_labels, verbose, checkpoint):
    keras = import_keras()
    keras.utils.set_random_seed(config.seed)
    _deterministic_ops(keras)
    data = _TrainingData.build(config, images, labels, val_images, val_labels)
    n_outputs = 10 + int(config.negatives > 0)
    precision = config.precision if cpu_prefers_bf16() else "float32"
    checkpoint.base_metadata["training_precision"] = precision
    with _dtype_policy(keras, precision):
        model = build_model(config, images.shape[1:], n_classes=n_outputs)
    if precision != "float32":  # the model is saved, calibrated and exported in float32
        checkpoint.saveable = _float32_copier(config, images.shape[1:], n_outputs)
    steps = int(np.ceil(len(data.labels) / config.batch_size))
    model.compile(
        optimizer=_optimizer(keras, config, steps * config.epochs),
        loss=_loss(keras, config.label_smoothing),
        metrics=["accuracy"],
    )
    validation = (
        (_tensor(keras, data.val_images), data.val_labels) if len(data.val_labels) else None
    )
    callbacks = [checkpoint.keras_callback(keras)]
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=config.early_stopping,
                restore_best_weights=True,
                verbose=verbose,
            )
        )
    if data.plain:
        inputs, targets = _tensor(keras, data.images), data.labels
        extra = {"batch_size": config.batch_size, "shuffle": True}
    else:
        inputs, targets, extra = _augmented_batches(keras, config, data), None, {}
    try:
        model.fit(
            inputs,
            targets,
            epochs=config.epochs,
            validation_data=validation,
            callbacks=callbacks,
            verbose=verbose,
            **extra,
        )
    except KeyboardInterrupt:
        raise TrainingInterrupted(checkpoint.interrupted_message()) from None
    if checkpoint.best_weights is not None:
        model.set_weights(checkpoint.best_weights)
    model = checkpoint.saveable(model)
    # Exported once: calibration, the test score and the file all use this ONNX network.
    checkpoint.network = onnx_network(model)
    if len(val_labels):
        trained = DigitModel(model, checkpoint.base_metadata, network=checkpoint.network)
        checkpoint.base_metadata["calibration"] = calibrate_model(trained, vars(data))
    return model, checkpoint.history


def _tensor(keras, images: np.ndarray):
    """Model input as a backend tensor: Keras slices its batches in place, where from a
    NumPy array it copies the whole set again at every epoch (0.5 s for MNIST here)."""
    return keras.ops.convert_to_tensor(to_model_input(images))


class _TrainingData:
    """What one run trains and validates on. For the tutorial presets, just the images;
    for real-world models also each image's fixed views, printed digits and made-up
    non-digits (label 10), and a validation set drawn the same way."""

    def __init__(self, **arrays):
        self.__dict__.update(arrays)

    @classmethod
    def build(cls, config: TrainConfig, images, labels, val_images, val_labels):
        if _plain(config):
            return cls(
                plain=True,
                images=images,
                labels=labels,
                **validation_data(config, val_images, val_labels),
            )
        from digitrec import augment, synthetic

        # Every extra picture is its own three "views": it was drawn for the pipeline.
        # (With pen_views, a pen-stroke digit is also scanned coarse and boxed.)
        clean, coarse = augment.cached_views(images, config.seed, view_set=config.views)
        parts = [(images, clean, coarse, labels)]
        pen = partial(synthetic.pen_digits, shape_set=config.pen_shapes)
        for tag, count, make, scanned in (
            ("printed-v1", config.printed, synthetic.printed_digits, False),
            (f"pen-v{config.pen_shapes}", config.pen, pen, config.pen_views),
        ):
            if count:
                drawn = augment.disk_cache(
                    tag,
                    f"{count}-{config.seed}".encode(),
                    lambda make=make, count=count: dict(
                        zip(("images", "labels"), make(count, config.seed), strict=True)
                    ),
                )
                views = (drawn["images"],) * 2
                if scanned:
                    views = augment.cached_views(
                        drawn["images"], config.seed, view_set=config.views
                    )
                parts.append((drawn["images"], *views, drawn["labels"]))
        if config.negatives:
            negatives = _non_digits(config.negatives, config.seed, config.negative_kinds)
            parts.append((negatives,) * 3 + (np.full(len(negatives), 10, np.uint8),))
        if config.pairs:
            pairs = _digit_pairs(images, config.pairs, config.seed)
            parts.append((pairs,) * 3 + (np.full(len(pairs), 10, np.uint8),))
        return cls(
            plain=False,
            images=np.concatenate([p[0] for p in parts]),
            clean=np.concatenate([p[1] for p in parts]),
            coarse=np.concatenate([p[2] for p in parts]),
            labels=np.concatenate([p[3] for p in parts]).astype(np.uint8),
            **validation_data(config, val_images, val_labels),
        )


def validation_data(config: TrainConfig, val_images: np.ndarray, val_labels: np.ndarray) -> dict:
    """What a real-world model is validated and calibrated on: the held-out digits, the
    same digits as they arrive in use (a view and random variation each), and held-out
    made-up non-digits (label 10). A tutorial preset's is just the held-out digits."""
    from digitrec import augment

    val_realistic = val_images[:0]
    val_set, val_targets = val_images, val_labels
    if len(val_labels) and not _plain(config):
        rng = np.random.default_rng(config.seed + 1)
        val_clean, val_coarse = augment.cached_views(
            val_images, config.seed + 1, view_set=config.views
        )
        val_realistic = augment.augment(
            augment.mix_views(val_images, val_clean, val_coarse, rng), rng
        )
        if config.negatives:
            val_negatives = _non_digits(
                max(500, config.negatives // 8), config.seed + 1, config.negative_kinds
            )
            if config.pairs:
                pairs = _digit_pairs(val_images, max(250, config.pairs // 8), config.seed + 1)
                val_negatives = np.concatenate([val_negatives, pairs])
            val_set = np.concatenate([val_images, val_negatives])
            val_targets = np.concatenate([val_labels, np.full(len(val_negatives), 10, np.uint8)])
    return {
        "val_images": val_set,
        "val_labels": val_targets,
        "val_realistic": val_realistic,
        "val_realistic_labels": val_labels[: len(val_realistic)],
    }


def _plain(config: TrainConfig) -> bool:
    """A tutorial's recipe: the dataset's images as they are, nothing made up."""
    return not (config.augment or config.negatives or config.printed or config.pen)


def _non_digits(n: int, seed: int, kinds: int = 1) -> np.ndarray:
    from digitrec import augment, synthetic

    return augment.disk_cache(
        f"non-digits-v{kinds}",
        f"{n}-{seed}".encode(),
        lambda: {"images": synthetic.non_digits(n, seed, kinds)},
    )["images"]


def _digit_pairs(digits: np.ndarray, n: int, seed: int) -> np.ndarray:
    import hashlib

    from digitrec import augment, synthetic

    key = f"{n}-{seed}-".encode() + hashlib.sha256(digits.tobytes()).digest()
    return augment.disk_cache(
        "pairs-v1", key, lambda: {"images": synthetic.digit_pairs(digits, n, seed)}
    )["images"]


def _augmented_batches(keras, config: TrainConfig, data: _TrainingData):
    """A ``keras.utils.PyDataset`` drawing fresh random variation for every batch; the
    random stream of batch ``i`` of epoch ``e`` depends only on (seed, e, i), so runs
    repeat exactly whatever the thread timing."""
    from digitrec import augment

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=2, use_multiprocessing=False)
            self.epoch = 0
            self.order = self._order()

        def _order(self):
            return np.random.default_rng([config.seed, self.epoch]).permutation(len(data.labels))

        def __len__(self):
            return int(np.ceil(len(data.labels) / config.batch_size))

        def __getitem__(self, index):
            picked = np.sort(
                self.order[index * config.batch_size : (index + 1) * config.batch_size]
            )
            rng = np.random.default_rng([config.seed, self.epoch, index])
            images = augment.mix_views(
                data.images[picked], data.clean[picked], data.coarse[picked], rng
            )
            if config.augment:
                images = augment.augment(images, rng)
            return to_model_input(images), data.labels[picked]

        def on_epoch_end(self):
            self.epoch += 1
            self.order = self._order()

    return Batches()


def calibrate_model(model: DigitModel, held_out: dict) -> dict:
    """Fit temperature and refusal threshold on validation data (``calibrate.py``), from
    the outputs ``model`` gives in use (its exported network, test-time forms if any).
    ``held_out``: the arrays ``validation_data`` returns."""
    from digitrec import calibrate

    images = np.concatenate([held_out["val_images"], held_out["val_realistic"]])
    labels = np.concatenate([held_out["val_labels"], held_out["val_realistic_labels"]])
    outputs = model.predict_outputs(images)
    calibration, report = calibrate.fit(
        outputs, labels.astype(np.int64), 10, reject=model.calibration.reject
    )
    return {**calibration.to_dict(), **report}


def _fit_sklearn(config: TrainConfig, images, labels, val_images, val_labels, verbose, checkpoint):
    """scikit-learn's MLPClassifier, epoch by epoch, copied into the same Keras network."""
    from digitrec.backend import require

    require("sklearn", "the sklearn-mlp preset")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    flat = to_model_input(images).reshape(len(images), -1)
    mlp = MLPClassifier(
        hidden_layer_sizes=(15,),
        activation="logistic",
        solver="sgd",
        alpha=config.l2,
        batch_size=config.batch_size,
        learning_rate_init=config.learning_rate,
        momentum=config.momentum,
        nesterovs_momentum=False,
        random_state=config.seed,
    )
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    classes = np.arange(10)
    try:
        for epoch in range(config.epochs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                mlp.partial_fit(flat, labels, classes=classes)
            history["loss"].append(float(mlp.loss_))
            history["accuracy"].append(float(mlp.score(flat, labels)))
            if len(val_labels):
                val_flat = to_model_input(val_images).reshape(len(val_images), -1)
                history.setdefault("val_accuracy", []).append(
                    float(mlp.score(val_flat, val_labels))
                )
            if verbose:
                extra = "".join(f" - {k}: {v[-1]:.4f}" for k, v in history.items())
                print(f"Epoch {epoch + 1}/{config.epochs}{extra}", flush=True)
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            "interrupted; scikit-learn training keeps no checkpoint, nothing was written"
        ) from None
    keras = import_keras()
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, images.shape[1:], n_classes=10)
    model.set_weights([mlp.coefs_[0], mlp.intercepts_[0], mlp.coefs_[1], mlp.intercepts_[1]])
    return model, history


def _loss(keras, smoothing: float):
    """Cross-entropy on integer labels, with the targets smoothed when asked (Keras's
    sparse loss has no smoothing, and one-hot labels would change every data path)."""
    if not smoothing:
        return "sparse_categorical_crossentropy"
    ops = keras.ops

    def smoothed_crossentropy(labels, probabilities):
        classes = ops.shape(probabilities)[-1]
        onehot = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), classes)
        targets = onehot * (1 - smoothing) + smoothing / classes
        return keras.losses.categorical_crossentropy(targets, probabilities)

    return smoothed_crossentropy


def learning_rate(keras, config: TrainConfig, total_steps: int = 1):
    """The learning rate: a number, or a Keras schedule of the step for cosine/one-cycle."""
    rate = config.learning_rate
    total_steps = max(total_steps, 1)
    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, total_steps, alpha=0.01)
    if config.schedule == "one-cycle":
        warmup = max(1, total_steps // 5)
        return keras.optimizers.schedules.CosineDecay(
            rate / 10,
            max(total_steps - warmup, 1),
            alpha=0.01,
            warmup_target=rate,
            warmup_steps=warmup,
        )
    return rate


def _optimizer(keras, config: TrainConfig, total_steps: int = 1):
    rate = learning_rate(keras, config, total_steps)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate)
    return keras.optimizers.Adam(rate)


@contextlib.contextmanager
def _dtype_policy(keras, policy: str):
    """Layers built inside use ``policy``; Keras's global default is restored after."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def _float32_copier(config: TrainConfig, input_shape, n_outputs: int):
    """A function giving the trained network with float32 arithmetic, for files,
    calibration and ONNX: one network, built at the first call, given the trained
    weights at each (a checkpoint every epoch)."""
    copy = None

    def float32_copy(trained):
        nonlocal copy
        if copy is None:
            copy = build_model(config, input_shape, n_classes=n_outputs)
        copy.set_weights(trained.get_weights())
        return copy

    return float32_copy


def _deterministic_ops(keras) -> None:
    """Same seed, same model: TensorFlow otherwise reorders some float reductions."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


class _Checkpointer:
    """Collects the history and writes the model file after each (best) epoch."""

    def __init__(self, base_metadata: dict, output, save_best: bool, started: float):
        self.base_metadata = base_metadata
        self.output = Path(output) if output is not None else None
        self.save_best = save_best
        self.started = started
        self.history: dict[str, list[float]] = {}
        self.best_loss = np.inf
        self.best_weights = None
        self.saved_epoch = 0
        self.saveable = lambda model: model  # what of the training model goes to files
        self.network = None  # the final network in onnxruntime, once exported

    def metadata(self, complete: bool) -> dict:
        epochs = len(next(iter(self.history.values()), []))
        metrics = {"final_epoch": {k: v[-1] for k, v in self.history.items()}} if epochs else {}
        return {
            **self.base_metadata,
            "history": self.history,
            "epochs_completed": epochs,
            "complete": complete,
            "metrics": metrics,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "train_seconds": round(time.perf_counter() - self.started, 2),
        }

    def final_model(self, keras_model, history: dict) -> DigitModel:
        self.history = {k: [float(x) for x in v] for k, v in history.items()}
        return DigitModel(keras_model, self.metadata(complete=True), network=self.network)

    def on_epoch_end(self, model, logs: dict) -> None:
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        if self.save_best:
            if logs["val_loss"] >= self.best_loss:
                return
            self.best_loss = logs["val_loss"]
            self.best_weights = model.get_weights()
        if self.output is not None:
            DigitModel(self.saveable(model), self.metadata(complete=False)).save(self.output)
            self.saved_epoch = len(self.history["loss"])

    def interrupted_message(self) -> str:
        if self.output is None:
            return "interrupted; no --output was given, so nothing was saved"
        if not self.saved_epoch:
            return "interrupted before the first checkpoint; nothing was written"
        return (
            f"interrupted; {self.output} holds the checkpoint of epoch {self.saved_epoch} "
            f"(untested: run digitrec evaluate on it)"
        )

    def keras_callback(self, keras):
        checkpointer = self

        class Checkpoint(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                checkpointer.on_epoch_end(self.model, dict(logs or {}))

        return Checkpoint()
