"""The web page, driven in headless Chromium against a real ``digitrec serve``: strokes drawn
with mouse events are read live, and the page asks nothing of any other host.

The server runs as on the light install (no Keras, TensorFlow, scikit-learn or onnx), so
these tests also show that serving never starts TensorFlow.
"""

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import REPO
from tests.test_backend import LIGHT_CLI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SEVEN = [[(0.22, 0.2), (0.78, 0.2), (0.45, 0.88)]]
ONE = [[(0.38, 0.3), (0.55, 0.12), (0.55, 0.9)]]
HASH = [  # '#': the bundled model refuses it as not a digit
    [(0.38, 0.15), (0.33, 0.85)],
    [(0.65, 0.15), (0.6, 0.85)],
    [(0.15, 0.38), (0.85, 0.38)],
    [(0.15, 0.62), (0.85, 0.62)],
]


def _chromium_or_skip() -> str:
    """Chromium's path; without it (or Playwright) the browser tests skip, except in CI."""
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = 'playwright not installed (pip install -e ".[dev]")'
    if missing and os.environ.get("CI"):
        pytest.fail(f"{missing}: .ci/run installs both")
    if missing:
        pytest.skip(missing)
    return CHROMIUM


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``digitrec serve`` on a free loopback port, as on the light install."""
    feedback = tmp_path_factory.mktemp("feedback")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    process = subprocess.Popen(
        [sys.executable, "-c", LIGHT_CLI, "serve", "--port", str(port)]
        + ["--feedback-dir", str(feedback)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/health", timeout=1)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"digitrec serve did not start: {process.communicate()[1]}")
            time.sleep(0.1)
    yield base, feedback
    # Ctrl-C: uvicorn stops, `digitrec serve` returns, and LIGHT_CLI's check that TensorFlow
    # was never imported runs (exit status 1 if it fails). SIGTERM would end it unchecked.
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr


@pytest.fixture(scope="module")
def browser():
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """The page, loaded; every host it asks for is recorded and checked at the end."""
    base, _ = server
    page = browser.new_page(viewport={"width": 820, "height": 640})
    hosts = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.goto(f"{base}/")
    yield page
    page.close()
    assert hosts <= {urlsplit(base).netloc, ""}, f"requests to other hosts: {hosts}"


def draw(page, strokes, steps: int = 8) -> None:
    """Mouse strokes through points given as fractions of the canvas."""
    box = page.locator("#canvas").bounding_box()

    def at(x, y):
        return box["x"] + x * box["width"], box["y"] + y * box["height"]

    for stroke in strokes:
        page.mouse.move(*at(*stroke[0]))
        page.mouse.down()
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:], strict=False):
            for step in range(1, steps + 1):
                t = step / steps
                page.mouse.move(*at(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
        page.mouse.up()


def shown(page, state: str, text: str) -> None:
    """Wait until #prediction is in ``state`` showing ``text``."""
    page.wait_for_function(
        "([state, text]) => { const p = document.getElementById('prediction');"
        " return p.dataset.state === state && p.textContent === text; }",
        arg=[state, text],
        timeout=30_000,
    )


def test_drawn_digits_are_read_live_and_clear_resets(page):
    shown(page, "empty", "draw a digit")
    draw(page, SEVEN)
    shown(page, "digit", "7")
    assert page.locator("#top3 li").count() == 3
    assert page.locator("#top3 li .label").first.text_content() == "7"
    # The 28x28 model input is drawn: white ink on black, so some pixels are bright.
    bright = page.evaluate(
        "() => { const c = document.getElementById('model-input').getContext('2d');"
        " const rgba = c.getImageData(0, 0, 28, 28).data;"
        " return rgba.filter((v, i) => i % 4 === 0 && v > 200).length; }"
    )
    assert 20 < bright < 300
    page.click("#clear")
    shown(page, "empty", "draw a digit")
    assert page.locator("#top3 li").count() == 0
    draw(page, ONE)
    shown(page, "digit", "1")


def test_prediction_updates_while_drawing(page):
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 0.55 * box["width"], box["y"] + 0.1 * box["height"])
    page.mouse.down()
    for step in range(1, 9):  # a downstroke, the button still held
        page.mouse.move(
            box["x"] + 0.55 * box["width"], box["y"] + (0.1 + 0.1 * step) * box["height"]
        )
    page.wait_for_function(
        "() => document.getElementById('prediction').dataset.state !== 'empty'", timeout=30_000
    )
    page.mouse.up()


def test_a_scribble_is_not_a_digit(page):
    draw(page, HASH)
    shown(page, "refused", "not a digit")
    assert page.locator("#reason").text_content().startswith("not a digit (")


def test_a_number_drawn_is_read_as_one(page):
    """Two digits drawn side by side: /v1/predict says it holds a number, and the page
    shows the number, as it does for a photo of one."""

    def placed(strokes, left):  # a digit in one half of the pad
        return [[(left + 0.5 * x, 0.15 + 0.7 * y) for x, y in stroke] for stroke in strokes]

    draw(page, placed(ONE, 0.0) + placed(SEVEN, 0.45))
    shown(page, "number", "17")
    page.click("#clear")
    draw(page, SEVEN)
    shown(page, "digit", "7")


def test_uploaded_photos_and_numbers(page):
    page.set_input_files("#upload", str(REPO / "examples" / "number-307.png"))
    shown(page, "number", "307")
    page.set_input_files("#upload", str(REPO / "examples" / "three.png"))
    shown(page, "digit", "3")
    assert page.locator("#photo").is_visible()


def test_an_iphone_photo_is_read_though_the_browser_cannot_show_it(page):
    page.set_input_files("#upload", str(REPO / "tests" / "data" / "seven-sideways.heic"))
    shown(page, "digit", "7")
    page.wait_for_function("document.getElementById('photo').hidden")  # no broken icon


def drop(page, name: str, data: bytes | int) -> None:
    """Drop a file on the drawing pad, as a drag and drop from the desktop does; ``data``
    is its content, or a size for a file of zeros."""
    page.evaluate(
        """([name, encoded, size]) => {
            const bytes = encoded === null
                ? new Uint8Array(size) : Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/png" }));
            const pad = document.getElementById("pad");
            pad.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true }));
            pad.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
        }""",
        [name, None, data] if isinstance(data, int) else [name, base64.b64encode(data).decode(), 0],
    )


def test_dropped_photos_and_the_size_limit(page):
    drop(page, "seven.png", (REPO / "examples" / "seven.png").read_bytes())
    shown(page, "digit", "7")
    drop(page, "307.png", (REPO / "examples" / "number-307.png").read_bytes())
    shown(page, "number", "307")
    drop(page, "huge.png", 10 * 2**20 + 1)  # refused before it is sent
    shown(page, "error", "error")
    assert "the limit is 10.0 MiB" in page.locator("#reason").text_content()


def test_thats_wrong_saves_the_drawing_for_finetune(page, server):
    _, feedback = server
    draw(page, SEVEN)
    shown(page, "digit", "7")
    page.click("#fix-1")
    page.wait_for_function(
        "() => document.getElementById('feedback-status').textContent.startsWith('saved')",
        timeout=30_000,
    )
    [saved] = (feedback / "1").glob("*.png")
    from digitrec.finetune import load_labelled_folder

    _, labels, _, skipped = load_labelled_folder(feedback)
    assert labels.tolist() == [1] and not skipped and saved.stat().st_size > 0


def test_api_docs_load_without_other_hosts(page, server):
    base, _ = server
    page.goto(f"{base}/docs")
    paths = page.locator(".opblock-summary-path")
    paths.first.wait_for(timeout=30_000)
    assert "/v1/predict/batch" in paths.all_text_contents()
