"""Write the synthetic gallery of hard real-world cases and, given a model, measure it.

    python bench/gallery.py --data-dir ../shared/datasets --out /tmp/gallery --n 500 \\
        [--seed 0] [--model model.digitrec] [--json figures.json]

Writes DIR/c0042_shadow_7.png ("x" in place of the label for a non-digit) and
DIR/labels.csv. With --model, reads every picture with ``digitrec.predict.predict`` and
prints the accuracy overall, per condition and per kind of ink; a digit that is refused
counts as wrong. Non-digits are scored apart: the share refused, which should be all.
The digits are MNIST *test* digits (and mouse drawings); nothing here trains.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

from PIL import Image

from digitrec.data import load_dataset
from digitrec.gallery import make_gallery


def write_gallery(cases, folder: Path) -> None:
    """Each case as a lossless PNG (JPEG artefacts are already in the pixels), plus
    labels.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "labels.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "label", "condition", "source"])
        for case in cases:
            Image.fromarray(case.image).save(folder / f"{case.name}.png")
            label = "" if case.label is None else case.label
            writer.writerow([f"{case.name}.png", label, case.condition, case.source])


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def score(cases, predictions) -> dict:
    """Accuracy on the digits (a refusal is a miss) by condition and by kind of ink, and
    the refusal rate on the non-digits by kind. Pure: cases and predictions in order."""
    groups = defaultdict(lambda: [0, 0, 0])  # group -> [cases, correct, refused]
    negatives = defaultdict(lambda: [0, 0])  # group -> [cases, refused]
    for case, prediction in zip(cases, predictions, strict=True):
        refused = prediction.digit is None
        kind = case.source.split("#")[0]
        if case.label is None:
            for group in ("all", f"kind:{kind}", f"condition:{case.condition}"):
                negatives[group][0] += 1
                negatives[group][1] += refused
            continue
        for group in ("all", f"condition:{case.condition}", f"kind:{kind}"):
            groups[group][0] += 1
            groups[group][1] += prediction.digit == case.label
            groups[group][2] += refused
    digits = {
        name: {"n": n, "accuracy": _rate(correct, n), "refused": refused}
        for name, (n, correct, refused) in groups.items()
    }
    refusals = {
        name: {"n": n, "refusal_rate": _rate(refused, n)}
        for name, (n, refused) in negatives.items()
    }
    return {
        "accuracy": digits.get("all", {}).get("accuracy"),
        "digits_wrongly_refused": digits.get("all", {}).get("refused", 0),
        "negatives_refusal_rate": refusals.get("all", {}).get("refusal_rate"),
        "digits": digits,
        "negatives": refusals,
    }


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _section(item) -> int:
    return ("all", "condition", "kind").index(item[0].split(":")[0])


def print_figures(figures: dict) -> None:
    print(f"{'digits':<26}{'n':>5}{'accuracy':>10}{'refused':>9}")
    for name, row in sorted(figures["digits"].items(), key=_section):
        print(f"{name:<26}{row['n']:>5}{_percent(row['accuracy']):>10}{row['refused']:>9}")
    print(f"\n{'non-digits':<26}{'n':>5}{'refused':>10}")
    for name, row in sorted(figures["negatives"].items(), key=_section):
        if not name.startswith("condition:"):
            print(f"{name:<26}{row['n']:>5}{_percent(row['refusal_rate']):>10}")
    if figures.get("mnist_as_stored_accuracy") is not None:
        print(
            f"\nthe same MNIST test digits as MNIST stores them (no gallery, no pipeline): "
            f"{_percent(figures['mnist_as_stored_accuracy'])}"
        )
    print(
        f"accuracy {_percent(figures['accuracy'])}, digits wrongly refused "
        f"{figures['digits_wrongly_refused']}, non-digits refused "
        f"{_percent(figures['negatives_refusal_rate'])}"
    )


def mnist_as_stored(model, cases, test) -> float | None:
    """The model on the gallery's MNIST digits as MNIST stores them: what the digits
    themselves cost, apart from the conditions and the pipeline."""
    indices = [int(case.source.split("#")[1]) for case in cases if case.source.startswith("mnist#")]
    if not indices:
        return None
    predicted = model.predict_proba(test.images[indices]).argmax(axis=1)
    return _rate(int((predicted == test.labels[indices]).sum()), len(indices))


def write_predictions(cases, predictions, path: Path) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "label", "condition", "source", "digit", "confidence", "reason"])
        for case, p in zip(cases, predictions, strict=True):
            label = "" if case.label is None else case.label
            digit = "" if p.digit is None else p.digit
            row = [f"{case.name}.png", label, case.condition, case.source, digit]
            writer.writerow([*row, p.confidence, p.reason or p.error or ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("DIGITREC_DATA"))
    parser.add_argument("--out", type=Path, required=True, help="folder for the pictures")
    parser.add_argument("--n", type=int, default=500, help="number of cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="a .digitrec model file to measure on the gallery")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)

    test = load_dataset("mnist", "test", args.data_dir)  # test digits only: never trained on
    start = time.perf_counter()
    cases = make_gallery(test.images, test.labels, args.n, args.seed)
    write_gallery(cases, args.out)
    made = time.perf_counter() - start
    print(f"wrote {len(cases)} cases to {args.out} in {made:.1f} s", file=sys.stderr)
    if not args.model:
        return 0

    from digitrec.artifact import load_model
    from digitrec.predict import predict

    model = load_model(args.model)
    predictions = predict(model, [case.image for case in cases], errors="record")
    write_predictions(cases, predictions, args.out / "predictions.csv")
    figures = score(cases, predictions)
    figures.update(model=str(args.model), n=args.n, seed=args.seed)
    figures["mnist_as_stored_accuracy"] = mnist_as_stored(model, cases, test)
    print_figures(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
