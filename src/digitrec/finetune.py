"""Fine-tuning on a user's own handwriting, without forgetting MNIST.

The user's digits sit in sub-folders named 0-9. A seeded part of them is held out to
show what fine-tuning changed (before/after accuracy on digits the model never trained
on). Training mixes the user's digits, randomly varied as in ``augment.py``, with
replayed MNIST training digits at a low learning rate, so the model learns this hand
without drifting away from everyone else's. The guard: MNIST accuracy, measured on the
base model's own validation digits (never the test set), may drop by at most
``MAX_MNIST_DROP``; the epoch kept is the last one that respects it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.errors import ConfigError, DataError, DigitrecError

MAX_MNIST_DROP = 0.001  # 0.1 percentage points
REPLAY_SHARE = 0.75  # of every batch: MNIST digits replayed against forgetting


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of one fine-tuning run, saved in the model file."""

    holdout: float = 0.2  # share of each digit's images kept for the before/after score
    epochs: int = 8
    steps_per_epoch: int = 60
    batch_size: int = 64
    learning_rate: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.holdout < 1:
            raise ConfigError(f"holdout must be in [0, 1), got {self.holdout}")
        if self.epochs < 1 or self.steps_per_epoch < 1 or self.batch_size < 2:
            raise ConfigError("epochs and steps must be >= 1 and batch size >= 2")
        if self.learning_rate <= 0:
            raise ConfigError("learning rate must be positive")


def load_labelled_folder(folder: str | Path, size: tuple[int, int] = (28, 28), model=None):
    """Images under ``folder/0`` ... ``folder/9`` through the user-image pipeline.

    Returns ``(inputs, labels, sources, skipped)``: ``uint8`` model inputs, their labels,
    their file names, and ``(file, why)`` for images that could not be used. Where the
    pipeline doubts a picture's polarity, ``model`` (the one to fine-tune) picks the
    reading, as ``predict`` would; without one the pipeline's own reading is kept.
    """
    from digitrec.images import EXTENSIONS, load_image
    from digitrec.predict import choose_readings
    from digitrec.preprocess import prepare_readings

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected sub-folders 0-9 of digit images)")
    inputs, labels, sources, skipped, others = [], [], [], [], {}
    for digit in range(10):
        sub = folder / str(digit)
        if not sub.is_dir():
            continue
        for path in sorted(sub.rglob("*")):
            if not path.is_file() or path.suffix.lower() not in EXTENSIONS:
                continue
            try:
                readings = prepare_readings(load_image(str(path)), size)
            except DigitrecError as error:
                skipped.append((str(path), str(error)))
                continue
            if not readings:
                skipped.append((str(path), "blank image: no ink found"))
                continue
            if len(readings) > 1:
                others[len(inputs)] = readings
            inputs.append(readings[0].image)
            labels.append(digit)
            sources.append(str(path))
    if not inputs:
        raise DataError(
            f"{folder}: no usable digit images in sub-folders 0-9 "
            f"(put each digit's pictures in a folder named after it: {folder}/7/img.png)"
        )
    inputs = np.stack(inputs)
    if model is not None:
        inputs = choose_readings(model, inputs, others)
    return inputs, np.array(labels, np.uint8), sources, skipped


def split_holdout(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, held_out)``: ``share`` of each digit's images (rounded down,
    at least one image always left to train on) held out, chosen at random."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for digit in np.unique(labels):
        where = rng.permutation(np.flatnonzero(labels == digit))
        count = min(int(len(where) * share), len(where) - 1)
        held.extend(where[:count])
        train.extend(where[count:])
    return np.sort(np.array(train, np.intp)), np.sort(np.array(held, np.intp))


def _accuracy(model, images: np.ndarray, labels: np.ndarray) -> float | None:
    if len(labels) == 0:
        return None
    return float(np.mean(model.predict_proba(images).argmax(axis=1) == labels))


def finetune(
    images_dir: str | Path,
    model=None,
    *,
    config: FinetuneConfig | None = None,
    output: str | Path | None = None,
    data_dir: str | Path | None = None,
    verbose: bool = True,
):
    """Fine-tune ``model`` (default: the bundled one) on ``images_dir``; returns the
    new ``DigitModel`` and a report of before/after accuracies.

    >>> tuned, report = finetune("my_digits/", output="mine.digitrec")
    >>> report["user_holdout"]  # {"before": 0.8, "after": 0.95, "n": 20}
    """
    from digitrec.artifact import DigitModel, load_model
    from digitrec.augment import augment
    from digitrec.backend import import_keras
    from digitrec.data import load_dataset
    from digitrec.preprocess import to_model_input
    from digitrec.train import _check_writable, split_validation

    config = config or FinetuneConfig()
    started = time.perf_counter()
    if output is not None:
        _check_writable(Path(output))
    base = model if isinstance(model, DigitModel) else load_model(model)
    if base.input_size != (28, 28) or base.config.dataset != "mnist":
        raise ConfigError("fine-tuning needs a 28x28 model trained on MNIST")
    images, labels, sources, skipped = load_labelled_folder(images_dir, base.input_size, base)
    train_index, held_index = split_holdout(labels, config.holdout, config.seed)
    mnist = load_dataset("mnist", "train", data_dir)
    mnist_test = load_dataset("mnist", "test", data_dir)
    # The base model's own validation digits: never trained on, and not the test set.
    base_config = base.config
    size = base_config.validation_size or 5000
    fit_images, fit_labels, val_images, val_labels = split_validation(
        mnist.images, mnist.labels, size, base_config.seed
    )
    before = {
        "user": _accuracy(base, images[held_index], labels[held_index]),
        "mnist_validation": _accuracy(base, val_images, val_labels),
        "mnist_test": _accuracy(base, mnist_test.images, mnist_test.labels),
    }
    keras = import_keras()
    keras.utils.set_random_seed(config.seed)
    network = keras.models.clone_model(base.keras_model)
    network.set_weights(base.keras_model.get_weights())
    network.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
    )
    candidate = DigitModel(network, base.metadata)
    rng = np.random.default_rng(config.seed)
    user_images, user_labels = images[train_index], labels[train_index]
    n_user = max(1, int(round(config.batch_size * (1 - REPLAY_SHARE))))
    kept_weights, kept_epoch, history = network.get_weights(), 0, []
    floor = before["mnist_validation"] - MAX_MNIST_DROP
    for epoch in range(1, config.epochs + 1):
        for _ in range(config.steps_per_epoch):
            mine = rng.integers(0, len(user_labels), n_user)
            replay = rng.integers(0, len(fit_labels), config.batch_size - n_user)
            batch = np.concatenate([user_images[mine], fit_images[replay]])
            targets = np.concatenate([user_labels[mine], fit_labels[replay]])
            network.train_on_batch(to_model_input(augment(batch, rng)), targets)
        scores = {
            "epoch": epoch,
            "user_train": _accuracy(candidate, user_images, user_labels),
            "mnist_validation": _accuracy(candidate, val_images, val_labels),
        }
        history.append(scores)
        if verbose:
            print(
                f"epoch {epoch}/{config.epochs}: your training digits "
                f"{scores['user_train']:.2%}, MNIST validation {scores['mnist_validation']:.2%}",
                flush=True,
            )
        if scores["mnist_validation"] >= floor:
            kept_weights, kept_epoch = network.get_weights(), epoch
    network.set_weights(kept_weights)
    after = {
        "user": _accuracy(candidate, images[held_index], labels[held_index]),
        "mnist_validation": _accuracy(candidate, val_images, val_labels),
        "mnist_test": _accuracy(candidate, mnist_test.images, mnist_test.labels),
    }
    report = {
        "images_dir": str(images_dir),
        "n_images": len(labels),
        "n_train": len(train_index),
        "n_holdout": len(held_index),
        "skipped": [{"path": p, "why": why} for p, why in skipped],
        "kept_epoch": kept_epoch,
        "before": before,
        "after": after,
        "history": history,
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "seconds": round(time.perf_counter() - started, 1),
    }
    metadata = {
        **base.metadata,
        "preset": f"{base.metadata.get('preset', 'custom')}+finetune",
        "finetune": report,
    }
    metadata["metrics"] = {
        **base.metadata.get("metrics", {}),
        "test": {"accuracy": after["mnist_test"], "n": len(mnist_test.labels)},
    }
    tuned = DigitModel(network, metadata)
    if output is not None:
        tuned.save(output)
    return tuned, report
