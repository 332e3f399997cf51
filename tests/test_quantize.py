"""The 8-bit network: made from held-out images, answers as the float one, kept apart."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from digitrec import quantize
from digitrec.artifact import INT8_ENTRY, METADATA_ENTRY, ONNX_ENTRY, load_model
from digitrec.cli import main
from digitrec.config import PRESETS
from digitrec.export import to_onnx_bytes
from digitrec.models import build_model
from digitrec.runtime import OnnxNetwork


@pytest.fixture(scope="module")
def quantized(digits_model_path, tmp_path_factory):
    """The session's digits8x8 model with its 8-bit network added by the CLI."""
    output = tmp_path_factory.mktemp("int8") / "model.digitrec"
    assert main(["quantize", str(digits_model_path), "-o", str(output)]) == 0
    return output


def test_compare_counts_changed_answers():
    reference = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], np.float32)
    quantized = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]], np.float32)
    report = quantize.compare(reference, quantized)
    assert report["images"] == 3
    assert report["agreement"] == pytest.approx(2 / 3)
    assert report["max_difference"] == pytest.approx(0.2)


def test_convolutions_go_8_bit_and_the_output_layer_stays_float():
    config = PRESETS["default"]
    network = build_model(config, (28, 28), n_classes=11)
    inputs = np.random.default_rng(0).random((200, 28, 28, 1), dtype=np.float32)
    int8 = quantize.int8_onnx(to_onnx_bytes(network), inputs[:100])
    import onnx

    graph = onnx.load_from_string(int8).graph
    int8_weights = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8}
    convolutions = [node for node in graph.node if node.op_type == "Conv"]
    assert convolutions
    dequantized = {
        node.output[0]: node.input[0] for node in graph.node if node.op_type == "DequantizeLinear"
    }
    # Every convolution reads 8-bit weights; the output layer (Gemm before softmax) reads float.
    assert all(dequantized.get(conv.input[1]) in int8_weights for conv in convolutions)
    (gemm,) = [node for node in graph.node if node.op_type == "Gemm"]
    assert gemm.input[1] not in dequantized
    outputs = OnnxNetwork(int8).predict(inputs[100:])
    assert outputs.shape == (100, 11)
    assert np.allclose(outputs.sum(axis=1), 1, atol=1e-5)
    assert (outputs > 0).all()  # float probabilities: calibration takes their log


def test_quantize_adds_the_network_and_copies_the_rest(digits_model_path, quantized):
    with zipfile.ZipFile(digits_model_path) as before, zipfile.ZipFile(quantized) as after:
        assert set(after.namelist()) == set(before.namelist()) | {INT8_ENTRY}
        for name in before.namelist():
            if name != METADATA_ENTRY:
                assert after.read(name) == before.read(name), name
        report = json.loads(after.read(METADATA_ENTRY))["int8"]
    assert report["agreement"] >= quantize.MIN_AGREEMENT
    assert report["calibration_images"] > 0 and report["images"] > 0


def test_int8_runtime_reads_like_the_float_network(quantized, capsys):
    model = load_model(quantized, "int8")
    assert model.runtime == "int8" and model.onnx_bytes is None
    scores = []
    for extra in ([], ["--int8"]):
        assert main(["evaluate", str(quantized), "--dataset", "digits8x8", "--json", *extra]) == 0
        scores.append(json.loads(capsys.readouterr().out)["accuracy"])
    assert scores[1] >= scores[0] - 0.01, scores


def test_export_writes_the_8_bit_network(quantized, tmp_path, capsys):
    target = tmp_path / "net.onnx"
    assert main(["export", str(quantized), "--format", "onnx-int8", "-o", str(target)]) == 0
    with zipfile.ZipFile(quantized) as archive:
        assert target.read_bytes() == archive.read(INT8_ENTRY)


def test_a_model_without_one_says_how_to_add_it(digits_model_path, capsys):
    code = main(["evaluate", str(digits_model_path), "--dataset", "digits8x8", "--int8"])
    assert code != 0
    assert "digitrec quantize" in capsys.readouterr().err


def test_saving_again_drops_the_8_bit_copy(quantized, tmp_path):
    """A model saved again (after fine-tuning, say) may have a new network: the old 8-bit
    copy must not travel with it, and model.onnx must stay the float network."""
    model = load_model(quantized, "int8")
    resaved = model.save(tmp_path / "again.digitrec")
    with zipfile.ZipFile(resaved) as archive:
        assert INT8_ENTRY not in archive.namelist()
        assert "int8" not in json.loads(archive.read(METADATA_ENTRY))
        float_net = archive.read(ONNX_ENTRY)
    with zipfile.ZipFile(quantized) as archive:
        assert float_net == archive.read(ONNX_ENTRY)


def test_too_many_changed_answers_are_refused(digits_model_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quantize, "MIN_AGREEMENT", 1.01)  # no network can meet it
    target = tmp_path / "refused.digitrec"
    assert main(["quantize", str(digits_model_path), "-o", str(target)]) != 0
    assert "not quantised" in capsys.readouterr().err
    assert not target.exists()


def test_reading_with_it_never_starts_tensorflow():
    """The bundled model carries an 8-bit network; reading with it stays TensorFlow-free."""
    code = (
        "import sys; from digitrec.cli import main; "
        "assert main(['predict', '--int8', 'examples/seven.png']) == 0; "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    out = subprocess.check_output([sys.executable, "-c", code], text=True)
    assert out.splitlines() == ["examples/seven.png: 7 (100.0%)", "False"]
