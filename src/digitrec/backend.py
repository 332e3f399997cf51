"""Import Keras only when a function needs it, with quiet TensorFlow start-up.

``import digitrec`` must stay cheap: TensorFlow takes seconds to start, and reading a
dataset or a model's metadata needs none of it.
"""

from __future__ import annotations

import os


def import_keras():
    """Return the ``keras`` module, on the TensorFlow backend unless the user chose another."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # Level 3 also hides a harmless tf.data "unknown attribute" error that TF 2.21 prints;
    # real failures still raise Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


def versions() -> dict[str, str]:
    """Versions of everything that shapes a trained model, for the model file."""
    import platform

    import numpy

    from digitrec import __version__

    keras = import_keras()
    found = {
        "digitrec": __version__,
        "keras": keras.__version__,
        "backend": keras.config.backend(),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    if found["backend"] == "tensorflow":
        import tensorflow

        found["tensorflow"] = tensorflow.__version__
    return found
