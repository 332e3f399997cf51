import re
from pathlib import Path

import numpy as np
import pytest

from digitrec.config import PRESETS, TrainConfig
from digitrec.errors import ConfigError
from digitrec.models import MODELS, build_model


@pytest.mark.parametrize(
    "name, size, params",
    [
        # Known parameter counts of the tutorials' networks.
        ("keras-docs-cnn", (28, 28), 1_199_882),
        ("cnn30", (28, 28), 30 * 26 + 4320 * 128 + 128 + 1290),
        ("dense512", (28, 28), 784 * 512 + 512 + 5130),
        ("mlp-64-15-10", (8, 8), 64 * 15 + 15 + 160),
    ],
)
def test_architectures(name, size, params):
    model = build_model(TrainConfig(model=name), size)
    assert model.count_params() == params
    out = model.predict(np.zeros((3, *size, 1), np.float32), verbose=0)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)


def test_fast_network_reads_only_the_central_24x24():
    """MNIST's 2-pixel border holds almost no ink; skipping it makes each step cheaper."""
    model = build_model(PRESETS["fast"], (28, 28))
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    framed = images.copy()
    framed[:, :2], framed[:, -2:], framed[:, :, :2], framed[:, :, -2:] = 1, 0, 1, 0
    np.testing.assert_array_equal(
        model.predict(images, verbose=0), model.predict(framed, verbose=0)
    )
    inner = framed.copy()
    inner[:, 2, 2] = 1 - inner[:, 2, 2]  # the first pixel read
    assert not np.array_equal(model.predict(inner, verbose=0), model.predict(framed, verbose=0))


def test_cnn30_layers_read_like_the_tutorial():
    layers = build_model(PRESETS["cnn30"], (28, 28)).layers
    assert [type(layer).__name__ for layer in layers] == [
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dense",
    ]
    assert layers[0].filters == 30 and layers[0].kernel_size == (5, 5)
    assert layers[2].rate == 0.2


def test_l2_penalty_only_when_asked():
    with_l2 = build_model(PRESETS["digits8x8-mlp"], (8, 8))
    assert with_l2.layers[1].kernel_regularizer is not None
    assert with_l2.layers[1].activation.__name__ == "sigmoid"
    assert (
        build_model(TrainConfig(model="mlp-64-15-10"), (8, 8)).layers[1].kernel_regularizer is None
    )


def test_unknown_model():
    with pytest.raises(ConfigError, match="unknown model"):
        build_model(TrainConfig(model="resnet"), (28, 28))


def test_model_code_is_backend_agnostic():
    source = Path(MODELS["cnn30"].__code__.co_filename).read_text()
    assert not re.search(r"\b(tf|tensorflow|torch|jax)\.", source)
