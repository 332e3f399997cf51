"""An 8-bit copy of a model's network, for reading digits in bulk two to three times faster.

This CPU does four times as many 8-bit multiply-adds per instruction as float32 ones
(AVX512-VNNI), and onnxruntime's quantized convolutions use them. The quantisation is
static: the range of every convolution's input and output is measured once, on digits the
model never trained on (its own validation images), so nothing is estimated while reading.

The output layer stays float32: 8-bit logits would give probabilities in steps of 1/256,
zeros included, which calibration (a log of each probability) cannot use. The 8-bit graph
lives beside the float one in the model file and is used only when asked for
(``--int8``): it may change a rare answer and moves probabilities by a few hundredths,
so the float network stays the reference that is checked against Keras.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from digitrec.errors import ConfigError

CALIBRATION_IMAGES = 1000  # enough for stable ranges; quantising takes about a second
CHECK_IMAGES = 4000  # held apart from calibration, to measure what 8 bits change
MIN_AGREEMENT = 0.998  # below this share of the float network's answers, refuse
QUANTIZED_OPS = ("Conv", "Relu", "Gemm", "MatMul")  # Relu folds into the 8-bit range


def int8_onnx(onnx_bytes: bytes, calibration: np.ndarray) -> bytes:
    """The float ONNX network quantised to 8 bits, ranges measured on ``calibration``
    (``float32`` model inputs ``(n, h, w, 1)``). The layers that feed a softmax stay float."""
    from digitrec.backend import require

    onnx = require("onnx", "quantising a network")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise ConfigError("quantising needs calibration images")
    model = onnx.load_from_string(onnx_bytes)
    input_name = model.graph.input[0].name
    for index, node in enumerate(model.graph.node):  # exclusion works by node name
        node.name = node.name or f"{node.op_type}_{index}"
    feeds_softmax = {
        name for node in model.graph.node if node.op_type == "Softmax" for name in node.input
    }
    output_layers = [node.name for node in model.graph.node if set(node.output) & feeds_softmax]
    batches = [
        {input_name: np.ascontiguousarray(calibration[start : start + 100], np.float32)}
        for start in range(0, len(calibration), 100)
    ]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as workdir:
        source, fused, target = (Path(workdir) / name for name in ("f.onnx", "p.onnx", "q.onnx"))
        onnx.save(model, source)
        # Shape inference and onnxruntime's own fusions first, as its quantiser expects.
        quant_pre_process(str(source), str(fused), skip_symbolic_shape=True)
        quantize_static(
            str(fused),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_exclude=output_layers,
            calibrate_method=CalibrationMethod.MinMax,
        )
        return target.read_bytes()


def compare(reference: np.ndarray, quantized: np.ndarray) -> dict:
    """How far the 8-bit outputs are from the float ones, on the same images."""
    return {
        "images": len(reference),
        "agreement": float(np.mean(reference.argmax(axis=1) == quantized.argmax(axis=1))),
        "max_difference": float(np.abs(reference - quantized).max()) if len(reference) else 0.0,
    }


def held_out_inputs(model, data_dir: str | Path | None = None) -> np.ndarray:
    """Model inputs that the network never trained on: its validation images, re-drawn
    from its training set with the seed saved in the file (a seeded sample of the
    training images when it kept none back)."""
    from digitrec.data import is_normalized, load_dataset
    from digitrec.preprocess import prepare_dataset, to_model_input
    from digitrec.train import split_validation

    dataset = model.config.dataset
    train = load_dataset(dataset, "train", data_dir)
    seed, size = model.validation_split
    if size:
        images = split_validation(train.images, train.labels, size, seed)[2]
    else:
        pick = np.random.default_rng(0).permutation(len(train.labels))
        images = train.images[np.sort(pick[: CALIBRATION_IMAGES + CHECK_IMAGES])]
    images = images[: CALIBRATION_IMAGES + CHECK_IMAGES]
    return to_model_input(prepare_dataset(images, model.input_size, is_normalized(dataset)))


def quantize_model(model, data_dir: str | Path | None = None) -> tuple[bytes, dict]:
    """The 8-bit network of a loaded model and how it compares with the float one on
    held-out images; refused when it changes too many answers."""
    from digitrec.backend import require
    from digitrec.runtime import OnnxNetwork

    require("onnx", "quantising a network")  # before loading data, not after
    if model.onnx_bytes is None:
        raise ConfigError("this model has no ONNX network to quantise; export it first")
    inputs = held_out_inputs(model, data_dir)
    calibration, check = inputs[:CALIBRATION_IMAGES], inputs[CALIBRATION_IMAGES:]
    if len(check) == 0:
        check = calibration  # a tiny validation split: measured on what calibrated it
    int8 = int8_onnx(model.onnx_bytes, calibration)
    reference = OnnxNetwork(model.onnx_bytes).predict(check)
    report = compare(reference, OnnxNetwork(int8).predict(check))
    report["calibration_images"] = len(calibration)
    if report["agreement"] < MIN_AGREEMENT:
        raise ConfigError(
            f"8 bits change {round((1 - report['agreement']) * len(check))} of "
            f"{len(check)} held-out answers; this network is not quantised"
        )
    return int8, report
