"""Training speed and memory: the ``fast`` preset against the Keras docs CNN, back to back.

    python bench/training.py --data-dir ../shared/datasets [--repeats 3] [--reference-repeats 1]
    python bench/training.py --data-dir ../shared/datasets --memory-only --presets default

Each run is its own ``digitrec train`` process, timed from process start to the saved
model file (start-up, data loading, training, test evaluation and the save included),
with its peak resident memory from the kernel. Goals (issue 4): the fast preset reaches
>= 99.2% MNIST test accuracy in <= 15 s, and in <= 0.08 of the reference's time; training
peak memory <= 2 GiB. ``--memory-only`` trains one epoch of each preset, enough to reach
its peak memory. Writes bench/results/training-<date>.json.
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

from machine import header, write_result

from digitrec.artifact import read_metadata

GiB = 1024**3


def train_run(preset: str, workdir: str, data: list[str], *extra: str) -> dict:
    """One ``digitrec train`` process: wall seconds, peak RSS, and the saved test accuracy."""
    output = Path(workdir) / f"{preset}.digitrec"
    command = [sys.executable, "-m", "digitrec.cli", "train", "--preset", preset]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, *data, *extra, "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace")
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{preset}: digitrec train failed:\n{stderr[-2000:]}")
    metadata = read_metadata(output)
    output.unlink()
    return {
        "wall_s": round(wall, 2),
        # CPU time and disk reads tell a slow run's cause: this machine's kernel drops
        # TensorFlow from the page cache, and a start that reads it again waits on disk.
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "disk_read_mib": round(usage.ru_inblock * 512 / 2**20, 1),  # in 512-byte blocks
        "peak_rss_gib": round(usage.ru_maxrss * 1024 / GiB, 3),  # ru_maxrss is in KiB
        "test_accuracy": metadata["metrics"]["test"]["accuracy"],
        "epochs": metadata["epochs_completed"],
        "precision": metadata.get("training_precision", "float32"),  # picked for the CPU
    }


def summary(runs: list[dict]) -> dict:
    return {
        "runs": runs,
        "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
        "min_test_accuracy": min(r["test_accuracy"] for r in runs),
        "max_peak_rss_gib": max(r["peak_rss_gib"] for r in runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("DIGITREC_DATA"))
    parser.add_argument("--repeats", type=int, default=3, help="runs of the fast preset")
    parser.add_argument("--reference-repeats", type=int, default=1, help="keras-docs-cnn runs")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--presets", nargs="+", default=["default", "fast", "keras-docs-cnn"])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    result = header("training.py")
    with tempfile.TemporaryDirectory() as workdir:
        if args.memory_only:
            result["one_epoch"] = {
                preset: train_run(preset, workdir, data, "--epochs", "1") for preset in args.presets
            }
            result["goal"] = {"peak_rss_gib": 2.0}
            write_result(result, "training-memory", args.output)
            return 0
        fast = summary([train_run("fast", workdir, data) for _ in range(args.repeats)])
        reference = [
            train_run("keras-docs-cnn", workdir, data) for _ in range(args.reference_repeats)
        ]
        reference = summary(reference)
    ratio = fast["median_wall_s"] / reference["median_wall_s"]
    result |= {
        "fast": fast,
        "keras-docs-cnn": reference,
        "fast_over_reference": round(ratio, 3),
        "goals": {
            "fast_wall_s <= 15": fast["median_wall_s"] <= 15,
            "fast_over_reference <= 0.08": ratio <= 0.08,
            "fast_test_accuracy >= 0.992": fast["min_test_accuracy"] >= 0.992,
            "peak_rss <= 2 GiB": max(fast["max_peak_rss_gib"], reference["max_peak_rss_gib"]) <= 2,
        },
    }
    write_result(result, "training", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
