"""``DigitClassifier``: a scikit-learn estimator around the presets.

Follows scikit-learn's conventions (``__init__`` only stores parameters, ``fit`` returns
``self``, fitted attributes end in ``_``), so it works with ``clone``, pipelines and
``cross_val_score``.
"""

from __future__ import annotations

import numpy as np

from digitrec.artifact import DigitModel, load_model
from digitrec.backend import require
from digitrec.config import TrainConfig, get_preset
from digitrec.data import DIGITS

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
except ImportError:  # the base install: say which extra brings scikit-learn
    require("sklearn", "DigitClassifier")
    raise


def as_images(X) -> np.ndarray:
    """``(n, h, w)`` or flat square ``(n, h*w)`` pixels 0-255 -> ``uint8`` ``(n, h, w)``."""
    X = np.asarray(X)
    if X.ndim == 2:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(f"flat images must be square, got {X.shape[1]} pixels")
        X = X.reshape(len(X), side, side)
    if X.ndim != 3:
        raise ValueError(f"expected images (n, h, w) or (n, h*w), got shape {X.shape}")
    if X.dtype != np.uint8:
        if X.min() < 0 or X.max() > 255:
            raise ValueError("pixel values must lie in 0..255")
        X = np.rint(X).astype(np.uint8)
    return X


class DigitClassifier(ClassifierMixin, BaseEstimator):
    """A digitrec preset as a scikit-learn classifier.

    >>> clf = DigitClassifier("dense512", epochs=2).fit(x_train, y_train)
    >>> clf.score(x_test, y_test)  # accuracy, as for any scikit-learn classifier
    """

    def __init__(
        self,
        preset: str = "cnn30",
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        validation_size: int = 0,
        seed: int = 0,
        verbose: int = 0,
    ):
        self.preset = preset
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_size = validation_size
        self.seed = seed
        self.verbose = verbose

    def _config(self) -> TrainConfig:
        return get_preset(self.preset).replace(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            validation_size=self.validation_size,
            seed=self.seed,
        )

    def fit(self, X, y) -> DigitClassifier:
        from digitrec.train import fit_arrays

        images = as_images(X)
        labels = np.asarray(y)
        if labels.shape != (len(images),) or labels.min() < 0 or labels.max() > 9:
            raise ValueError("y must hold one label 0..9 per image")
        self.model_ = fit_arrays(
            self._config(), images, labels.astype(np.uint8), verbose=self.verbose
        )
        self.classes_ = np.arange(10)
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        images = as_images(X)
        if images.shape[1:] != self.model_.input_size:
            raise ValueError(f"fitted on {self.model_.input_size} images, got {images.shape[1:]}")
        return self.model_.predict_proba(images)

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def save(self, path) -> None:
        check_is_fitted(self, "model_")
        self.model_.save(path)

    @classmethod
    def load(cls, path) -> DigitClassifier:
        """A fitted classifier from a model file written by ``save`` or ``digitrec train``."""
        model: DigitModel = load_model(path)
        classifier = cls(preset=model.metadata.get("preset", "cnn30"))
        classifier.model_ = model
        classifier.classes_ = np.arange(len(model.class_names))
        return classifier


__all__ = ["DigitClassifier", "NotFittedError", "DIGITS"]
