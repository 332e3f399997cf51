"""Take the README's screenshot of the web page: a 4 drawn with the mouse, as it is read.

    python examples/make_screenshot.py   # needs Chromium (apt-get install chromium)

Starts `digitrec serve` on a free loopback port, draws in headless Chromium and writes
docs/page.png.
"""

import socket
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

FOUR = [[(0.58, 0.12), (0.22, 0.62), (0.8, 0.62)], [(0.62, 0.35), (0.62, 0.9)]]
OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "page.png"


def main() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "digitrec.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 760, "height": 540})
            for _ in range(100):  # until the server answers
                try:
                    page.goto(f"http://127.0.0.1:{port}/")
                    break
                except Exception:
                    time.sleep(0.2)
            box = page.locator("#canvas").bounding_box()
            for stroke in FOUR:
                points = [
                    (box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke
                ]
                page.mouse.move(*points[0])
                page.mouse.down()
                for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
                    for step in range(1, 11):
                        page.mouse.move(x0 + (x1 - x0) * step / 10, y0 + (y1 - y0) * step / 10)
                page.mouse.up()
            page.wait_for_function(
                "document.getElementById('prediction').dataset.state === 'digit'"
            )
            page.wait_for_timeout(300)
            OUTPUT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT))
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
