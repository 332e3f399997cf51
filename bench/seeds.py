"""How much the seed matters, and what averaging networks of one recipe buys.

    python bench/seeds.py --data-dir ../shared/datasets MODEL_A MODEL_B [...]

For MNIST test and the three handwriting sets digitrec never trains on: each model's
accuracy alone, their mean and spread, and the accuracy of the mean of their outputs
(the ten digit outputs, forced choice). The models may come from different validation
splits (``--seed``), which ``digitrec ensemble`` refuses because it calibrates on a shared
split; so this measures the average itself, uncalibrated. Writes
bench/results/seeds-<date>.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from machine import header, write_result

from digitrec.artifact import load_model
from digitrec.data import is_normalized, load_dataset
from digitrec.predict import choose_readings
from digitrec.preprocess import prepare_dataset_readings

DATASETS = ("mnist", "usps", "semeion", "optdigits")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    models = [load_model(path) for path in args.models]
    result = header("seeds.py")
    result["models"] = [str(path) for path in args.models]
    for name in DATASETS:
        test = load_dataset(name, "test", args.data_dir)
        first, others = prepare_dataset_readings(test.images, (28, 28), is_normalized(name))
        # Each network reads each doubted picture in the polarity it prefers, as
        # `digitrec evaluate` would with it alone (``predict.choose_readings``).
        outputs = [
            model.predict_outputs(choose_readings(model, first, others))[:, :10] for model in models
        ]
        alone = [float(np.mean(o.argmax(1) == test.labels)) for o in outputs]
        averaged = float(np.mean(np.mean(outputs, axis=0).argmax(1) == test.labels))
        result[name] = {
            "alone": alone,
            "mean": statistics.mean(alone),
            "spread": max(alone) - min(alone),
            "averaged_outputs": averaged,
        }
        print(f"{name:10s} alone {' '.join(f'{a:.2%}' for a in alone)}  averaged {averaged:.2%}")
    write_result(result, "seeds", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
