"""The ``digitrec`` command: a thin layer that parses flags and calls the library.

Every failure a user can cause ends in one line on stderr and a non-zero exit: 1 for an
error, 2 for a usage error, 130 for Ctrl-C. Tracebacks appear only with DIGITREC_DEBUG=1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from digitrec.config import PRESETS
from digitrec.data import DATASETS
from digitrec.errors import DigitrecError


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="folder holding mnist/, fashion-mnist/, cross-digits/ "
        "(default: $DIGITREC_DATA, then the user cache)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitrec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a preset and save the model")
    train.add_argument(
        "--preset",
        default="cnn30",
        choices=list(PRESETS),
        help="which tutorial model to train (default: cnn30)",
    )
    train.add_argument(
        "--output", "-o", type=Path, help="model file to write (default: PRESET.digitrec)"
    )
    for flag, kind, field in (
        ("--epochs", int, "epochs"),
        ("--batch-size", int, "batch_size"),
        ("--learning-rate", float, "learning_rate"),
        ("--seed", int, "seed"),
        ("--validation-size", int, "validation_size"),
        ("--early-stopping", int, "early_stopping"),
    ):
        train.add_argument(
            flag,
            type=kind,
            dest=field,
            metavar=field.split("_")[0].upper(),
            help=f"override the preset's {field.replace('_', ' ')} (TrainConfig.{field})",
        )
    train.add_argument(
        "--save-best", action="store_true", help="keep the epoch with the lowest validation loss"
    )
    train.add_argument(
        "--plots", type=Path, metavar="DIR", help="also write training curves to DIR/curves.png"
    )
    train.add_argument("--quiet", "-q", action="store_true", help="no per-epoch progress")
    _data_dir(train)

    evaluate = commands.add_parser("evaluate", help="score a model on a dataset's test split")
    evaluate.add_argument("model", type=Path, metavar="MODEL", help="a .digitrec model file")
    evaluate.add_argument("--dataset", default="mnist", choices=DATASETS)
    evaluate.add_argument("--split", default="test", choices=("train", "test"))
    evaluate.add_argument("--json", action="store_true", help="print one line of JSON")
    evaluate.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write confusion.png, misclassified.png and curves.png to DIR",
    )
    _data_dir(evaluate)

    predict = commands.add_parser("predict", help="read the digit in each image")
    predict.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files, folders of images, or http(s) URLs"
    )
    predict.add_argument("--model", "-m", type=Path, required=True, help="a .digitrec model file")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.add_argument(
        "--explain",
        type=Path,
        metavar="DIR",
        help="write DIR/<image>-explain.png: every preprocessing stage, up to the model input",
    )
    predict.add_argument(
        "--plot", type=Path, metavar="PNG", help="write each model input beside its probabilities"
    )

    show = commands.add_parser("show", help="save a grid of sample images from a dataset")
    show.add_argument("dataset", choices=DATASETS)
    show.add_argument(
        "--split",
        choices=("train", "test"),
        help="default: train, or test for the evaluation-only sets",
    )
    show.add_argument("--count", "-n", type=int, default=40)
    show.add_argument("--output", "-o", type=Path, help="PNG to write (default: DATASET.png)")
    _data_dir(show)

    info = commands.add_parser("info", help="print a model file's metadata")
    info.add_argument("model", type=Path, metavar="MODEL")

    commands.add_parser("presets", help="list the presets and their settings")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except DigitrecError as error:
        print(f"digitrec: error: {error}", file=sys.stderr)
        from digitrec.train import TrainingInterrupted

        return 130 if isinstance(error, TrainingInterrupted) else 1
    except KeyboardInterrupt:
        print("digitrec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as error:  # a bug: say so in one line, keep the traceback for debugging
        if os.environ.get("DIGITREC_DEBUG"):
            raise
        print(
            f"digitrec: internal error: {type(error).__name__}: {error} "
            f"(run with DIGITREC_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


def _version() -> str:
    from digitrec import __version__

    return __version__


def cmd_train(args) -> int:
    from digitrec.train import train

    output = args.output or Path(f"{args.preset}.digitrec")
    overrides = {
        field: getattr(args, field)
        for field in (
            "epochs",
            "batch_size",
            "learning_rate",
            "seed",
            "validation_size",
            "early_stopping",
        )
    }
    verbose = 0 if args.quiet else (1 if sys.stdout.isatty() else 2)
    model = train(
        args.preset,
        output=output,
        data_dir=args.data_dir,
        save_best=args.save_best,
        verbose=verbose,
        **overrides,
    )
    test = model.metadata["metrics"]["test"]
    print(
        f"{args.preset}: test accuracy {test['accuracy']:.2%} (loss {test['loss']:.4f}, "
        f"{test['n']} {model.config.dataset} test images) after "
        f"{model.metadata['epochs_completed']} epochs in {model.metadata['train_seconds']:.0f} s"
        f"; saved {output}"
    )
    if args.plots:
        from digitrec.plots import training_curves

        path = training_curves(
            model.metadata["history"], args.plots / "curves.png", title=args.preset
        )
        print(f"wrote {path}")
    return 0


def cmd_evaluate(args) -> int:
    from digitrec.artifact import load_model
    from digitrec.evaluate import evaluate

    model = load_model(args.model)
    result = evaluate(model, args.dataset, args.split, args.data_dir)
    if args.json:
        print(json.dumps({"model": str(args.model), **result.to_dict()}))
    else:
        print(result.report())
    if args.plots:
        from digitrec import plots

        title = f"{args.model.name} on {args.dataset} {args.split}"
        written = [
            plots.confusion_plot(
                result.confusion, result.class_names, args.plots / "confusion.png", title
            ),
            plots.misclassified_gallery(
                result.images,
                result.labels,
                result.probabilities,
                result.class_names,
                args.plots / "misclassified.png",
            ),
        ]
        if model.metadata.get("history"):
            written.append(
                plots.training_curves(
                    model.metadata["history"], args.plots / "curves.png", args.model.name
                )
            )
        print("wrote " + ", ".join(map(str, written)), file=sys.stderr if args.json else None)
    return 0


def cmd_predict(args) -> int:
    from digitrec.artifact import load_model
    from digitrec.predict import predict

    model = load_model(args.model)
    if args.explain and model.input_size != (28, 28):
        raise DigitrecError(
            f"--explain shows the 28x28 pipeline; this model takes {model.input_size} images "
            f"and uses the tutorial's grey-invert-resize"
        )
    predictions = predict(model, args.images, errors="record", keep_pictures=bool(args.explain))
    for prediction in predictions:
        if prediction.error:
            print(f"digitrec: error: {prediction.error}", file=sys.stderr)
        if args.json:
            print(json.dumps(prediction.to_dict()), flush=True)
        elif not prediction.error:
            answer = (
                f"{prediction.digit} ({prediction.confidence:.1%})"
                if prediction.digit is not None
                else f"no digit ({prediction.reason})"
            )
            print(f"{prediction.source}: {answer}", flush=True)
    if args.explain:
        _explain(predictions, args.explain)
    if args.plot:
        from digitrec.plots import prediction_plot

        shown = [p for p in predictions if p.model_input is not None]
        prediction_plot(
            [p.model_input for p in shown],
            [p.probabilities for p in shown],
            [Path(p.source).name for p in shown],
            model.class_names,
            args.plot,
        )
        print(f"wrote {args.plot}", file=sys.stderr)
    return 1 if any(p.error for p in predictions) else 0


def _explain(predictions, folder: Path) -> None:
    from digitrec.pipeline import normalize_stages
    from digitrec.plots import explain_strip

    for prediction in predictions:
        if prediction.picture is None:
            continue
        image = prediction.picture
        answer = prediction.digit if prediction.digit is not None else prediction.reason
        path = folder / f"{Path(prediction.source).stem}-explain.png"
        explain_strip(image, normalize_stages(image), path, f"{prediction.source}: {answer}")
        print(f"wrote {path}", file=sys.stderr)


def cmd_show(args) -> int:
    from digitrec.data import class_names, load_dataset, splits
    from digitrec.plots import sample_grid

    if args.count < 1:
        raise DigitrecError("--count must be at least 1")
    split = args.split or splits(args.dataset)[0]
    data = load_dataset(args.dataset, split, args.data_dir)
    count = min(args.count, len(data.labels))
    output = args.output or Path(f"{args.dataset}.png")
    sample_grid(
        data.images[:count],
        data.labels[:count],
        class_names(args.dataset),
        output,
        title=f"{args.dataset} {split}: first {count} of {len(data.labels)}",
    )
    print(f"wrote {output}")
    return 0


def cmd_info(args) -> int:
    from digitrec.artifact import read_metadata

    metadata = read_metadata(args.model)
    metadata.pop("history", None)
    print(json.dumps(metadata, indent=2))
    return 0


def cmd_presets(args) -> int:
    shown = (
        "model",
        "dataset",
        "optimizer",
        "learning_rate",
        "batch_size",
        "epochs",
        "validation_size",
    )
    for name, config in PRESETS.items():
        settings = config.to_dict()
        extra = [f"{key}={settings[key]}" for key in ("momentum", "l2") if settings[key]]
        print(
            f"{name:15} "
            + " ".join(f"{key}={settings[key]}" for key in shown)
            + (" " + " ".join(extra) if extra else "")
        )
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "show": cmd_show,
    "info": cmd_info,
    "presets": cmd_presets,
}

if __name__ == "__main__":
    sys.exit(main())
