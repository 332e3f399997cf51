import numpy as np
from PIL import Image

from digitrec import plots

NAMES = list("0123456789")


def is_png(path) -> bool:
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 100


def test_every_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 28, 28)).astype(np.uint8)
    labels = np.arange(12) % 10
    probabilities = rng.dirichlet(np.ones(10), 12)
    written = [
        plots.sample_grid(images, labels, NAMES, tmp_path / "grid.png", title="t"),
        plots.training_curves(
            {"loss": [1, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]},
            tmp_path / "curves.png",
        ),
        plots.confusion_plot(np.eye(10, dtype=int) * 5 + 1, NAMES, tmp_path / "cm.png"),
        plots.misclassified_gallery(images, labels, probabilities, NAMES, tmp_path / "err.png"),
        plots.prediction_plot(
            images[:2], [probabilities[0], None], ["a", "b"], NAMES, tmp_path / "sub" / "pred.png"
        ),
    ]
    assert all(is_png(path) for path in written)


def test_plots_leave_no_global_figures(tmp_path):
    import matplotlib

    plots.sample_grid(np.zeros((2, 8, 8), np.uint8), [0, 1], NAMES, tmp_path / "g.png")
    if "matplotlib.pyplot" in __import__("sys").modules:
        assert matplotlib.pyplot.get_fignums() == []
