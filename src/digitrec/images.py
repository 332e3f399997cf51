"""Reading images from files, folders, bytes and URLs into arrays, with clear errors.

Decoding is separate from preprocessing: this module turns whatever the user has into
an RGB or grey ``uint8`` array; ``preprocess`` turns that into a model input.
"""

from __future__ import annotations

import io
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitrec.errors import ImageError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_PIXELS = 40_000_000  # larger pictures are refused before they are decoded
MAX_DOWNLOAD_BYTES = 20 * 2**20
URL_TIMEOUT = 10.0


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def expand_sources(sources: list[str]) -> list[str]:
    """Files and URLs as given; folders replaced by the images inside them, sorted."""
    expanded = []
    for source in sources:
        path = Path(source)
        if not is_url(source) and path.is_dir():
            found = sorted(
                str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
            )
            if not found:
                raise ImageError(f"{source}: folder holds no images ({', '.join(EXTENSIONS)})")
            expanded.extend(found)
        else:
            expanded.append(source)
    return expanded


def read_source(source: str) -> bytes:
    """The bytes of a file path or an http(s) URL (size-limited, with a timeout)."""
    if is_url(source):
        return _download(source)
    path = Path(source)
    if not path.exists():
        raise ImageError(f"{source}: no such file")
    if path.is_dir():
        raise ImageError(f"{source}: is a folder, not an image")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImageError(f"{source}: cannot read ({error.strerror or error})") from None


def decode_image(data: bytes, name: str = "<image>") -> np.ndarray:
    """Decode image bytes into ``uint8`` grey ``(h, w)`` or RGB ``(h, w, 3)``.

    EXIF orientation is applied and transparency is flattened onto white, so a canvas
    export with a transparent background reads as ink on paper, not ink on black.
    """
    if not data:
        raise ImageError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"{name}: {width}x{height} pixels is too large "
                        f"(limit {MAX_PIXELS // 10**6} megapixels)"
                    )
                image.load()
                image = ImageOps.exif_transpose(image)
                return _to_array(image)
    except ImageError:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as error:
        reason = (
            "not a supported image"
            if isinstance(error, UnidentifiedImageError)
            else "image too large"
        )
        raise ImageError(f"{name}: {reason}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"{name}: damaged or truncated image ({error})") from None


def load_image(source: str) -> np.ndarray:
    """Read and decode one image file or URL."""
    return decode_image(read_source(source), name=source)


def _to_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = values.min(), values.max()
        scaled = (values - low) / (high - low) * 255 if high > low else np.zeros_like(values)
        return scaled.astype(np.uint8)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if image.mode in ("L", "1"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))


def _download(url: str) -> bytes:
    """Fetch at most ``MAX_DOWNLOAD_BYTES`` within ``URL_TIMEOUT`` seconds in total."""
    deadline = time.monotonic() + URL_TIMEOUT
    request = urllib.request.Request(url, headers={"User-Agent": "digitrec"})
    limit_mib = MAX_DOWNLOAD_BYTES // 2**20
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > MAX_DOWNLOAD_BYTES:
                raise ImageError(f"{url}: {int(length)} bytes is over the {limit_mib} MiB limit")
            chunks, size = [], 0
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise ImageError(f"{url}: larger than the {limit_mib} MiB limit")
                if time.monotonic() > deadline:
                    raise ImageError(f"{url}: download took longer than {URL_TIMEOUT:g} s")
    except ImageError:
        raise
    except urllib.error.HTTPError as error:
        raise ImageError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise ImageError(f"{url}: download failed ({reason})") from None
    return b"".join(chunks)
