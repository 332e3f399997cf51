"""The web app and REST API behind ``digitrec serve``: one FastAPI app.

The model is loaded once, at start-up. Every answer is made by the functions the CLI
uses (``images.decode_image``, ``predict.iter_predict``, ``read.iter_read``), so the page,
the API and ``digitrec predict`` read a picture the same way. This module holds the
routes, the server's settings and its start; ``api.py`` turns HTTP into pictures and
refusals into 4xx JSON. Pictures are capped in pixels before they are decoded, and at
most ``jobs`` pictures per process are worked on at once, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
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
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image

from digitrec import __version__
from digitrec.api import (
    ERRORS,
    BatchIn,
    BatchOut,
    BodyLimit,
    FeedbackFull,
    FeedbackIn,
    FeedbackOut,
    HealthOut,
    ImageIn,
    Overloaded,
    PredictOut,
    ReadDigitOut,
    ReadOut,
    RequestTooLarge,
    add_error_handlers,
    digit_label,
    from_base64,
    is_json,
    one_picture,
    parse_json,
    prediction_out,
    read_form,
    request_body,
    upload_bytes,
    upload_list,
)
from digitrec.errors import ConfigError, DigitrecError
from digitrec.images import decode_image
from digitrec.predict import Prediction, iter_predict
from digitrec.read import Reading, iter_read

WEB = Path(__file__).parent / "web"
CONFIG_ENV = "DIGITREC_SERVE_CONFIG"  # how ``--workers N`` hands the config to each process
FEEDBACK_SIDE = 1024  # feedback pictures are saved at most this large; the pipeline uses 384


@dataclass(frozen=True)
class ServeConfig:
    """Settings of ``digitrec serve``; each has a flag of the same name."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # processes; each loads the model and takes its own share of requests
    model: str | None = None  # a .digitrec file; None: the bundled model
    feedback_dir: str = "digitrec-feedback"  # "that's wrong" examples: DIR/7/<id>.png
    max_feedback: int = 10_000  # pictures the feedback folder may hold (about 1 GB at most)
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
        if self.max_feedback < 0:
            raise ConfigError(f"max_feedback must be >= 0, got {self.max_feedback}")


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
    add_error_handlers(app)
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

    def as_image(picture: bytes | np.ndarray) -> np.ndarray:
        """An uploaded file, decoded within the limits; a 28x28 array as it came."""
        return decode(picture) if isinstance(picture, bytes) else picture

    def predict_one(picture) -> Prediction:
        return next(iter_predict(state["model"], [as_image(picture)]))

    def read_one(picture) -> Reading:
        return next(iter_read(state["model"], [as_image(picture)]))

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
        openapi_extra=request_body("image", ImageIn),
    )
    async def predict(
        request: Request,
        include_input: Annotated[bool, Query(description="also return the model input")] = False,
    ):
        """Read the one digit in a picture: a multipart upload in the field `image`, or
        JSON with `image` (base64) or `pixels` (28x28). `digit` is null when the picture
        is blank or not a digit, and `reason` says which."""
        picture, flags = await one_picture(request)
        prediction = await work(predict_one, picture)
        return prediction_out(prediction, include_input or flags.get("include_input", False))

    @app.post(
        "/v1/read",
        response_model=ReadOut,
        responses=ERRORS,
        openapi_extra=request_body("image", ImageIn),
    )
    async def read(request: Request):
        """Read the number written in a picture: its digits, left to right, with boxes."""
        picture, _ = await one_picture(request)
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
        openapi_extra=request_body("images", BatchIn, many=True),
    )
    async def predict_batch(
        request: Request,
        include_input: Annotated[bool, Query(description="also return the model inputs")] = False,
    ):
        """Read one digit in each of several pictures (multipart field `images`, repeated,
        or JSON `images`: base64 files). A picture that cannot be read gets its own
        `error`; the others are still answered."""
        if is_json(request):
            batch = parse_json(await request.body(), BatchIn)
            files = [from_base64(text, f"images[{i}]") for i, text in enumerate(batch.images)]
            include_input = include_input or batch.include_input
        else:
            files = await upload_list(request, "images", config.max_batch)
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
        return BatchOut(predictions=[prediction_out(p, include_input) for p in predictions])

    @app.post(
        "/v1/feedback",
        response_model=FeedbackOut,
        status_code=201,
        responses=ERRORS,
        openapi_extra=request_body("image", FeedbackIn, label={"type": "integer"}),
    )
    async def feedback(request: Request):
        """Save a picture the model got wrong, with its right digit, for `digitrec finetune
        --images FEEDBACK_DIR`. The folder is the server's (`--feedback-dir`)."""
        if is_json(request):
            sent = parse_json(await request.body(), FeedbackIn)
            data, label = from_base64(sent.image, "image"), sent.label
        else:
            form = await read_form(request)
            data = await upload_bytes(form, "image")
            label = digit_label(form.get("label"))

        def save(data: bytes) -> str:
            from digitrec.artifact import write_atomically

            folder = Path(config.feedback_dir)
            if sum(1 for _ in folder.glob("[0-9]/*.png")) >= config.max_feedback:
                raise FeedbackFull(
                    f"the feedback folder {folder} is full ({config.max_feedback} pictures); "
                    "fine-tune on them and empty it, or start the server with a larger "
                    "--max-feedback"
                )
            picture = Image.fromarray(decode(data))  # a checked image, never raw bytes
            picture.thumbnail((FEEDBACK_SIDE, FEEDBACK_SIDE))  # a photo need not fill the disk
            png = io.BytesIO()
            picture.save(png, "PNG")
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
