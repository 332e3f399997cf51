"""Pictures as PNG files: sample grids, training curves, confusion matrices, error
galleries and prediction plots.

Uses matplotlib's object API (``Figure``) rather than ``pyplot``: no global state, no
display needed, safe in a server or a test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def _grid(figure, images, titles, columns: int, title_colors=None):
    rows = max(1, -(-len(images) // columns))
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index], cmap="gray", vmin=0, vmax=255)
            color = title_colors[index] if title_colors else "black"
            axis.set_title(titles[index], fontsize=8, color=color)


def sample_grid(
    images: np.ndarray, labels: np.ndarray, class_names, path, columns: int = 8, title: str = ""
) -> Path:
    """A grid of dataset images, each titled with its label."""
    rows = max(1, -(-len(images) // columns))
    figure = _figure(columns * 1.1, rows * 1.25 + 0.4)
    _grid(figure, images, [class_names[int(y)] for y in labels], columns)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def training_curves(history: dict[str, list[float]], path, title: str = "") -> Path:
    """Loss and accuracy per epoch, training beside validation: overfitting shows as a gap."""
    figure = _figure(10, 4)
    for axis, metric in zip(figure.subplots(1, 2), ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            if key in history:
                epochs = np.arange(1, len(history[key]) + 1)
                axis.plot(epochs, history[key], style, label=key.replace("_", " "))
        axis.set_xlabel("epoch")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def confusion_plot(confusion: np.ndarray, class_names, path, title: str = "") -> Path:
    """The confusion matrix with counts; the diagonal is what the model got right."""
    figure = _figure(7, 6)
    axis = figure.subplots()
    shown = axis.imshow(np.log1p(confusion), cmap="Blues")
    for (row, column), count in np.ndenumerate(confusion):
        if count:
            color = "white" if row == column else "black"
            axis.text(column, row, str(count), ha="center", va="center", fontsize=7, color=color)
    ticks = np.arange(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45 if len(class_names[0]) > 2 else 0)
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    figure.colorbar(shown, ax=axis, label="log(1 + count)")
    axis.set_title(title or "confusion matrix")
    return _save(figure, path)


def misclassified_gallery(
    images, labels, probabilities, class_names, path, limit: int = 40, columns: int = 8
) -> Path:
    """The most confident mistakes first: 'true -> predicted (confidence)'."""
    predicted = probabilities.argmax(axis=1)
    all_wrong = np.flatnonzero(predicted != labels)
    wrong = all_wrong[np.argsort(-probabilities[all_wrong, predicted[all_wrong]])][:limit]
    titles = [
        f"{class_names[labels[i]]}→{class_names[predicted[i]]} {probabilities[i, predicted[i]]:.0%}"
        for i in wrong
    ]
    rows = max(1, -(-len(wrong) // columns))
    figure = _figure(columns * 1.3, rows * 1.4 + 0.5)
    _grid(figure, images[wrong], titles, columns)
    shown = f"the {len(wrong)} most confident shown" if len(wrong) < len(all_wrong) else "all"
    figure.suptitle(
        f"{len(all_wrong)} misclassified of {len(labels)}: {shown}, as true→predicted"
        if len(wrong)
        else f"no mistakes in {len(labels)}"
    )
    return _save(figure, path)


def prediction_plot(model_inputs, probabilities, titles, class_names, path) -> Path:
    """Each image the model saw beside its bar chart of class probabilities."""
    count = max(1, len(model_inputs))
    figure = _figure(7, 2.2 * count)
    axes = figure.subplots(count, 2, squeeze=False, width_ratios=[1, 2])
    for (image_axis, bar_axis), image, row, title in zip(
        axes, model_inputs, probabilities, titles, strict=False
    ):
        image_axis.imshow(image, cmap="gray", vmin=0, vmax=255)
        image_axis.axis("off")
        image_axis.set_title(title, fontsize=8)
        if row is None:
            bar_axis.text(0.5, 0.5, "no digit read", ha="center", va="center")
            bar_axis.axis("off")
            continue
        row = np.asarray(row)
        colors = ["tab:blue"] * len(row)
        colors[int(row.argmax())] = "tab:red"
        bar_axis.bar(np.arange(len(row)), row, color=colors)
        bar_axis.set_xticks(np.arange(len(row)), class_names)
        bar_axis.set_ylim(0, 1)
        bar_axis.set_ylabel("probability")
    return _save(figure, path)


def explain_strip(image: np.ndarray, stages, path, title: str = "") -> Path:
    """What the model sees: the picture, then every stage of ``pipeline.normalize``."""
    narrowed = stages.width < 1  # a digit that filled its frame, read narrower
    panels = [
        ("picture", image, None),
        (f"grey, narrowed to {stages.width:.0%}" if narrowed else "grey", stages.grey, (0, 1)),
        ("ink (polarity, lighting)", stages.ink, (0, 1)),
        ("threshold", stages.mask, (0, 1)),
        ("cleaned", stages.cleaned, (0, 1)),
        ("stroke width", stages.thick, (0, 1)),
        ("model input 28x28", stages.output, (0, 255)),
    ]
    figure = _figure(2.0 * len(panels), 2.6)
    for axis, (name, array, limits) in zip(figure.subplots(1, len(panels)), panels, strict=True):
        if limits is None:
            axis.imshow(array, cmap=None if array.ndim == 3 else "gray")
        else:
            axis.imshow(array, cmap="gray", vmin=limits[0], vmax=limits[1])
        axis.set_title(name, fontsize=8)
        axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=9)
    return _save(figure, path)
