"""What the REST API of ``digitrec serve`` accepts and answers, and how it refuses.

Typed request and answer models (pydantic, shown at /docs), the parsing of a multipart
upload or a JSON body into a picture, and the refusals: each problem with a request is a
``DigitrecError`` answered as a 4xx with a JSON body ``{"error": "..."}``, and
``BodyLimit`` caps the size of a body (413) and the time it takes to arrive (408) before
the app reads it. The routes themselves are in ``serve.py``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Annotated

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitrec.errors import DigitrecError
from digitrec.predict import Prediction

# What the API returns. Field descriptions end up in the OpenAPI schema at /docs.


class PredictOut(BaseModel):
    digit: int | None = Field(description="the digit, or null when none can be read")
    confidence: float | None = Field(description="calibrated probability of `digit`'s class")
    probabilities: list[float] | None = Field(description="calibrated probability of 0-9")
    reason: str | None = Field(None, description="why `digit` is null (blank, not a digit...)")
    number: str | None = Field(
        None, description="the digits, when the picture holds a number rather than one digit"
    )
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

Row = Annotated[list[Annotated[int, Field(ge=0, le=255)]], Field(min_length=28, max_length=28)]


class ImageIn(BaseModel):
    """One picture: its file in base64 (PNG, JPEG, ...), or a 28x28 grey array."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(None, description="image file bytes, base64 or a data: URL")
    pixels: list[Row] | None = Field(
        None, min_length=28, max_length=28, description="28x28 grey levels 0-255, any polarity"
    )
    include_input: bool = Field(False, description="also return the 28x28 model input")

    @model_validator(mode="after")
    def _exactly_one(self):
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


class FeedbackFull(DigitrecError):
    """The feedback folder holds as many pictures as the server keeps (507)."""


STATUS = {
    RequestTooLarge: 413,
    BadRequest: 400,
    Unsupported: 415,
    Overloaded: 503,
    FeedbackFull: 507,
}


def _multipart_schema(field: str, many: bool = False) -> dict:
    """The multipart form of an image route, for the OpenAPI schema. Written out because
    the routes parse their bodies themselves, to take multipart or JSON."""
    file = {"type": "string", "format": "binary"}
    upload = {"type": "array", "items": file} if many else file
    return {"type": "object", "properties": {field: upload}, "required": [field]}


def request_body(field: str, json_model: type[BaseModel], many: bool = False, **extra) -> dict:
    """``openapi_extra`` for a route taking a file in ``field`` (and ``extra`` form fields)
    as multipart, or ``json_model`` as JSON."""
    form = _multipart_schema(field, many)
    form["properties"].update(extra)
    form["required"] += list(extra)
    content = {
        "multipart/form-data": {"schema": form},
        "application/json": {"schema": json_model.model_json_schema()},
    }
    return {"requestBody": {"required": True, "content": content}}


ERRORS = {status: {"model": ErrorOut} for status in (400, 408, 413, 415, 422, 503, 507)}


# Parsing requests: every problem becomes a DigitrecError, answered as a 4xx.


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


async def one_picture(request: Request) -> tuple[bytes | np.ndarray, dict]:
    """The picture of a single-image request (file bytes, or an array) and JSON flags."""
    if is_json(request):
        sent = parse_json(await request.body(), ImageIn)
        flags = {"include_input": sent.include_input}
        if sent.pixels is not None:
            return np.array(sent.pixels, np.uint8), flags
        return from_base64(sent.image, "image"), flags
    return await upload_bytes(await read_form(request), "image"), {}


async def read_form(request: Request):
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "multipart/form-data":
        raise Unsupported(
            f"send multipart/form-data or application/json, not {kind or 'no content type'}"
        )
    return await request.form(max_files=256, max_fields=16)


async def upload_bytes(form, field: str) -> bytes:
    upload = form.get(field)
    if not isinstance(upload, UploadFile):
        names = ", ".join(sorted(set(form.keys()))) or "none"
        what = "not a file" if upload is not None else "missing"
        raise DigitrecError(f'multipart field "{field}" is {what} (fields sent: {names})')
    return await upload.read()


async def upload_list(request: Request, field: str, limit: int) -> list[bytes]:
    form = await read_form(request)
    uploads = form.getlist(field)
    if not uploads:
        await upload_bytes(form, field)  # raises, naming the fields that were sent
    if len(uploads) > limit:
        raise RequestTooLarge(f"{len(uploads)} images; at most {limit} per batch")
    if not all(isinstance(upload, UploadFile) for upload in uploads):
        raise DigitrecError(f'multipart field "{field}" must hold files')
    return [await upload.read() for upload in uploads]


def parse_json(body: bytes, model: type[BaseModel]):
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        if any(problem["type"] == "json_invalid" for problem in error.errors()):
            raise BadRequest("the body is not valid JSON") from None
        raise RequestValidationError(error.errors()) from None


def from_base64(text: str, field: str) -> bytes:
    if text.startswith("data:"):  # a data: URL, as a canvas's toDataURL() makes
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DigitrecError(f"{field}: not valid base64") from None


def digit_label(value) -> int:
    if not isinstance(value, str) or value.strip() not in tuple("0123456789"):
        raise DigitrecError(f'field "label" must be one digit 0-9, got {value!r}')
    return int(value)


def prediction_out(prediction: Prediction, include_input: bool) -> PredictOut:
    model_input = prediction.model_input
    return PredictOut(
        digit=prediction.digit,
        confidence=prediction.confidence,
        probabilities=prediction.probabilities,
        reason=prediction.reason,
        number=prediction.number,
        error=prediction.error,
        input=model_input.tolist() if include_input and model_input is not None else None,
    )


def add_error_handlers(app: FastAPI) -> None:
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
        detail = [{"loc": p["loc"], "msg": p["msg"], "type": p["type"]} for p in problems[:20]]
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
