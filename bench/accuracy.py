"""MNIST test accuracy of trained models side by side, each read plainly and with
test-time augmentation, and for ensembles the accuracy of each network alone.

    python bench/accuracy.py --data-dir ../shared/datasets \
        --reference kdc.digitrec --models best.digitrec ens.digitrec

Models are trained beforehand with the CLI (``digitrec train --preset best``,
``digitrec train --preset best --ensemble 3``, ``digitrec ensemble A B``); training
takes hours here, so this script only scores files, with ``digitrec evaluate --json``
exactly as a user would. Writes bench/results/accuracy-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from machine import header, write_result


def evaluate(model: str, data_dir: str, tta: bool) -> dict:
    command = [sys.executable, "-m", "digitrec.cli", "evaluate", model, "--json"]
    command += ["--data-dir", data_dir, "--tta" if tta else "--no-tta"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr.strip())
    result = json.loads(done.stdout)
    return {key: result[key] for key in ("accuracy", "errors", "loss", "ece", "refused")}


def describe(model: str, data_dir: str) -> dict:
    command = [sys.executable, "-m", "digitrec.cli", "info", model]
    metadata = json.loads(subprocess.run(command, capture_output=True, text=True).stdout)
    entry = {
        "model": model,
        "preset": metadata.get("preset"),
        "train_seconds": metadata.get("train_seconds"),
        "plain": evaluate(model, data_dir, tta=False),
        "tta": evaluate(model, data_dir, tta=True),
    }
    members = metadata.get("ensemble", {}).get("members", [])
    alone = [m["metrics"]["test"]["accuracy"] for m in members if "test" in m.get("metrics", {})]
    if alone:
        entry["networks_alone"] = {
            "accuracy": alone,
            "mean": statistics.mean(alone),
            "spread": max(alone) - min(alone),
        }
    print(
        f"{model}: {entry['plain']['accuracy']:.2%} plain, {entry['tta']['accuracy']:.2%} "
        f"with test-time forms" + (f"; networks alone {alone}" if alone else ""),
        file=sys.stderr,
        flush=True,
    )
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--reference", required=True, help="a keras-docs-cnn model file")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    result = {
        **header("accuracy.py"),
        "reference": describe(args.reference, args.data_dir),
        "models": [describe(model, args.data_dir) for model in args.models],
    }
    write_result(result, "accuracy", args.output)


if __name__ == "__main__":
    main()
