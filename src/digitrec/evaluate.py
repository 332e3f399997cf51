"""Honest evaluation: accuracy, loss, per-class precision/recall/F1 and the confusion matrix.

Metrics are plain NumPy functions of labels and probabilities, so the same code scores
the test split after training, the ``evaluate`` command and the Python API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec.calibrate import expected_calibration_error, forced_choice
from digitrec.data import class_names as dataset_class_names
from digitrec.data import is_normalized, load_dataset
from digitrec.errors import ConfigError
from digitrec.predict import choose_readings
from digitrec.preprocess import prepare_dataset_readings


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """``counts[true, predicted]``, an ``int64`` ``(n_classes, n_classes)`` array."""
    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (np.asarray(labels, np.intp), np.asarray(predicted, np.intp)), 1)
    return counts


def per_class_metrics(confusion: np.ndarray) -> list[dict]:
    """Precision, recall, F1 and support for each class (0 where undefined, as sklearn)."""
    true_positive = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(
        true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0
    )
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return [
        {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for p, r, f, s in zip(precision, recall, f1, support, strict=True)
    ]


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels (the training loss)."""
    picked = probabilities[np.arange(len(labels)), np.asarray(labels, np.intp)]
    return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))


@dataclass
class Evaluation:
    """Scores of one model on one dataset split; ``to_dict()`` is the ``--json`` output."""

    dataset: str
    split: str
    class_names: list[str]
    labels: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)  # forced choice: rows sum to one
    images: np.ndarray | None = field(default=None, repr=False)
    refused: np.ndarray | None = field(default=None, repr=False)  # digit: null in use

    @property
    def n_refused(self) -> int:
        return int(self.refused.sum()) if self.refused is not None else 0

    @property
    def ece(self) -> float:
        """Expected calibration error of the forced-choice confidence."""
        confidence = self.probabilities.max(axis=1)
        return expected_calibration_error(confidence, self.predicted == self.labels)

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.labels)) if self.n else 0.0

    @property
    def loss(self) -> float:
        return cross_entropy(self.probabilities, self.labels) if self.n else 0.0

    @property
    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.labels, self.predicted, len(self.class_names))

    @property
    def answered_accuracy(self) -> float:
        """Accuracy on the images the model does answer (refusals left out)."""
        answered = ~self.refused if self.refused is not None else np.ones(self.n, bool)
        if not answered.any():
            return 0.0
        return float(np.mean(self.predicted[answered] == self.labels[answered]))

    def to_dict(self) -> dict:
        confusion = self.confusion
        per_class = per_class_metrics(confusion)
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n": self.n,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "errors": int(np.sum(self.predicted != self.labels)),
            "ece": self.ece if self.n else 0.0,
            # What a user sees: refused images get digit null; the rest are answered.
            "refused": self.n_refused,
            "answered_accuracy": self.answered_accuracy,
            "macro_f1": float(np.mean([c["f1"] for c in per_class])),
            "per_class": {
                name: metrics for name, metrics in zip(self.class_names, per_class, strict=True)
            },
            "confusion": confusion.tolist(),
        }

    def report(self) -> str:
        """A human-readable summary with the per-class table."""
        summary = self.to_dict()
        lines = [
            f"{self.dataset} {self.split}: accuracy {summary['accuracy']:.2%} "
            f"({summary['errors']} errors in {self.n}), loss {summary['loss']:.4f}, "
            f"calibration error {summary['ece']:.4f}",
            f"refused {summary['refused']} of {self.n}; accuracy on the rest "
            f"{summary['answered_accuracy']:.2%}",
            "",
            f"{'class':>12}  precision  recall     f1  support",
        ]
        for name, m in summary["per_class"].items():
            lines.append(
                f"{name:>12}  {m['precision']:9.4f}  {m['recall']:6.4f}  "
                f"{m['f1']:.4f}  {m['support']:7d}"
            )
        return "\n".join(lines)


def evaluate_arrays(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    dataset: str = "arrays",
    split: str = "test",
    normalized: bool = True,
) -> Evaluation:
    """Score ``model`` on ``uint8`` images; those not ``normalized`` MNIST-style go
    through the user-image pipeline first (``preprocess.prepare_dataset_readings``)."""
    images = choose_readings(model, *prepare_dataset_readings(images, model.input_size, normalized))
    digits, not_digit = model.scores(images)
    refused = model.calibration.refused(digits, not_digit)
    return Evaluation(
        dataset,
        split,
        model.class_names,
        np.asarray(labels),
        forced_choice(digits),
        images,
        refused,
    )


def evaluate(
    model, dataset: str = "mnist", split: str = "test", data_dir: str | Path | None = None
) -> Evaluation:
    """Score a model (a ``DigitModel`` or a path to one) on a dataset split.

    >>> evaluate("cnn30.digitrec", "mnist").accuracy
    """
    if isinstance(model, str | Path):
        from digitrec.artifact import load_model

        model = load_model(model)
    if list(dataset_class_names(dataset)) != model.class_names:
        raise ConfigError(
            f"the model's classes ({', '.join(model.class_names[:3])}, ...) are "
            f"not those of {dataset} ({', '.join(dataset_class_names(dataset)[:3])}"
            f", ...): evaluate it on the kind of data it was trained on"
        )
    data = load_dataset(dataset, split, data_dir)
    return evaluate_arrays(
        model, data.images, data.labels, dataset, split, normalized=is_normalized(dataset)
    )
