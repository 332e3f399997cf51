"""The REST API: good input gets answers made by the CLI's own functions, and every bad
request gets a 4xx with a JSON error, after which the server still answers."""

import base64
import io
import json
import socket
import threading
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from digitrec.artifact import load_model
from digitrec.finetune import load_labelled_folder
from digitrec.predict import predict
from digitrec.serve import ServeConfig, create_app
from tests.conftest import REPO, free_port, wait_until_serving
from tests.test_images import huge_png

with warnings.catch_warnings():  # Starlette would rather have httpx2; httpx still works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

SEVEN = (REPO / "examples" / "seven.png").read_bytes()
THREE = (REPO / "examples" / "three.png").read_bytes()
NUMBER = (REPO / "examples" / "number-307.png").read_bytes()


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def hash_sign() -> bytes:
    """A '#' drawn with a thick pen: the bundled model refuses it as not a digit."""
    image = Image.new("L", (200, 200), 255)
    from PIL import ImageDraw

    pen = ImageDraw.Draw(image)
    for line in [(70, 30, 60, 170), (130, 30, 120, 170), (30, 76, 170, 76), (30, 124, 170, 124)]:
        pen.line(line, fill=0, width=13)
    return png(np.asarray(image))


@pytest.fixture(scope="module")
def feedback_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("feedback")


@pytest.fixture(scope="module")
def client(feedback_dir):
    with TestClient(create_app(ServeConfig(feedback_dir=str(feedback_dir)))) as client:
        yield client


def upload(client, path: str, data: bytes, field: str = "image", form=None, **params):
    files = {field: ("picture.png", data, "image/png")}
    return client.post(path, files=files, data=form, params=params)


def test_health(client):
    answer = client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and body["model"] == "bundled"
    assert body["classes"] == [str(d) for d in range(10)]
    assert body["max_upload_bytes"] == 10 * 2**20


def test_predict_multipart_gives_the_cli_answer(client):
    answer = upload(client, "/v1/predict", SEVEN, include_input="true")
    assert answer.status_code == 200
    body = answer.json()
    [expected] = predict(load_model(), str(REPO / "examples" / "seven.png"))
    assert body["digit"] == expected.digit == 7
    assert body["confidence"] == expected.confidence
    assert body["probabilities"] == expected.probabilities
    assert np.array_equal(np.array(body["input"], np.uint8), expected.model_input)
    assert upload(client, "/v1/predict", SEVEN).json()["input"] is None  # only when asked


def test_predict_json_base64_data_url_and_pixels(client):
    encoded = base64.b64encode(THREE).decode()
    assert client.post("/v1/predict", json={"image": encoded}).json()["digit"] == 3
    data_url = "data:image/png;base64," + encoded
    body = client.post("/v1/predict", json={"image": data_url, "include_input": True}).json()
    assert body["digit"] == 3 and len(body["input"]) == 28
    # A 28x28 array in MNIST's polarity (white ink on black) is read as a picture too.
    seven = Image.open(io.BytesIO(SEVEN)).convert("L").resize((28, 28), Image.Resampling.BOX)
    pixels = (255 - np.asarray(seven)).tolist()
    assert client.post("/v1/predict", json={"pixels": pixels}).json()["digit"] == 7


def test_a_phone_photo_in_heic_is_read(client):
    photo = (REPO / "tests" / "data" / "seven-sideways.heic").read_bytes()
    files = {"image": ("IMG_0001.HEIC", photo, "image/heic")}
    answer = client.post("/v1/predict", files=files)
    assert answer.status_code == 200 and answer.json()["digit"] == 7


def test_blank_and_refused_pictures_have_no_digit(client):
    blank = client.post("/v1/predict", json={"pixels": [[0] * 28] * 28}).json()
    assert blank["digit"] is None and blank["reason"] == "blank image: no ink found"
    refused = upload(client, "/v1/predict", hash_sign()).json()
    assert refused["digit"] is None and refused["reason"].startswith("not a digit")
    assert len(refused["probabilities"]) == 10


def test_read_a_number(client):
    body = upload(client, "/v1/read", NUMBER).json()
    assert body["text"] == "307"
    assert [d["digit"] for d in body["digits"]] == [3, 0, 7]
    assert all(len(d["box"]) == 4 for d in body["digits"])
    blank = client.post("/v1/read", json={"pixels": [[9] * 28] * 28}).json()
    assert blank["text"] is None and blank["digits"] == [] and "blank" in blank["reason"]
    # /v1/predict, given the number, says it holds one, and which.
    one = upload(client, "/v1/predict", NUMBER).json()
    assert one["digit"] is None and one["number"] == "307" and "3 digits" in one["reason"]


def test_batch_answers_each_image_and_records_bad_ones(client):
    files = [("images", (f"{i}.png", data)) for i, data in enumerate([SEVEN, b"junk", THREE])]
    body = client.post("/v1/predict/batch", files=files).json()
    digits = [p["digit"] for p in body["predictions"]]
    assert digits == [7, None, 3]
    assert body["predictions"][1]["error"] == "images[1]: not a supported image"
    sent = {"images": [base64.b64encode(SEVEN).decode()], "include_input": True}
    [only] = client.post("/v1/predict/batch", json=sent).json()["predictions"]
    assert only["digit"] == 7 and len(only["input"]) == 28


def test_feedback_is_saved_for_finetune(client, feedback_dir):
    answer = client.post(
        "/v1/feedback", files={"image": ("x.png", SEVEN, "image/png")}, data={"label": "1"}
    )
    assert answer.status_code == 201
    saved = answer.json()["saved"]
    assert saved.startswith("1/") and saved.endswith(".png") and ".." not in saved
    sent = {"image": base64.b64encode(THREE).decode(), "label": 3}
    assert client.post("/v1/feedback", json=sent).status_code == 201
    _, labels, sources, skipped = load_labelled_folder(feedback_dir)
    assert sorted(labels.tolist()) == [1, 3] and not skipped
    assert all(str(feedback_dir) in source for source in sources)


def test_a_full_feedback_folder_refuses_more_and_keeps_what_it_has(tmp_path):
    config = ServeConfig(feedback_dir=str(tmp_path), max_feedback=1)
    with TestClient(create_app(config)) as small:
        upload = {"files": {"image": ("x.png", SEVEN, "image/png")}, "data": {"label": "7"}}
        assert small.post("/v1/feedback", **upload).status_code == 201
        full = small.post("/v1/feedback", **upload)
        assert full.status_code == 507 and "is full (1 pictures)" in full.json()["error"]
        assert "--max-feedback" in full.json()["error"]
    assert len(list(tmp_path.glob("7/*.png"))) == 1


def tiny_png_over_the_pixel_limit() -> bytes:
    return huge_png(6000, 5000)  # 30 megapixels in a few bytes: refused from its header


BAD_REQUESTS = {
    "not an image": (upload, "/v1/predict", {"data": b"hello, world"}, 422, "not a supported"),
    "truncated": (upload, "/v1/predict", {"data": SEVEN[:400]}, 422, "truncated"),
    "empty": (upload, "/v1/predict", {"data": b""}, 422, "empty file"),
    "wrong field": (
        upload,
        "/v1/predict",
        {"data": SEVEN, "field": "file"},
        422,
        'field "image" is missing (fields sent: file)',
    ),
    "too many pixels": (
        upload,
        "/v1/predict",
        {"data": tiny_png_over_the_pixel_limit()},
        422,
        "too large (limit 25 megapixels)",
    ),
    "bad json": ("json", "/v1/predict", b'{"image": ', 400, "not valid JSON"),
    "no picture": ("json", "/v1/predict", b"{}", 422, 'exactly one of "image"'),
    "both": ("json", "/v1/predict", b'{"image": "", "pixels": []}', 422, "pixels"),
    "unknown field": ("json", "/v1/predict", b'{"img": "x"}', 422, "img"),
    "bad base64": ("json", "/v1/predict", b'{"image": "not base64!"}', 422, "not valid base64"),
    "short rows": (
        "json",
        "/v1/predict",
        json.dumps({"pixels": [[0] * 27] * 28}),
        422,
        "at least 28 items",
    ),
    "too many rows": (
        "json",
        "/v1/predict",
        json.dumps({"pixels": [[0] * 28] * 29}),
        422,
        "at most 28 items",
    ),
    "out of range": (
        "json",
        "/v1/predict",
        json.dumps({"pixels": [[256] * 28] * 28}),
        422,
        "less than or equal to 255",
    ),
    "not numbers": ("json", "/v1/read", b'{"pixels": "seven"}', 422, "pixels"),
    "empty batch": ("json", "/v1/predict/batch", b'{"images": []}', 422, "at least 1"),
    "label out of range": (
        "json",
        "/v1/feedback",
        b'{"image": "", "label": 10}',
        422,
        "label",
    ),
    "no label": (upload, "/v1/feedback", {"data": SEVEN}, 422, 'field "label" must be one'),
    "label a path": (
        upload,
        "/v1/feedback",
        {"data": SEVEN, "form": {"label": "../7"}},
        422,
        "must be one digit 0-9, got '../7'",
    ),
    "plain text": ("text", "/v1/predict", b"7", 415, "multipart/form-data or application/json"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS), ids=list(BAD_REQUESTS))
def test_bad_requests_get_4xx_json_and_the_server_goes_on(client, case):
    how, path, sent, status, message = BAD_REQUESTS[case]
    if how == "json":
        answer = client.post(path, content=sent, headers={"content-type": "application/json"})
    elif how == "text":
        answer = client.post(path, content=sent, headers={"content-type": "text/plain"})
    else:
        answer = how(client, path, **sent)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert message in answer.json()["error"]
    assert upload(client, "/v1/predict", SEVEN).json()["digit"] == 7


def test_batch_too_large_and_unknown_routes(client):
    files = [("images", (f"{i}.png", SEVEN)) for i in range(65)]
    answer = client.post("/v1/predict/batch", files=files)
    assert answer.status_code == 413 and "at most 64" in answer.json()["error"]
    answer = client.get("/v1/nothing")
    assert answer.status_code == 404 and answer.json() == {"error": "Not Found"}
    answer = client.get("/v1/predict")
    assert answer.status_code == 405 and "error" in answer.json()
    answer = client.post("/v1/predict", params={"include_input": "maybe"}, json={})
    assert answer.status_code == 422 and "include_input" in answer.json()["error"]


def test_oversized_bodies_get_413_before_they_are_read(client):
    big = b"\0" * (10 * 2**20 + 1)
    answer = upload(client, "/v1/predict", big)
    assert answer.status_code == 413 and "over the 10 MiB limit" in answer.json()["error"]

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(11):
            yield b"\0" * 2**20

    answer = client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert client.get("/health").status_code == 200


def test_docs_are_served_without_a_cdn(client):
    page = client.get("/docs").text
    assert "/static-offline-docs/swagger-ui-bundle.js" in page and "cdn" not in page
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/health", "/v1/predict", "/v1/read", "/v1/predict/batch", "/v1/feedback"} <= set(
        schema["paths"]
    )
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert client.get("/").headers["content-type"].startswith("text/html")
    assert "app.js" in client.get("/").text and client.get("/assets/app.js").status_code == 200


@pytest.fixture(scope="module")
def slow_server():
    """A real uvicorn on loopback with a half-second time limit and one worker thread."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(ServeConfig(timeout=0.5, jobs=1))
    server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield sock.getsockname()
    server.should_exit = True
    thread.join(10)


def raw_request(address, head: bytes, body: bytes = b"", wait: float = 5.0) -> bytes:
    with socket.create_connection(address, timeout=wait) as connection:
        connection.sendall(head + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and b'"}' in answer:
                break
        return answer


def test_a_body_that_never_finishes_gets_408(slow_server):
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    start = time.perf_counter()
    answer = raw_request(slow_server, head, b'{"image": "')
    assert answer.startswith(b"HTTP/1.1 408") and b"not received within 0.5 s" in answer
    assert time.perf_counter() - start < 3


def test_a_huge_413_is_answered_without_reading_the_body(slow_server):
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    answer = raw_request(slow_server, head, b"\0" * 1000)
    assert answer.startswith(b"HTTP/1.1 413") and b"1000000000 bytes" in answer


def test_a_picture_too_slow_to_read_gets_503_and_the_server_goes_on(slow_server):
    import httpx

    rng = np.random.default_rng(0)
    # 12 megapixels of colour noise: well over a second of work on this machine.
    noise = rng.integers(0, 256, (600, 800, 3), np.uint8).repeat(5, 0).repeat(5, 1)
    base = "http://{}:{}".format(*slow_server)
    answer = httpx.post(f"{base}/v1/predict", files={"image": ("n.png", png(noise))}, timeout=30)
    assert answer.status_code == 503 and "no answer within 0.5 s" in answer.json()["error"]
    for _ in range(40):  # the one worker thread finishes the heavy picture first
        answer = httpx.post(f"{base}/v1/predict", files={"image": ("7.png", SEVEN)}, timeout=30)
        if answer.status_code == 200:
            break
        time.sleep(0.1)
    assert answer.json()["digit"] == 7


def test_serve_refuses_a_missing_model_and_a_busy_port_in_one_line(tmp_path, capsys):
    from digitrec.cli import main

    assert main(["serve", "--model", str(tmp_path / "none.digitrec")]) == 1
    assert "none.digitrec" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"digitrec: error: cannot listen on 127.0.0.1:{port}")
    assert len(error.splitlines()) == 1


def test_workers_answer_without_the_delayed_ack_wait():
    """With --workers, connections must have TCP_NODELAY: without it every answer of a
    keep-alive connection waits ~40 ms for the client's delayed ACK."""
    import subprocess
    import sys

    import httpx

    port = free_port()
    command = [sys.executable, "-m", "digitrec.cli", "serve", "--port", str(port)]
    process = subprocess.Popen([*command, "--workers", "2"], stdout=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            wait_until_serving(client, process, timeout=30)
            small = Image.open(io.BytesIO(THREE)).resize((64, 64), Image.Resampling.BOX)
            three = png(np.asarray(small))  # as the page sends a drawing: a few ms to read
            times = []
            for _ in range(9):
                start = time.perf_counter()
                assert upload(client, "/v1/predict", three).json()["digit"] == 3
                times.append(time.perf_counter() - start)
        assert sorted(times)[4] < 0.03, times  # about 0.005 s here; 0.045 with the wait
    finally:
        process.send_signal(2)  # SIGINT: uvicorn stops its workers
        process.wait(15)
