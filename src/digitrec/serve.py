"""The web app and REST API behind ``digitrec serve``: one FastAPI app.

The model is loaded once, at start-up. Every answer is made by the functions the CLI
uses (``images.decode_image``, ``predict.iter_predict``, ``read.iter_read``), so the page,
the API and ``digitrec predict`` read a picture the same way. This module only turns HTTP
into arrays and answers back into JSON, and keeps bad requests from hurting the server:
bodies are capped (413) and must arrive in time (408), pictures are capped in pixels
before they are decoded, and at most ``jobs`` pictures per process are worked on at once,
so memory stays bounded. Every refusal is a 4xx with a JSON body ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import io
import json
import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitrec import __version__
from digitrec.errors import ConfigError, DigitrecError
from digitrec.images import decode_image
from digitrec.predict import Prediction, iter_predict
from digitrec.read import Reading, iter_read

WEB = Path(__file__).parent / "web"
CONFIG_ENV = "DIGITREC_SERVE_CONFIG"  # how ``--workers N`` hands the config to each process
Row = Annotated[list[Annotated[int, Field(ge=0, le=255)]], Field(min_length=28, max_length=28)]


@dataclass(frozen=True)
class ServeConfig:
    """Settings of ``digitrec serve``; each has a flag of the same name."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # processes; each loads the model and takes its own share of requests
    model: str | None = None  # a .digitrec file; None: the bundled model
    feedback_dir: str = "digitrec-feedback"  # "that's wrong" examples: DIR/7/<id>.png
    max_upload_bytes: int = 10 * 2**20  # request bodies above this get 413
    max_pixels: int = 25_000_000  # larger pictures are refused from their header
    max_batch: int = 64  # images in one /v1/predict/batch request
    timeout: float = 10.0  # seconds to send a body, and again to answer it
    jobs: int = 2  # pictures worked on at once per process (each may hold ~1 GB)
    threads: int = 1  # onnxruntime threads per process: one worker per core is faster

    def __post_init__(self) -> None:
        if not 0 <= self.port < 2**16:
            raise ConfigError(f"port must be 0-65535, got {self.port}")
        if min(self.workers, self.jobs, self.threads, self.max_batch) < 1:
            raise ConfigError("workers, jobs, threads and max_batch must be at least 1")


# What the API returns. Field descriptions end up in the OpenAPI schema at /docs.


class PredictOut(BaseModel):
    digit: int | None = Field(description="the digit, or null when none can be read")
    confidence: float | None = Field(description="calibrated probability of `digit`'s class")
    probabilities: list[float] | None = Field(description="calibrated probability of 0-9")
    reason: str | None = Field(None, description="why `digit` is null (blank, not a digit...)")
    error: str | None = Field(None, description="batch only: why this image could not be read")
    input: list[list[int]] | None = Field(
        None, description="with include_input: the 28x28 picture the model saw (0-255)"
    )


class ReadDigitOut(BaseModel):
    digit: int | None
    confidence: float
    box: list[int] = Field(description="[x0, y0, x1, y1] in the picture's pixels")
    reason: str | None = None


class ReadOut(BaseModel):
    text: str | None = Field(description='the number, "?" for a refused digit; null if none')
    digits: list[ReadDigitOut]
    reason: str | None = None


class BatchOut(BaseModel):
    predictions: list[PredictOut] = Field(description="one per image, in order")


class FeedbackOut(BaseModel):
    saved: str = Field(description="where the example was saved, inside the feedback folder")
    label: int


class HealthOut(BaseModel):
    status: str
    version: str
    model: str
    classes: list[str]
    max_upload_bytes: int
    max_pixels: int
    max_batch: int


class ErrorOut(BaseModel):
    error: str


# What the API accepts as JSON (multipart uploads are documented beside each route).


class ImageIn(BaseModel):
    """One picture: its file in base64 (PNG, JPEG, ...), or a 28x28 grey array."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(None, description="image file bytes, base64 or a data: URL")
    pixels: list[Row] | None = Field(
        None, min_length=28, max_length=28, description="28x28 grey levels 0-255, any polarity"
    )
    include_input: bool = Field(False, description="also return the 28x28 model input")

    @model_validator(mode="after")
    def _one_picture(self):
        if (self.image is None) == (self.pixels is None):
            raise ValueError('give exactly one of "image" (base64) or "pixels" (28x28)')
        return self


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    images: list[str] = Field(min_length=1, description="image files, base64")
    include_input: bool = False


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(description="image file bytes, base64 or a data: URL")
    label: int = Field(ge=0, le=9, description="the digit it really is")


class RequestTooLarge(DigitrecError):
    """Too big to take (413): a body, or a batch of too many images."""


class BadRequest(DigitrecError):
    """A request the API cannot parse (400), as opposed to content it cannot read (422)."""


class Unsupported(DigitrecError):
    """A body that is neither multipart nor JSON (415)."""


class Overloaded(DigitrecError):
    """No answer within the time limit (503): the picture is too heavy or the queue too long."""


STATUS = {RequestTooLarge: 413, BadRequest: 400, Unsupported: 415, Overloaded: 503}


def _multipart(field: str, many: bool = False) -> dict:
    """The request body of an image route for the OpenAPI schema: a multipart upload or
    JSON. Written out because the route parses the body itself, to take either."""
    file = {"type": "string", "format": "binary"}
    upload = {"type": "array", "items": file} if many else file
    return {"type": "object", "properties": {field: upload}, "required": [field]}


def _body(field: str, json_model: type[BaseModel], many: bool = False, **extra) -> dict:
    form = _multipart(field, many)
    form["properties"].update(extra)
    form["required"] += list(extra)
    content = {
        "multipart/form-data": {"schema": form},
        "application/json": {"schema": json_model.model_json_schema()},
    }
    return {"requestBody": {"required": True, "content": content}}


ERRORS = {status: {"model": ErrorOut} for status in (400, 408, 413, 415, 422, 503)}


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The app for ``config``; the model loads when the app starts (its lifespan), once.

    >>> uvicorn.run(create_app(ServeConfig(model="mine.digitrec")), port=8000)
    """
    config = config or ServeConfig()
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from digitrec.artifact import load_model

        state["model"] = load_model(config.model, runtime="onnx", threads=config.threads)
        state["model_name"] = Path(config.model).name if config.model else "bundled"
        with ThreadPoolExecutor(config.jobs, thread_name_prefix="digitrec") as executor:
            state["executor"] = executor
            yield
            state.clear()

    app = FastAPIOffline(
        title="digitrec",
        version=__version__,
        description="Read handwritten digits and numbers. The page is at `/`.",
        lifespan=lifespan,
        redoc_url=None,  # ReDoc loads web fonts from outside; Swagger UI at /docs is local
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from outside
    )
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes, timeout=config.timeout)
    _add_error_handlers(app)
    app.mount("/assets", StaticFiles(directory=WEB), name="assets")

    async def work(function, *args):
        """Run ``function`` in the worker threads, within the time limit; a job still
        waiting when time is up is dropped, one already running finishes unseen."""
        future = asyncio.get_running_loop().run_in_executor(state["executor"], function, *args)
        try:
            return await asyncio.wait_for(asyncio.shield(future), config.timeout)
        except TimeoutError:
            future.cancel()
            raise Overloaded(
                f"no answer within {config.timeout:g} s; try a smaller picture"
            ) from None

    def decode(data: bytes, name: str = "image") -> np.ndarray:
        return decode_image(data, name, max_pixels=config.max_pixels)

    def predict_one(picture) -> Prediction:
        image = decode(picture) if isinstance(picture, bytes) else picture
        return next(iter_predict(state["model"], [image]))

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(WEB / "index.html")

    @app.get("/health", response_model=HealthOut)
    async def health():
        """Whether the server is up, which model it reads with, and its limits."""
        model = state["model"]
        return HealthOut(
            status="ok",
            version=__version__,
            model=state["model_name"],
            classes=model.class_names,
            max_upload_bytes=config.max_upload_bytes,
            max_pixels=config.max_pixels,
            max_batch=config.max_batch,
        )

    @app.post(
        "/v1/predict",
        response_model=PredictOut,
        responses=ERRORS,
        openapi_extra=_body("image", ImageIn),
    )
    async def predict(
        request: Request,
        include_input: Annotated[bool, Query(description="also return the model input")] = False,
    ):
        """Read the one digit in a picture: a multipart upload in the field `image`, or
        JSON with `image` (base64) or `pixels` (28x28). `digit` is null when the picture
        is blank or not a digit, and `reason` says which."""
        picture, flags = await _one_picture(request)
        prediction = await work(predict_one, picture)
        return _prediction_out(prediction, include_input or flags.get("include_input", False))

    @app.post(
        "/v1/read", response_model=ReadOut, responses=ERRORS, openapi_extra=_body("image", ImageIn)
    )
    async def read(request: Request):
        """Read the number written in a picture: its digits, left to right, with boxes."""
        picture, _ = await _one_picture(request)

        def read_one(picture) -> Reading:
            image = decode(picture) if isinstance(picture, bytes) else picture
            return next(iter_read(state["model"], [image]))

        reading = await work(read_one, picture)
        return ReadOut(
            text=reading.text,
            digits=[ReadDigitOut(**digit.to_dict()) for digit in reading.digits],
            reason=reading.reason,
        )

    @app.post(
        "/v1/predict/batch",
        response_model=BatchOut,
        responses=ERRORS,
        openapi_extra=_body("images", BatchIn, many=True),
    )
    async def predict_batch(
        request: Request,
        include_input: Annotated[bool, Query(description="also return the model inputs")] = False,
    ):
        """Read one digit in each of several pictures (multipart field `images`, repeated,
        or JSON `images`: base64 files). A picture that cannot be read gets its own
        `error`; the others are still answered."""
        if _is_json(request):
            batch = _parse_json(await request.body(), BatchIn)
            files = [_base64(text, f"images[{i}]") for i, text in enumerate(batch.images)]
            include_input = include_input or batch.include_input
        else:
            files = await _uploads(request, "images", config.max_batch)
        if len(files) > config.max_batch:
            raise RequestTooLarge(f"{len(files)} images; at most {config.max_batch} per batch")

        def predict_all(files: list[bytes]) -> list[Prediction]:
            pictures, failed = [], {}
            for index, data in enumerate(files):
                try:
                    pictures.append(decode(data, f"images[{index}]"))
                except DigitrecError as error:
                    failed[index] = Prediction(f"images[{index}]", error=str(error))
            answers = iter(iter_predict(state["model"], pictures))
            return [failed.get(index) or next(answers) for index in range(len(files))]

        predictions = await work(predict_all, files)
        return BatchOut(predictions=[_prediction_out(p, include_input) for p in predictions])

    @app.post(
        "/v1/feedback",
        response_model=FeedbackOut,
        status_code=201,
        responses=ERRORS,
        openapi_extra=_body("image", FeedbackIn, label={"type": "integer"}),
    )
    async def feedback(request: Request):
        """Save a picture the model got wrong, with its right digit, for `digitrec finetune
        --images FEEDBACK_DIR`. The folder is the server's (`--feedback-dir`)."""
        if _is_json(request):
            sent = _parse_json(await request.body(), FeedbackIn)
            data, label = _base64(sent.image, "image"), sent.label
        else:
            form = await _form(request)
            data = await _upload(form, "image")
            label = _label(form.get("label"))

        def save(data: bytes) -> str:
            from digitrec.artifact import write_atomically

            png = io.BytesIO()
            Image.fromarray(decode(data)).save(png, "PNG")  # a checked image, never raw bytes
            name = f"{label}/{uuid.uuid4().hex}.png"
            write_atomically(Path(config.feedback_dir) / name, png.getvalue())
            return name

        return FeedbackOut(saved=await work(save, data), label=label)

    return app


def app_from_environment() -> FastAPI:
    """``create_app`` for each worker process of ``uvicorn --workers N`` (a factory),
    with the config that ``digitrec serve`` put in the environment."""
    fields = json.loads(os.environ.get(CONFIG_ENV, "{}"))
    return create_app(ServeConfig(**fields))


def run(config: ServeConfig) -> None:
    """Serve until Ctrl-C: the app in this process, or ``workers`` processes sharing one
    listening socket."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    sock = _listen(config.host, config.port)
    print(f"digitrec: serving on http://{config.host}:{config.port}/ (Ctrl-C stops)", flush=True)
    if config.workers == 1:
        server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning"))
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server stops
            server.run(sockets=[sock])
        return
    os.environ[CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    factory = "digitrec.serve:app_from_environment"
    options = {"factory": True, "workers": config.workers, "log_level": "warning"}
    Multiprocess(uvicorn.Config(factory, **options), sockets=[sock]).run()


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, made here rather than by uvicorn: uvicorn's own for --workers
    is made without IPPROTO_TCP, so asyncio never sets TCP_NODELAY on its connections and
    every answer waits ~40 ms for the client's delayed ACK."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
    sock.set_inheritable(True)  # for the worker processes
    return sock


# Parsing requests: every problem becomes a DigitrecError, answered as a 4xx.


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


async def _one_picture(request: Request) -> tuple[bytes | np.ndarray, dict]:
    """The picture of a single-image request (file bytes, or an array) and JSON flags."""
    if _is_json(request):
        sent = _parse_json(await request.body(), ImageIn)
        flags = {"include_input": sent.include_input}
        if sent.pixels is not None:
            return np.array(sent.pixels, np.uint8), flags
        return _base64(sent.image, "image"), flags
    return await _upload(await _form(request), "image"), {}


async def _form(request: Request):
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "multipart/form-data":
        raise Unsupported(
            f"send multipart/form-data or application/json, not {kind or 'no content type'}"
        )
    return await request.form(max_files=256, max_fields=16)


async def _upload(form, field: str) -> bytes:
    upload = form.get(field)
    if not isinstance(upload, UploadFile):
        names = ", ".join(sorted(set(form.keys()))) or "none"
        what = "not a file" if upload is not None else "missing"
        raise DigitrecError(f'multipart field "{field}" is {what} (fields sent: {names})')
    return await upload.read()


async def _uploads(request: Request, field: str, limit: int) -> list[bytes]:
    form = await _form(request)
    uploads = form.getlist(field)
    if not uploads:
        await _upload(form, field)  # raises, naming the fields that were sent
    if len(uploads) > limit:
        raise RequestTooLarge(f"{len(uploads)} images; at most {limit} per batch")
    if not all(isinstance(upload, UploadFile) for upload in uploads):
        raise DigitrecError(f'multipart field "{field}" must hold files')
    return [await upload.read() for upload in uploads]


def _parse_json(body: bytes, model: type[BaseModel]):
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        if any(problem["type"] == "json_invalid" for problem in error.errors()):
            raise BadRequest("the body is not valid JSON") from None
        raise RequestValidationError(error.errors()) from None


def _base64(text: str, field: str) -> bytes:
    if text.startswith("data:"):  # a data: URL, as a canvas's toDataURL() makes
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DigitrecError(f"{field}: not valid base64") from None


def _label(value) -> int:
    if not isinstance(value, str) or value.strip() not in tuple("0123456789"):
        raise DigitrecError(f'field "label" must be one digit 0-9, got {value!r}')
    return int(value)


def _prediction_out(prediction: Prediction, include_input: bool) -> PredictOut:
    model_input = prediction.model_input
    return PredictOut(
        digit=prediction.digit,
        confidence=prediction.confidence,
        probabilities=prediction.probabilities,
        reason=prediction.reason,
        error=prediction.error,
        input=model_input.tolist() if include_input and model_input is not None else None,
    )


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answers JSON ``{"error": ...}``: 4xx for what the client can fix,
    500 only for a bug, and none of them stops the server."""

    @app.exception_handler(DigitrecError)
    async def digitrec_error(request: Request, error: DigitrecError):
        status = next((code for kind, code in STATUS.items() if isinstance(error, kind)), 422)
        return JSONResponse({"error": str(error)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        problems = error.errors()
        summary = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'] if part != 'body') or 'body'}: "
            f"{problem['msg']}"
            for problem in problems[:5]
        )
        detail = [{"loc": p["loc"], "msg": p["msg"], "type": p["type"]} for p in problems]
        return JSONResponse({"error": summary, "detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return JSONResponse(
            {"error": str(error.detail)}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception):
        return JSONResponse(
            {"error": f"internal error: {type(error).__name__}: {error}"}, status_code=500
        )


class BodyLimit:
    """Read each request body before the app does: more than ``max_bytes`` gets 413 (from
    Content-Length when it is sent, so nothing is read), a body still arriving after
    ``timeout`` seconds gets 408. The app then reads the body from memory."""

    def __init__(self, app, max_bytes: int, timeout: float):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = f"over the {self.max_bytes / 2**20:g} MiB limit"
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await _send_error(send, 413, f"request body of {int(length)} bytes is {limit}")
            return
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    if size > self.max_bytes:
                        await _send_error(send, 413, f"request body is {limit}")
                        return
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            await _send_error(send, 408, f"request body not received within {self.timeout:g} s")
            return
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _send_error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    # The unread rest of the body would be taken for the next request: close instead.
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
