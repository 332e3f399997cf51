"""digitrec: train, evaluate, save and use handwritten-digit classifiers.

>>> import digitrec
>>> model = digitrec.train("keras-docs-cnn", output="cnn.digitrec")
>>> digitrec.evaluate(model, "mnist").accuracy
>>> [p.digit for p in digitrec.predict(model, "my_digit.png")]
>>> [r.text for r in digitrec.read(None, "meter.jpg")]  # None: the bundled model

Importing the package is cheap: Keras and TensorFlow load on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_dataset": "digitrec.data",
    "train": "digitrec.train",
    "TrainConfig": "digitrec.config",
    "PRESETS": "digitrec.config",
    "evaluate": "digitrec.evaluate",
    "load_model": "digitrec.artifact",
    "DigitModel": "digitrec.artifact",
    "predict": "digitrec.predict",
    "read": "digitrec.read",
    "finetune": "digitrec.finetune",
    "DigitClassifier": "digitrec.estimator",
    "NotFittedError": "digitrec.estimator",
    "DigitrecError": "digitrec.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'digitrec' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])
