"""The ``digitrec`` command: a thin layer that parses flags and calls the library.

Every failure a user can cause ends in one line on stderr and a non-zero exit: 1 for an
error, 2 for a usage error, 130 for Ctrl-C. Tracebacks appear only with DIGITREC_DEBUG=1.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from pathlib import Path

from digitrec.config import PRESETS
from digitrec.data import DATASETS
from digitrec.errors import DigitrecError

PROGRESS_MIN_IMAGES = 20  # smaller batches finish before a bar would help
DESCRIPTION = (
    "Read handwritten digits from photos, scans and drawings, and train, evaluate and "
    "serve digit classifiers. Start with: digitrec predict IMAGE (one digit), "
    "digitrec read IMAGE (a number), digitrec COMMAND --help."
)


def _model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        "-m",
        type=Path,
        help="a .digitrec model file (default: the model bundled with digitrec)",
    )


def _int8_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--int8",
        action="store_true",
        help="use the model's 8-bit network: 2-3x faster in bulk, probabilities within a few "
        "hundredths (added by `digitrec quantize`)",
    )


def _runtime(args) -> str:
    return "int8" if args.int8 else "auto"


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="folder holding mnist/, fashion-mnist/, cross-digits/ "
        "(default: $DIGITREC_DATA, then the user cache)",
    )


def _config_flags(parser: argparse.ArgumentParser, config: str, **fields: type) -> None:
    """One ``--field-name`` flag per config field, None unless given (keep the default)."""
    for field, kind in fields.items():
        parser.add_argument(
            "--" + field.replace("_", "-"),
            type=kind,
            dest=field,
            metavar=field.split("_")[0].upper(),
            help=f"override {config}.{field}",
        )


def _tta_flag(parser: argparse.ArgumentParser, meaning: str = "") -> None:
    if meaning:  # a setting saved with the model
        parser.add_argument("--tta", action="store_const", const=True, help=meaning)
    else:
        parser.add_argument(
            "--tta",
            action=argparse.BooleanOptionalAction,
            help="read every image in several rotated and rescaled forms and average the "
            "answers (test-time augmentation; default: as the model was saved)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitrec", description=DESCRIPTION)
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
    _config_flags(
        train,
        "TrainConfig",
        epochs=int,
        batch_size=int,
        learning_rate=float,
        seed=int,
        validation_size=int,
        early_stopping=int,
    )
    train.add_argument(
        "--ensemble",
        type=int,
        metavar="N",
        help="train N networks (seeds SEED..SEED+N-1) and save them as one model that "
        "averages them; each is also saved as OUTPUT.member-I.digitrec",
    )
    _tta_flag(train, "the saved model reads every image in several forms")
    train.add_argument(
        "--save-best", action="store_true", help="keep the epoch with the lowest validation loss"
    )
    train.add_argument(
        "--plots", type=Path, metavar="DIR", help="also write training curves to DIR/curves.png"
    )
    train.add_argument("--quiet", "-q", action="store_true", help="no per-epoch progress")
    _data_dir(train)

    evaluate = commands.add_parser("evaluate", help="score a model on a dataset's test split")
    evaluate.add_argument(
        "model_file", nargs="?", type=Path, metavar="MODEL", help="the same as --model"
    )
    _model_option(evaluate)
    evaluate.add_argument("--dataset", default="mnist", choices=DATASETS)
    evaluate.add_argument("--split", default="test", choices=("train", "test"))
    evaluate.add_argument("--json", action="store_true", help="print one line of JSON")
    _tta_flag(evaluate)
    _int8_flag(evaluate)
    evaluate.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write confusion.png, misclassified.png and curves.png to DIR",
    )
    _data_dir(evaluate)

    predict = commands.add_parser("predict", help="read the digit in each image")
    predict.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files, folders of images, quoted glob patterns ('scans/**/*.png'), "
        "or http(s) URLs",
    )
    _model_option(predict)
    predict.add_argument(
        "--format",
        choices=("text", "jsonl", "csv"),
        default="text",
        help="text: 'PATH: DIGIT (CONFIDENCE)'; jsonl: one JSON object per image; "
        "csv: path,digit,confidence,reason,error,p0..p9 (default: text)",
    )
    predict.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="jsonl",
        help="the same as --format jsonl",
    )
    predict.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE",
        help="write the answers to FILE instead of stdout, one flushed line per image",
    )
    predict.add_argument(
        "--progress",
        action="store_true",
        help="always draw the progress bar on stderr (default: only on a terminal, "
        f"for more than {PROGRESS_MIN_IMAGES} images)",
    )
    predict.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar and no 'wrote' notes"
    )
    predict.add_argument(
        "--explain",
        type=Path,
        metavar="DIR",
        help="write DIR/<image>-explain.png: every preprocessing stage, up to the model input",
    )
    predict.add_argument(
        "--plot", type=Path, metavar="PNG", help="write each model input beside its probabilities"
    )
    _tta_flag(predict)
    _int8_flag(predict)

    read = commands.add_parser(
        "read", help="read the number (digits written in a row) in each image"
    )
    read.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files, folders of images, quoted glob patterns, or http(s) URLs",
    )
    _model_option(read)
    read.add_argument("--json", action="store_true", help="one JSON object per line per image")
    _int8_flag(read)

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

    finetune = commands.add_parser(
        "finetune", help="adapt a model to your own handwriting (sub-folders 0-9 of images)"
    )
    finetune.add_argument(
        "--images", type=Path, required=True, metavar="DIR", help="DIR/0/*.png ... DIR/9/*.png"
    )
    finetune.add_argument(
        "--model", "-m", type=Path, help="model to start from (default: the bundled model)"
    )
    finetune.add_argument("--output", "-o", type=Path, required=True, help="model file to write")
    _config_flags(
        finetune, "FinetuneConfig", holdout=float, epochs=int, learning_rate=float, seed=int
    )
    finetune.add_argument("--json", action="store_true", help="print the report as JSON")
    _data_dir(finetune)

    info = commands.add_parser("info", help="print a model file's metadata")
    info.add_argument(
        "model", type=Path, nargs="?", metavar="MODEL", help="default: the bundled model"
    )

    export = commands.add_parser(
        "export",
        help="write a model's network for another runtime",
        description="onnx: the network alone, for onnxruntime anywhere (input float32 "
        "(n, h, w, 1) in [0, 1], MNIST polarity; output softmax). tflite: the same for "
        "TensorFlow Lite / LiteRT (needs the train extra). onnx-int8: the model's "
        "8-bit network (from `digitrec quantize`). digitrec: the model "
        "file again, with an ONNX network added if it was saved without one.",
    )
    export.add_argument(
        "model", type=Path, nargs="?", metavar="MODEL", help="default: the bundled model"
    )
    export.add_argument(
        "--format", choices=("onnx", "onnx-int8", "tflite", "digitrec"), default="onnx"
    )
    export.add_argument("--output", "-o", type=Path, required=True, help="file to write")

    quantize = commands.add_parser(
        "quantize",
        help="add an 8-bit copy of a model's network, for fast bulk reading (--int8)",
        description="Measures the range of every layer on the model's own validation images "
        "(re-drawn from its training set, so the training data must be at hand), writes the "
        "8-bit network into the model file and reports how often it answers as the float "
        "network does on held-out images. Needs the train extra.",
    )
    quantize.add_argument("model", type=Path, metavar="MODEL")
    quantize.add_argument(
        "--output", "-o", type=Path, help="model file to write (default: MODEL, replaced)"
    )
    _data_dir(quantize)

    serve = commands.add_parser(
        "serve", help="start the web page (draw or drop a digit) and the REST API (/docs)"
    )
    _config_flags(
        serve,
        "ServeConfig",
        host=str,
        port=int,
        workers=int,
        feedback_dir=str,
        max_feedback=int,
    )
    _model_option(serve)

    combined = commands.add_parser(
        "ensemble",
        help="combine trained models into one that averages them",
        description="The models must share their training data and validation split "
        "(the same --seed and --validation-size, or `train --ensemble N`): the ensemble is "
        "calibrated on those held-out images, then scored on the test split.",
    )
    combined.add_argument("models", nargs="+", type=Path, metavar="MODEL")
    combined.add_argument("--output", "-o", type=Path, required=True, help="model file to write")
    _tta_flag(combined, "the saved model reads every image in several forms")
    _data_dir(combined)

    commands.add_parser("presets", help="list the presets and their settings")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from digitrec.backend import lean_keras

    lean_keras()
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
            "ensemble",
            "tta",
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
    if "ensemble" in model.metadata:
        alone = [m["metrics"]["test"]["accuracy"] for m in model.metadata["ensemble"]["members"]]
        trained = (
            f"of {len(alone)} networks (alone: {', '.join(f'{a:.2%}' for a in alone)}; "
            f"mean {sum(alone) / len(alone):.2%})"
        )
    else:
        epochs = model.metadata["epochs_completed"]
        trained = f"after {epochs} epoch{'' if epochs == 1 else 's'}"
    print(
        f"{args.preset}: test accuracy {test['accuracy']:.2%} (loss {test['loss']:.4f}, "
        f"{test['n']} {model.config.dataset} test images) {trained} in "
        f"{model.metadata['train_seconds']:.0f} s; saved {output}"
    )
    if args.plots:
        from digitrec.plots import training_curves

        members = model.metadata.get("ensemble", {}).get("members", [])
        curves = (
            [("curves.png", model.metadata["history"], args.preset)]
            if not members
            else [
                (f"curves-member-{i}.png", m["history"], f"{args.preset}, network {i}")
                for i, m in enumerate(members)
            ]
        )
        for name, history, title in curves:
            print(f"wrote {training_curves(history, args.plots / name, title=title)}")
    return 0


def cmd_evaluate(args) -> int:
    from digitrec.artifact import DEFAULT_MODEL, load_model
    from digitrec.evaluate import evaluate

    if args.model and args.model_file:
        raise DigitrecError("give the model once, as MODEL or as --model, not both")
    model = load_model(args.model or args.model_file, _runtime(args))  # neither: bundled
    if args.tta is not None:
        model.tta = args.tta
    model_path = args.model or args.model_file or DEFAULT_MODEL
    result = evaluate(model, args.dataset, args.split, args.data_dir)
    if args.json:
        print(json.dumps({"model": str(model_path), **result.to_dict()}))
    else:
        print(result.report())
    if args.plots:
        from digitrec import plots

        title = f"{model_path.name} on {args.dataset} {args.split}"
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
                    model.metadata["history"], args.plots / "curves.png", model_path.name
                )
            )
        print("wrote " + ", ".join(map(str, written)), file=sys.stderr if args.json else None)
    return 0


def cmd_predict(args) -> int:
    from digitrec.artifact import load_model
    from digitrec.predict import iter_predict, list_sources
    from digitrec.progress import Progress

    if args.output:
        _check_writable(args.output)
    model = load_model(args.model, _runtime(args))  # None: the bundled model
    if args.tta is not None:
        model.tta = args.tta
    if args.explain and model.input_size != (28, 28):
        raise DigitrecError(
            f"--explain shows the 28x28 pipeline; this model takes {model.input_size} images "
            f"and uses the tutorial's grey-invert-resize"
        )
    sources = list_sources(args.images, errors="record")
    show_bar = not args.quiet and (
        args.progress or (len(sources) > PROGRESS_MIN_IMAGES and sys.stderr.isatty())
    )
    failed, shown = False, []
    with (
        _open_answers(args.output) as out,
        Progress(len(sources), "predict", enabled=show_bar) as bar,
    ):
        write = _answer_writer(args.format, out, len(model.class_names))
        out_is_terminal = out.isatty()

        def note(text: str) -> None:  # a line on stderr, above the progress bar
            bar.clear()
            print(text, file=sys.stderr, flush=True)

        for prediction in iter_predict(
            model, sources, errors="record", keep_pictures=bool(args.explain)
        ):
            if prediction.error:
                failed = True
                note(f"digitrec: error: {prediction.error}")
            if out_is_terminal:
                bar.clear()
            write(prediction)
            if args.explain and prediction.picture is not None:
                path = _explain(prediction, args.explain)
                if not args.quiet:
                    note(f"wrote {path}")
            if args.plot and prediction.model_input is not None:
                prediction.picture = None  # keep only the small model input for the plot
                shown.append(prediction)
            bar.update()
    if args.plot:
        from digitrec.plots import prediction_plot

        prediction_plot(
            [p.model_input for p in shown],
            [p.probabilities for p in shown],
            [Path(p.source).name for p in shown],
            model.class_names,
            args.plot,
        )
        if not args.quiet:
            print(f"wrote {args.plot}", file=sys.stderr)
    return 1 if failed else 0


def _check_writable(path: Path) -> None:
    """Refuse an --output that cannot be written before any model or image is read."""
    folder = path.parent
    if os.path.isdir(path):
        raise DigitrecError(f"{path}: is a folder; --output takes a file name")
    if not os.path.isdir(folder):
        raise DigitrecError(f"{path}: cannot write, folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise DigitrecError(f"{path}: cannot write here (permission denied)")


@contextlib.contextmanager
def _open_answers(path: Path | None):
    if path is None:
        yield sys.stdout
        return
    try:
        file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as error:
        raise DigitrecError(f"{path}: cannot write ({error.strerror or error})") from None
    with file:
        yield file


def _answer_writer(output_format: str, out, n_classes: int):
    """A function writing one ``Prediction`` as a line of ``output_format``, flushed, so an
    interrupted batch keeps every answer already made."""
    from digitrec.predict import csv_header

    if output_format == "csv":
        rows = csv.writer(out, lineterminator="\n")
        rows.writerow(csv_header(n_classes))

    def write(prediction) -> None:
        if output_format == "jsonl":
            out.write(json.dumps(prediction.to_dict()) + "\n")
        elif output_format == "csv":
            rows.writerow(prediction.to_row(n_classes))
        elif not prediction.error:  # text: errors go to stderr only
            answer = (
                f"{prediction.digit} ({prediction.confidence:.1%})"
                if prediction.digit is not None
                else f"no digit ({prediction.reason})"
            )
            out.write(f"{prediction.source}: {answer}\n")
        out.flush()

    return write


def _explain(prediction, folder: Path) -> Path:
    from digitrec.pipeline import normalize_stages
    from digitrec.plots import explain_strip

    image = prediction.picture
    answer = prediction.digit if prediction.digit is not None else prediction.reason
    path = folder / f"{Path(prediction.source).stem}-explain.png"
    explain_strip(
        image,
        normalize_stages(image, prediction.ink_dark, prediction.width),
        path,
        f"{prediction.source}: {answer}",
    )
    return path


def cmd_finetune(args) -> int:
    from digitrec.finetune import FinetuneConfig, finetune

    fields = ("holdout", "epochs", "learning_rate", "seed")
    config = FinetuneConfig(**{f: getattr(args, f) for f in fields if getattr(args, f) is not None})
    _, report = finetune(
        args.images,
        args.model,
        config=config,
        output=args.output,
        data_dir=args.data_dir,
        verbose=not args.json,
    )
    for item in report["skipped"]:
        print(f"digitrec: skipped {item['path']}: {item['why']}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
        return 0
    before, after = report["before"], report["after"]

    def pct(value):
        return "n/a" if value is None else f"{value:.2%}"

    print(
        f"your held-out digits ({report['n_holdout']}): {pct(before['user'])} -> "
        f"{pct(after['user'])}\n"
        f"MNIST test: {pct(before['mnist_test'])} -> {pct(after['mnist_test'])}\n"
        f"kept epoch {report['kept_epoch']} of {config.epochs}; saved {args.output}"
    )
    return 0


def cmd_read(args) -> int:
    from digitrec.artifact import load_model
    from digitrec.read import iter_read

    failed = False
    model = load_model(args.model, _runtime(args))  # None: the bundled model
    for reading in iter_read(model, args.images, errors="record"):
        if reading.error:
            failed = True
            print(f"digitrec: error: {reading.error}", file=sys.stderr, flush=True)
        if args.json:
            print(json.dumps(reading.to_dict()), flush=True)
        elif not reading.error:
            print(f"{reading.source}: {reading.summary()}", flush=True)
    return 1 if failed else 0


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


def cmd_export(args) -> int:
    from digitrec.artifact import checked_export, load_model, write_atomically

    if args.format == "onnx":
        model = load_model(args.model)
        # The file's own network was checked against Keras when it was saved.
        network = model.onnx_bytes or checked_export(model.keras_model)
        write_atomically(args.output, network)
    elif args.format == "onnx-int8":
        write_atomically(args.output, load_model(args.model, "int8").int8_bytes)
    elif args.format == "tflite":
        model = load_model(args.model, runtime="keras")
        write_atomically(args.output, checked_export(model.keras_model, "tflite"))
    else:
        load_model(args.model, runtime="keras").save(args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_quantize(args) -> int:
    from digitrec.artifact import add_int8, load_model
    from digitrec.quantize import quantize_model

    output = args.output or args.model
    _check_writable(output)
    int8, report = quantize_model(load_model(args.model, "onnx"), args.data_dir)
    add_int8(args.model, int8, report, output)
    print(
        f"wrote {output}: its 8-bit network gives the float network's answer on "
        f"{report['agreement']:.2%} of {report['images']} held-out images (probabilities "
        f"within {report['max_difference']:.3f}); read with --int8"
    )
    return 0


def cmd_ensemble(args) -> int:
    from digitrec.ensemble import combine_files

    model = combine_files(args.models, args.output, tta=bool(args.tta), data_dir=args.data_dir)
    test = model.metadata["metrics"]["test"]
    print(
        f"ensemble of {len(args.models)}: test accuracy {test['accuracy']:.2%} "
        f"(loss {test['loss']:.4f}, {test['n']} test images); saved {args.output}"
    )
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
        optional = ("momentum", "l2", "label_smoothing", "augment", "tta")
        extra = [f"{key}={settings[key]}" for key in optional if settings[key]]
        extra += [f"schedule={config.schedule}"] if config.schedule != "constant" else []
        print(
            f"{name:15} "
            + " ".join(f"{key}={settings[key]}" for key in shown)
            + (" " + " ".join(extra) if extra else "")
        )
    return 0


def cmd_serve(args) -> int:
    from digitrec.artifact import read_metadata
    from digitrec.serve import ServeConfig, run

    fields = ("host", "port", "workers", "feedback_dir", "max_feedback")
    config = ServeConfig(
        model=str(args.model) if args.model else None,
        **{field: getattr(args, field) for field in fields if getattr(args, field) is not None},
    )
    read_metadata(config.model)  # a missing or damaged model file: one line, before starting
    run(config)
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "read": cmd_read,
    "show": cmd_show,
    "finetune": cmd_finetune,
    "info": cmd_info,
    "export": cmd_export,
    "ensemble": cmd_ensemble,
    "quantize": cmd_quantize,
    "presets": cmd_presets,
    "serve": cmd_serve,
}

if __name__ == "__main__":
    sys.exit(main())
