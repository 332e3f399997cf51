"""A trained Keras network as an ONNX graph, so reading digits never needs TensorFlow.

TensorFlow takes seconds to start; onnxruntime takes a fraction of one. Every model file
carries ``model.onnx`` beside ``model.keras`` (written at save time, checked against
Keras there), and ``runtime.py`` runs it. The graph is built layer by layer from the
weights, for exactly the layers digitrec's models use, rather than by a general
converter: it is small, exact and has no dependency beyond the ``onnx`` package.

Layout: the graph takes the model input as Keras does, ``float32 (n, h, w, 1)`` in
[0, 1], turns it to NCHW for the convolutions (what ONNX runtimes are fast at), folds
each batch normalisation into the convolution before it, and turns back to NHWC before
flattening, so dense weights keep Keras's order. Dropout is left out (inference).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from digitrec.errors import ConfigError

OPSET = 17
INPUT, OUTPUT = "image", "probabilities"


def _activation(name: str | None, source: str, nodes: list, helper) -> str:
    """Append the node for a Keras activation; returns the name of its output."""
    if name in (None, "linear"):
        return source
    kinds = {"relu": "Relu", "sigmoid": "Sigmoid", "softmax": "Softmax", "tanh": "Tanh"}
    if name not in kinds:
        raise ConfigError(f"cannot export activation {name!r} to ONNX")
    out = f"{source}_{name}"
    attributes = {"axis": -1} if name == "softmax" else {}
    nodes.append(helper.make_node(kinds[name], [source], [out], **attributes))
    return out


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same": the output is ceil(size / stride); the odd pixel goes last."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def members(keras_model) -> list:
    """The networks of an ensemble (``models.ensemble``), or ``[keras_model]`` itself."""
    from digitrec.backend import import_keras

    keras = import_keras()
    if isinstance(keras_model, keras.Sequential):
        return [keras_model]
    inner = [layer for layer in keras_model.layers if isinstance(layer, keras.Sequential)]
    others = [
        layer
        for layer in keras_model.layers
        if not isinstance(layer, (keras.Sequential, keras.layers.InputLayer, keras.layers.Average))
    ]
    if not inner or others:
        raise ConfigError(
            "can only export a keras.Sequential network or an ensemble of them (models.ensemble)"
        )
    return inner


def to_onnx(keras_model):
    """The ``onnx.ModelProto`` of a ``keras.Sequential`` built by ``models.build_model``, or
    of an ensemble of them: each network's graph, then the mean of their outputs."""
    from digitrec.backend import require

    onnx = require("onnx", "writing an ONNX network")
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights = [], []

    def constant(name: str, array: np.ndarray) -> str:
        array = np.asarray(array)  # indices stay int64; weights become float32
        array = array if array.dtype == np.int64 else array.astype(np.float32)
        weights.append(numpy_helper.from_array(array, name))
        return name

    networks = members(keras_model)
    outputs = [
        _network_nodes(network, f"m{index}_" if len(networks) > 1 else "", nodes, constant)
        for index, network in enumerate(networks)
    ]
    if len(outputs) == 1:
        nodes.append(helper.make_node("Identity", outputs, [OUTPUT]))
    else:
        nodes.append(helper.make_node("Mean", outputs, [OUTPUT]))
    shape = ["n", *(int(d) for d in keras_model.input_shape[1:])]
    graph = helper.make_graph(
        nodes,
        keras_model.name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, shape)],
        [
            helper.make_tensor_value_info(
                OUTPUT, TensorProto.FLOAT, ["n", keras_model.output_shape[-1]]
            )
        ],
        initializer=weights,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="digitrec"
    )
    model.ir_version = 8  # readable by onnxruntime releases of the last few years
    onnx.checker.check_model(model)
    return model


def _network_nodes(keras_model, prefix: str, nodes: list, constant) -> str:
    """Append the nodes of one ``keras.Sequential`` reading ``INPUT``, every name starting
    with ``prefix``; returns the name of its output."""
    from onnx import helper

    from digitrec.backend import import_keras

    layers = import_keras().layers
    height, width = (int(d) for d in keras_model.input_shape[1:3])
    current, layout = INPUT, "NHWC"
    conv = None  # the last convolution, while a batch norm may still fold into it
    for index, layer in enumerate(keras_model.layers):
        name = f"{prefix}l{index}_{type(layer).__name__}"
        config = layer.get_config()
        if isinstance(layer, layers.Conv2D):
            if conv is not None:
                current = _emit_conv(conv, nodes, constant, helper)
            if layout == "NHWC":
                nchw = f"{prefix}nchw"
                nodes.append(helper.make_node("Transpose", [current], [nchw], perm=[0, 3, 1, 2]))
                current, layout = nchw, "NCHW"
            kernel, *bias = (np.asarray(w) for w in layer.get_weights())
            (kh, kw), (sh, sw) = config["kernel_size"], config["strides"]
            if tuple(config.get("dilation_rate", (1, 1))) != (1, 1) or config.get("groups", 1) != 1:
                raise ConfigError(f"cannot export {layer.name}: dilated or grouped convolution")
            if config["padding"] == "same":
                (top, bottom), (left, right) = (
                    _same_padding(height, kh, sh),
                    _same_padding(width, kw, sw),
                )
            else:
                top = bottom = left = right = 0
            height = (height + top + bottom - kh) // sh + 1
            width = (width + left + right - kw) // sw + 1
            conv = {
                "name": name,
                "input": current,
                "kernel": kernel.transpose(3, 2, 0, 1),  # (kh, kw, in, out) -> (out, in, kh, kw)
                "bias": bias[0] if bias else np.zeros(kernel.shape[3], np.float32),
                "attributes": dict(
                    kernel_shape=[kh, kw], strides=[sh, sw], pads=[top, left, bottom, right]
                ),
            }
            if config["activation"] not in (None, "linear"):  # nothing can fold in
                current = _emit_conv(conv, nodes, constant, helper)
                current = _activation(config["activation"], current, nodes, helper)
                conv = None
        elif isinstance(layer, layers.BatchNormalization):
            gamma = np.asarray(layer.gamma) if layer.gamma is not None else 1.0
            beta = np.asarray(layer.beta) if layer.beta is not None else 0.0
            mean, variance = np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)
            scale = gamma / np.sqrt(variance + config["epsilon"])
            shift = beta - mean * scale
            if conv is not None:  # folded into the convolution: no work at inference
                conv["kernel"] = conv["kernel"] * scale[:, None, None, None]
                conv["bias"] = conv["bias"] * scale + shift
            else:  # after pooling or a dense layer: y = x * scale + shift, per channel
                shape = (-1, 1, 1) if layout == "NCHW" else (-1,)
                scale_name = constant(f"{name}_scale", scale.reshape(shape))
                shift_name = constant(f"{name}_shift", shift.reshape(shape))
                nodes.append(helper.make_node("Mul", [current, scale_name], [f"{name}_mul"]))
                nodes.append(helper.make_node("Add", [f"{name}_mul", shift_name], [f"{name}_out"]))
                current = f"{name}_out"
        else:
            if conv is not None:  # the convolution (and any batch norm) is complete
                current = _emit_conv(conv, nodes, constant, helper)
                conv = None
            if isinstance(layer, layers.Activation):
                current = _activation(config["activation"], current, nodes, helper)
            elif isinstance(layer, layers.MaxPooling2D):
                (ph, pw), (sh, sw) = config["pool_size"], config["strides"] or config["pool_size"]
                if config["padding"] != "valid":
                    raise ConfigError(f"cannot export {layer.name}: only valid pooling")
                nodes.append(
                    helper.make_node(
                        "MaxPool",
                        [current],
                        [f"{name}_out"],
                        kernel_shape=[ph, pw],
                        strides=[sh, sw],
                    )
                )
                current = f"{name}_out"
                height, width = (height - ph) // sh + 1, (width - pw) // sw + 1
            elif isinstance(layer, layers.Dropout):
                continue
            elif isinstance(layer, layers.Cropping2D):
                if layout != "NHWC" or config.get("data_format") == "channels_first":
                    raise ConfigError(f"cannot export {layer.name}: only a crop of the input")
                (top, bottom), (left, right) = config["cropping"]
                starts = constant(f"{name}_starts", np.array([top, left], np.int64))
                ends = constant(
                    f"{name}_ends", np.array([height - bottom, width - right], np.int64)
                )
                axes = constant(f"{name}_axes", np.array([1, 2], np.int64))
                nodes.append(
                    helper.make_node("Slice", [current, starts, ends, axes], [f"{name}_out"])
                )
                current = f"{name}_out"
                height, width = height - top - bottom, width - left - right
            elif isinstance(layer, layers.Flatten):
                if layout == "NCHW":
                    nodes.append(
                        helper.make_node(
                            "Transpose", [current], [f"{name}_nhwc"], perm=[0, 2, 3, 1]
                        )
                    )
                    current, layout = f"{name}_nhwc", "NHWC"
                nodes.append(helper.make_node("Flatten", [current], [f"{name}_out"], axis=1))
                current, layout = f"{name}_out", "flat"
            elif isinstance(layer, layers.Dense):
                if layout != "flat":
                    raise ConfigError(f"cannot export {layer.name}: dense layer on an image")
                kernel, *bias = (np.asarray(w) for w in layer.get_weights())
                inputs = [current, constant(f"{name}_w", kernel)]
                if bias:
                    inputs.append(constant(f"{name}_b", bias[0]))
                nodes.append(helper.make_node("Gemm", inputs, [f"{name}_out"]))
                current = _activation(config["activation"], f"{name}_out", nodes, helper)
            else:
                raise ConfigError(f"cannot export layer {layer.name} ({type(layer).__name__})")
    if conv is not None:
        current = _emit_conv(conv, nodes, constant, helper)
    return current


def _emit_conv(conv: dict, nodes: list, constant, helper) -> str:
    kernel = constant(f"{conv['name']}_w", conv["kernel"])
    bias = constant(f"{conv['name']}_b", conv["bias"])
    out = f"{conv['name']}_out"
    nodes.append(
        helper.make_node("Conv", [conv["input"], kernel, bias], [out], **conv["attributes"])
    )
    return out


def to_onnx_bytes(keras_model) -> bytes:
    return to_onnx(keras_model).SerializeToString()


def to_tflite_bytes(keras_model) -> bytes:
    """The network as a TensorFlow Lite flatbuffer, for phones and microcontrollers, by
    TensorFlow's own converter (so it needs the train extra). The model files carry ONNX
    instead: onnxruntime starts faster here and needs no TensorFlow (bench/inference.py)."""
    from digitrec.backend import quiet_stderr, require

    tf = require("tensorflow", "writing a TensorFlow Lite network")
    # The converter prints the traced signature to stdout and its C++ log to stderr.
    with quiet_stderr(), contextlib.redirect_stdout(io.StringIO()):
        try:
            return tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
        except Exception as error:  # TensorFlow raises many types here
            raise ConfigError(f"cannot convert the network to TensorFlow Lite ({error})") from None


def run_tflite(tflite_bytes: bytes, inputs: np.ndarray) -> np.ndarray:
    """A TFLite network's outputs, with LiteRT's interpreter if installed, else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from digitrec.backend import require

        Interpreter = require("tensorflow", "running a TensorFlow Lite network").lite.Interpreter
    interpreter = Interpreter(model_content=tflite_bytes)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], inputs.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], np.ascontiguousarray(inputs, np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(target["index"])
