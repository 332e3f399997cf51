"""Datasets by name, as ``uint8`` images ``(n, h, w)`` and ``uint8`` labels ``(n,)``.

Where files come from, in order:

1. a data folder: the ``data_dir`` argument (``--data-dir``) or ``$DIGITREC_DATA``,
   laid out as ``mnist/``, ``fashion-mnist/``, ``cross-digits/``;
2. the user cache, ``$DIGITREC_CACHE`` or ``~/.cache/digitrec`` (same layout);
3. a download from the official mirrors into the cache (MNIST and Fashion-MNIST only).

Every file is checked against the SHA-256 of its *decompressed* content, the same for
the official ``.gz`` files and for recompressed copies, so a damaged or truncated file
is always an error that names the file and says what to do.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.errors import ConfigError, DataError
from digitrec.idx import parse_idx, read_idx_bytes

DIGITS = tuple(str(d) for d in range(10))
FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class IdxDataset:
    """A dataset stored as IDX files: ``split -> (images file, labels file)``."""

    name: str
    folder: str
    files: dict[str, tuple[str, str]]
    sha256: dict[str, str]  # file name -> SHA-256 of the decompressed bytes
    mirrors: tuple[str, ...] = ()
    class_names: tuple[str, ...] = DIGITS
    description: str = ""
    normalized: bool = True  # digits already fitted to 20x20 and centred in 28x28


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _cross(prefix: str, images_sha: str, labels_sha: str, description: str) -> IdxDataset:
    images, labels = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
    return IdxDataset(
        prefix,
        "cross-digits",
        {"test": (images, labels)},
        {images: images_sha, labels: labels_sha},
        description=description,
        normalized=False,
    )


IDX_DATASETS: dict[str, IdxDataset] = {
    "mnist": IdxDataset(
        "mnist",
        "mnist",
        _MNIST_FILES,
        {
            "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        description="MNIST handwritten digits, 60000 train / 10000 test, 28x28",
    ),
    "fashion-mnist": IdxDataset(
        "fashion-mnist",
        "fashion-mnist",
        _MNIST_FILES,
        {
            "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        ),
        class_names=FASHION,
        description="Zalando Fashion-MNIST clothing, 60000 train / 10000 test, 28x28",
    ),
    "usps": _cross(
        "usps",
        "cbcc88a3293139610ea8d682f585caa69f91d39e304c298bf833696658b1ac98",
        "ae885484383efa7323c692fe77db52a9df8ff88ce833cfacc74f827aa2b5de8e",
        "US Postal Service zip-code digits, 9298 images, 16x16 (evaluation only)",
    ),
    "semeion": _cross(
        "semeion",
        "33e1606d881a5988302fb970da2d0ecbfb2af37a8fdef55037d98f4b589465ef",
        "3a94904a16a7e72ccb75c3ed0983d41617c464d99cc28c918c807a2cb4a17bd6",
        "Semeion handwritten digits, 1593 images, 16x16 binary (evaluation only)",
    ),
    "optdigits": _cross(
        "optdigits",
        "9f0b51f1a791d9be52cc774bf6c243b55aa8e8918298dfeacbea34a1ac26cf09",
        "8aa539b15c13a967311ad48104cce0af7b5e1ff5f55c2104b2e7a30f913670d8",
        "UCI optdigits bitmaps, 4677 images, 32x32 binary (evaluation only)",
    ),
}

# scikit-learn's bundled 8x8 digits, split as in the tutorial: the first 1000 images train.
DIGITS8X8_TRAIN = 1000
DATASETS = (*IDX_DATASETS, "digits8x8")


def class_names(name: str) -> tuple[str, ...]:
    """The label names of a dataset (digits for all but Fashion-MNIST)."""
    _check_name(name)
    return IDX_DATASETS[name].class_names if name in IDX_DATASETS else DIGITS


def is_normalized(name: str) -> bool:
    """True for sets whose digits are already MNIST-normalised (fitted and centred)."""
    _check_name(name)
    return name in IDX_DATASETS and IDX_DATASETS[name].normalized


def splits(name: str) -> tuple[str, ...]:
    _check_name(name)
    return tuple(IDX_DATASETS[name].files) if name in IDX_DATASETS else ("train", "test")


def data_dir_from_env() -> Path | None:
    value = os.environ.get("DIGITREC_DATA")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads go: ``$DIGITREC_CACHE``, else ``$XDG_CACHE_HOME/digitrec``."""
    if os.environ.get("DIGITREC_CACHE"):
        return Path(os.environ["DIGITREC_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "digitrec"


@dataclass(frozen=True)
class Dataset:
    """One split of a dataset, with the checksums of the files it was read from."""

    name: str
    split: str
    images: np.ndarray  # uint8 (n, h, w), ink bright on dark (MNIST polarity)
    labels: np.ndarray  # uint8 (n,)
    sha256: dict[str, str]


def load_dataset(
    name: str, split: str = "train", data_dir: str | Path | None = None, download: bool = True
) -> Dataset:
    """Load one split of a dataset by name.

    >>> train = load_dataset("mnist", "train", data_dir="../shared/datasets")
    >>> train.images.shape, train.images.dtype
    ((60000, 28, 28), dtype('uint8'))
    """
    _check_name(name)
    if split not in splits(name):
        raise ConfigError(
            f"dataset {name!r} has no {split!r} split (it has: {', '.join(splits(name))})"
        )
    if name == "digits8x8":
        return _load_digits8x8(split)
    spec = IDX_DATASETS[name]
    images_file, labels_file = spec.files[split]
    data_dir = Path(data_dir).expanduser() if data_dir is not None else data_dir_from_env()
    images = parse_idx(_fetch(spec, images_file, data_dir, download), images_file)
    labels = parse_idx(_fetch(spec, labels_file, data_dir, download), labels_file)
    if (
        images.dtype != np.uint8
        or images.ndim != 3
        or labels.dtype != np.uint8
        or labels.ndim != 1
        or len(images) != len(labels)
    ):
        raise DataError(
            f"{name}/{split}: expected uint8 images (n, h, w) and uint8 labels "
            f"(n,), got {images.dtype}{images.shape} and "
            f"{labels.dtype}{labels.shape}"
        )
    checksums = {images_file: spec.sha256[images_file], labels_file: spec.sha256[labels_file]}
    return Dataset(name, split, images, labels, checksums)


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


def _load_digits8x8(split: str) -> Dataset:
    from digitrec.backend import require

    bunch = require("sklearn.datasets", "the digits8x8 dataset").load_digits()
    # Values are 0..16 with ink high; scale to 0..255 so every dataset shares one contract.
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)
    labels = bunch.target.astype(np.uint8)
    part = slice(0, DIGITS8X8_TRAIN) if split == "train" else slice(DIGITS8X8_TRAIN, None)
    images, labels = np.ascontiguousarray(images[part]), labels[part]
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    return Dataset("digits8x8", split, images, labels, {f"sklearn-digits-{split}": digest})


def _fetch(spec: IdxDataset, filename: str, data_dir: Path | None, download: bool) -> bytes:
    """The verified, decompressed bytes of one file, looking in each place in turn."""
    places = [d / spec.folder / filename for d in (data_dir, cache_dir()) if d is not None]
    for path in places:
        if path.is_file():
            data = read_idx_bytes(path)
            _verify(data, spec.sha256[filename], path)
            return data
    looked = ", ".join(str(p) for p in places)
    if not spec.mirrors:
        raise DataError(
            f"{spec.name}: {filename} not found (looked in {looked}); this evaluation set "
            f"is not downloadable: put the cross-digits folder in a data folder and pass "
            f"--data-dir or set DIGITREC_DATA"
        )
    if not download:
        raise DataError(
            f"{spec.name}: {filename} not found (looked in {looked}) and downloading is off"
        )
    target = cache_dir() / spec.folder / filename
    return _download(spec, filename, target, looked)


def _verify(data: bytes, expected: str, path: Path) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DataError(
            f"{path}: checksum mismatch (SHA-256 of its content is {actual[:12]}..., "
            f"expected {expected[:12]}...); the file is damaged or not the official one: "
            f"delete it and run again to download a fresh copy"
        )


def _download(spec: IdxDataset, filename: str, target: Path, looked: str) -> bytes:
    """Try each mirror: download to a temporary file, verify, then rename into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in spec.mirrors:
        url = mirror + filename
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{filename}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                _stream(url, out, label=f"{spec.name}/{filename}")
            data = read_idx_bytes(tmp)
            _verify(data, spec.sha256[filename], Path(url))
            os.replace(tmp, target)
            return data
        except (OSError, urllib.error.URLError, DataError) as error:
            failures.append(f"{url}: {getattr(error, 'reason', None) or error}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(
        f"{spec.name}: {filename} not found locally (looked in {looked}) and every mirror "
        f"failed ({'; '.join(failures)}). Offline? Copy the files into a folder laid out as "
        f"<folder>/{spec.folder}/{filename} and pass --data-dir <folder> or set DIGITREC_DATA"
    )


def _stream(url: str, out, label: str, timeout: float = 30.0) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "digitrec"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        while chunk := response.read(1 << 16):
            out.write(chunk)
            done += len(chunk)
            _progress(label, done, total)
        if total and done != total:
            raise DataError(f"{url}: download ended after {done} of {total} bytes")
    print(file=sys.stderr)


def _progress(label: str, done: int, total: int) -> None:
    if total:
        filled = int(30 * done / total)
        bar = "#" * filled + "." * (30 - filled)
        text = f"\rdownloading {label} [{bar}] {done / 2**20:5.1f}/{total / 2**20:.1f} MiB"
    else:
        text = f"\rdownloading {label} {done / 2**20:5.1f} MiB"
    print(text, end="", file=sys.stderr, flush=True)
