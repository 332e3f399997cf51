"""Shared fixtures: tiny synthetic datasets, a loopback HTTP server, small trained models.

Nothing here touches the network. The real MNIST files are found through
``$DIGITREC_DATA`` or ``../shared/datasets`` beside the repository.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from digitrec import data
from digitrec.idx import encode_idx, write_idx

REPO = Path(__file__).resolve().parents[1]
_DATA_FROM_ENV = os.environ.get("DIGITREC_DATA")  # read before the fixtures clear it


def shared_datasets() -> Path | None:
    """The real datasets folder, if this machine has it."""
    for candidate in (_DATA_FROM_ENV, REPO.parent / "shared" / "datasets"):
        if candidate and (Path(candidate) / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file():
            return Path(candidate)
    return None


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """No test reads the user's data folder or cache, or downloads anything by accident."""
    monkeypatch.delenv("DIGITREC_DATA", raising=False)
    monkeypatch.setenv("DIGITREC_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def real_data_dir() -> Path:
    found = shared_datasets()
    if found is None:
        pytest.skip("real datasets not found (set DIGITREC_DATA or put shared/ beside the repo)")
    return found


def synthetic_digits(n: int, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Easy, learnable 'digits': class k is a bright bar at a position set by k, plus noise."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 40, (n, size, size)).astype(np.uint8)
    band = max(1, size // 10)
    for image, label in zip(images, labels, strict=True):
        row = int(label) * size // 10
        image[row : row + band, size // 6 : size - size // 6] = 255
    return images, labels


def write_fake_mnist(
    root: Path, monkeypatch, name: str = "mnist", n_train: int = 600, n_test: int = 200
) -> Path:
    """A data folder holding tiny synthetic IDX files under ``name``'s layout, with the
    registry's checksums patched to match them."""
    spec = data.IDX_DATASETS[name]
    folder = root / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    checksums = {}
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        images, labels = synthetic_digits(n, seed=seed)
        for filename, array in zip(spec.files[split], (images, labels), strict=True):
            write_idx(folder / filename, array)
            checksums[filename] = hashlib.sha256(encode_idx(array)).hexdigest()
    monkeypatch.setitem(data.IDX_DATASETS, name, dataclasses.replace(spec, sha256=checksums))
    return root


@pytest.fixture
def fake_data_dir(tmp_path, monkeypatch) -> Path:
    return write_fake_mnist(tmp_path / "datasets", monkeypatch)


@pytest.fixture
def http_server(tmp_path):
    """Serves ``tmp_path/www`` on loopback; yields (base_url, folder)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def digits_model_path(tmp_path_factory) -> Path:
    """The digits8x8-mlp preset, trained once for the whole session (about 10 s)."""
    from digitrec.train import train

    path = tmp_path_factory.mktemp("models") / "digits8x8.digitrec"
    train("digits8x8-mlp", output=path, verbose=0)
    return path


@pytest.fixture(scope="session")
def digits_model(digits_model_path):
    from digitrec.artifact import load_model

    return load_model(digits_model_path)


def under(image: np.ndarray, *steps, seed: int = 0) -> np.ndarray:
    """``image`` (grey, 0-255) through gallery condition ``steps`` (``gallery.paper_edge``,
    ...), seeded as the gallery seeds them: ``uint8`` RGB."""
    from digitrec import gallery

    rgb = np.repeat(np.asarray(image, np.float64)[..., None] / 255.0, 3, axis=2)
    rng = np.random.default_rng(seed)
    for step in steps:
        rgb = step(rgb, rng)
    return gallery.to_uint8(rgb)


def free_port() -> int:
    """A loopback port nothing listens on now, for a server started in a subprocess."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(client, process, timeout: float) -> None:
    """Poll ``/health`` until the server in ``process`` answers; fail if it exits first or
    takes longer than ``timeout`` seconds."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            client.get("/health")
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
