"""Model builders by name: each reads like the tutorial's architecture diagram.

Every model takes ``float32`` images ``(h, w, 1)`` scaled to [0, 1] and returns ten
softmax probabilities. Models are plain backend-agnostic Keras: no TensorFlow calls.
"""

from __future__ import annotations

from collections.abc import Callable

from digitrec.backend import import_keras
from digitrec.config import TrainConfig
from digitrec.errors import ConfigError

# The fast network reads the central 24x24 of each 28x28 image. MNIST fits each digit
# into 20x20 and centres it, so the 2-pixel border holds 0.26% of the ink (36 of the
# 10000 test images lose more than 5% of theirs), and skipping it cuts a training step
# by about a quarter.
CROP = 2


def cnn30(input_shape: tuple[int, int], n_classes: int, config: TrainConfig):
    layers = import_keras().layers
    return [
        layers.Conv2D(30, 5, activation="relu"),  # 28x28 -> 24x24x30
        layers.MaxPooling2D(2),  # -> 12x12x30
        layers.Dropout(0.2),
        layers.Flatten(),  # -> 4320
        layers.Dense(128, activation="relu"),
        layers.Dense(n_classes, activation="softmax"),
    ]


def keras_docs_cnn(input_shape: tuple[int, int], n_classes: int, config: TrainConfig):
    layers = import_keras().layers
    return [
        layers.Conv2D(32, 3, activation="relu"),  # 28x28 -> 26x26x32
        layers.Conv2D(64, 3, activation="relu"),  # -> 24x24x64
        layers.MaxPooling2D(2),  # -> 12x12x64
        layers.Dropout(0.25),
        layers.Flatten(),  # -> 9216
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(n_classes, activation="softmax"),
    ]


def digitrec_cnn(input_shape: tuple[int, int], n_classes: int, config: TrainConfig):
    """The bundled model: small 3x3 stacks with batch norm, strided 5x5 convolutions
    instead of pooling, heavy dropout (after Chris Deotte's Kaggle MNIST design). About
    15M multiply-adds an image, close to the Keras docs CNN, with a third of its weights."""
    layers = import_keras().layers

    def conv(filters: int, size: int, strides: int = 1, padding: str = "valid"):
        return [
            layers.Conv2D(filters, size, strides=strides, padding=padding, use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
        ]

    return [
        *conv(32, 3),  # 28x28 -> 26x26x32
        *conv(32, 3),  # -> 24x24x32
        *conv(32, 5, strides=2, padding="same"),  # -> 12x12x32
        layers.Dropout(0.4),
        *conv(64, 3),  # -> 10x10x64
        *conv(64, 3),  # -> 8x8x64
        *conv(64, 5, strides=2, padding="same"),  # -> 4x4x64
        layers.Dropout(0.4),
        *conv(128, 4),  # -> 1x1x128
        layers.Flatten(),
        layers.Dropout(0.4),
        layers.Dense(n_classes, activation="softmax"),
    ]


def fast_cnn(input_shape: tuple[int, int], n_classes: int, config: TrainConfig):
    """The ``fast`` preset's network: two convolutions, each max-pooled *before* its batch
    norm and ReLU, so those run on a quarter of the pixels (on a CPU they cost about as
    much as the convolutions). Batch-norm statistics follow quickly (momentum 0.9):
    one epoch is only 430 steps. About 1.0M multiply-adds an image."""
    layers = import_keras().layers

    def normalized(layer):
        return [layer, layers.BatchNormalization(momentum=0.9), layers.Activation("relu")]

    return [
        layers.Cropping2D(CROP),  # 28x28 -> 24x24
        layers.Conv2D(24, 5, use_bias=False),  # -> 20x20x24
        *normalized(layers.MaxPooling2D(2)),  # -> 10x10x24
        layers.Conv2D(48, 3, use_bias=False),  # -> 8x8x48
        *normalized(layers.MaxPooling2D(2)),  # -> 4x4x48
        layers.Flatten(),  # -> 768
        *normalized(layers.Dense(128, use_bias=False)),
        layers.Dense(n_classes, activation="softmax"),
    ]


def dense512(input_shape: tuple[int, int], n_classes: int, config: TrainConfig):
    layers = import_keras().layers
    return [
        layers.Flatten(),  # 28x28 -> 784
        layers.Dense(512, activation="relu"),
        layers.Dense(n_classes, activation="softmax"),
    ]


def mlp_64_15_10(input_shape: tuple[int, int], n_classes: int, config: TrainConfig):
    keras = import_keras()
    l2 = keras.regularizers.L2(config.l2) if config.l2 else None
    return [
        keras.layers.Flatten(),  # 8x8 -> 64
        keras.layers.Dense(15, activation="sigmoid", kernel_regularizer=l2),
        keras.layers.Dense(n_classes, activation="softmax", kernel_regularizer=l2),
    ]


MODELS: dict[str, Callable] = {
    "cnn30": cnn30,
    "keras-docs-cnn": keras_docs_cnn,
    "dense512": dense512,
    "digitrec-cnn": digitrec_cnn,
    "fast-cnn": fast_cnn,
    "mlp-64-15-10": mlp_64_15_10,
    # The scikit-learn MLP's weights are copied into this shape after fitting (train.py).
    "sklearn-mlp": mlp_64_15_10,
}


def build_model(config: TrainConfig, input_shape: tuple[int, int], n_classes: int = 10):
    """A new, untrained ``keras.Sequential`` for ``config.model``."""
    if config.model not in MODELS:
        raise ConfigError(f"unknown model {config.model!r}; choose one of: {', '.join(MODELS)}")
    keras = import_keras()
    layers = MODELS[config.model](input_shape, n_classes, config)
    return keras.Sequential([keras.Input((*input_shape, 1)), *layers], name=config.model)


def ensemble(networks: list):
    """One network averaging the softmax outputs of ``networks`` (same input and outputs).
    Each keeps its own layers; Keras saves them nested, and export.py writes their mean."""
    keras = import_keras()
    inputs = keras.Input(tuple(networks[0].input_shape[1:]))
    # Nested models need distinct names; their layers are shared, not copied.
    renamed = [
        keras.Sequential(network.layers, name=f"member_{index}")
        for index, network in enumerate(networks)
    ]
    outputs = keras.layers.Average(name="mean")([network(inputs) for network in renamed])
    return keras.Model(inputs, outputs, name="ensemble")
