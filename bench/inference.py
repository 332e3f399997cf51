"""Inference speed without TensorFlow: the bundled model against the Keras docs CNN.

    python bench/inference.py --data-dir ../shared/datasets --reference kdc.digitrec \
        [--also fast.digitrec]

``--reference``: a model file of the keras-docs-cnn preset (``digitrec train --preset
keras-docs-cnn -o kdc.digitrec``). For each model, medians over repeated runs of:
a cold ``digitrec predict one.png`` (process start to printed answer) with onnxruntime
and, for comparison, with the Keras network in TensorFlow; ``digitrec evaluate --dataset
mnist`` (10k images, pipeline included); and batch throughput of the network alone on the
10k preprocessed test images in onnxruntime, TensorFlow, and LiteRT (TFLite) when
``ai-edge-litert`` is installed. Goals (issue 4): cold predict <= 1.0 s, evaluate <= 3 s,
throughput >= 30k images/s. Each model is also measured with its 8-bit network
(``digitrec quantize``, ``--int8``), added to a temporary copy when the file has none.
Writes bench/results/inference-<date>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import header, write_result

from digitrec.artifact import DEFAULT_MODEL, load_model, read_metadata

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "examples" / "seven.png"

# A cold read of one picture through the Keras network, as digitrec did before ONNX.
KERAS_PREDICT = (
    "import sys; from digitrec.artifact import load_model; from digitrec.predict import predict; "
    "m = load_model(sys.argv[1], runtime='keras'); print(predict(m, sys.argv[2])[0].digit)"
)


def wall(command: list[str], repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times]}


def throughput(run, images: np.ndarray, repeats: int = 5) -> float:
    """Images per second of ``run`` on the whole batch, median of ``repeats`` after a warm-up."""
    run(images[:256])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(images)
        times.append(time.perf_counter() - started)
    return round(len(images) / statistics.median(times))


def tflite_runner(keras_model):
    """LiteRT's interpreter on the model converted by ``digitrec export --format tflite``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    from digitrec.export import to_tflite_bytes

    interpreter = Interpreter(model_content=to_tflite_bytes(keras_model))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(batch: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(source["index"], batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])

    return run


def cold_tflite(keras_model, workdir: Path, repeats: int) -> dict | None:
    """Process start to a LiteRT answer on one image: what a TFLite-based CLI would pay."""
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        return None
    from digitrec.export import to_tflite_bytes

    path = workdir / "net.tflite"
    path.write_bytes(to_tflite_bytes(keras_model))
    code = (
        "import sys, numpy as np; from ai_edge_litert.interpreter import Interpreter; "
        "i = Interpreter(model_path=sys.argv[1]); i.allocate_tensors(); "
        "i.set_tensor(i.get_input_details()[0]['index'], np.zeros((1, 28, 28, 1), np.float32)); "
        "i.invoke(); print(i.get_tensor(i.get_output_details()[0]['index']).argmax())"
    )
    return wall([sys.executable, "-c", code, str(path)], repeats)


def cold_onnxruntime(model, workdir: Path, repeats: int) -> dict:
    path = workdir / "net.onnx"
    path.write_bytes(model.onnx_bytes)
    code = (
        "import sys, numpy as np, onnxruntime as ort; s = ort.InferenceSession(sys.argv[1]); "
        "print(s.run(None, {'image': np.zeros((1, 28, 28, 1), np.float32)})[0].argmax())"
    )
    return wall([sys.executable, "-c", code, str(path)], repeats)


def with_int8(path: Path, data: list[str], workdir: Path) -> Path:
    """A copy of the model file with an 8-bit network (``digitrec quantize``), unless it
    has one already."""
    if "int8" in read_metadata(path):
        return path
    copy = workdir / f"{path.stem}-int8.digitrec"
    subprocess.run(
        [sys.executable, "-m", "digitrec.cli", "quantize", str(path), "-o", str(copy), *data],
        check=True,
        capture_output=True,
    )
    return copy


def measure(path: Path, images: np.ndarray, data: list[str], repeats: int, workdir: Path) -> dict:
    cli = [sys.executable, "-m", "digitrec.cli"]
    onnx_model, keras_model = load_model(path), load_model(path, runtime="keras").keras_model
    int8_path = with_int8(path, data, workdir)
    int8_model = load_model(int8_path, runtime="int8")
    inputs = images.astype(np.float32)[..., None] / 255
    tflite = tflite_runner(keras_model)
    return {
        "model": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path),
        "network": keras_model.name,
        "cold_predict_onnx": wall([*cli, "predict", str(IMAGE), "--model", str(path)], repeats),
        "cold_predict_keras": wall([sys.executable, "-c", KERAS_PREDICT, str(path), str(IMAGE)], 3),
        "cold_network_only": {
            "onnxruntime": cold_onnxruntime(onnx_model, workdir, repeats),
            "litert": cold_tflite(keras_model, workdir, repeats),
        },
        "evaluate_mnist": wall(
            [*cli, "evaluate", "--dataset", "mnist", "--model", str(path), *data], 3
        ),
        "evaluate_mnist_int8": wall(
            [*cli, "evaluate", "--dataset", "mnist", "--model", str(int8_path), "--int8", *data],
            3,
        ),
        "throughput_images_per_s": {
            "onnxruntime": throughput(
                lambda x: onnx_model._network.predict(x, batch_size=len(x)), inputs
            ),
            "onnxruntime_int8": throughput(
                lambda x: int8_model._network.predict(x, batch_size=len(x)), inputs
            ),
            "tensorflow": throughput(
                lambda x: keras_model.predict(x, batch_size=1024, verbose=0), inputs, 3
            ),
            "litert": throughput(tflite, inputs) if tflite else None,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("DIGITREC_DATA"))
    parser.add_argument("--reference", type=Path, required=True, help="keras-docs-cnn model")
    parser.add_argument(
        "--also", type=Path, nargs="*", default=[], help="more model files, e.g. a fast preset"
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    from digitrec.data import load_dataset

    data = ["--data-dir", args.data_dir] if args.data_dir else []
    images = load_dataset("mnist", "test", data_dir=args.data_dir).images
    result = header("inference.py")
    with tempfile.TemporaryDirectory() as workdir:
        reference = Path(workdir) / "reference.digitrec"
        subprocess.run(  # adds the ONNX network to files saved before it existed
            [sys.executable, "-m", "digitrec.cli", "export", str(args.reference)]
            + ["--format", "digitrec", "-o", str(reference)],
            check=True,
            capture_output=True,
        )
        result["bundled"] = measure(DEFAULT_MODEL, images, data, args.repeats, Path(workdir))
        result["keras-docs-cnn"] = measure(reference, images, data, args.repeats, Path(workdir))
        for path in args.also:
            result[path.stem] = measure(path, images, data, args.repeats, Path(workdir))
    bundled = result["bundled"]
    result["goals"] = {
        "cold predict <= 1.0 s": bundled["cold_predict_onnx"]["median_s"] <= 1.0,
        "evaluate mnist <= 3 s": bundled["evaluate_mnist"]["median_s"] <= 3.0,
        "throughput >= 30k/s": bundled["throughput_images_per_s"]["onnxruntime"] >= 30_000,
        "throughput >= 30k/s, int8": bundled["throughput_images_per_s"]["onnxruntime_int8"]
        >= 30_000,
    }
    write_result(result, "inference", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
