"""Reading images from files, folders, bytes and URLs into arrays, with clear errors.

Decoding is separate from preprocessing: this module turns whatever the user has into
an RGB or grey ``uint8`` array; ``preprocess`` turns that into a model input.
"""

from __future__ import annotations

import glob
import io
import os
import re
import stat
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitrec.errors import ImageError

EXTENSIONS = (
    *(".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"),
    *(".heic", ".heif", ".avif"),  # phones' own formats: an iPhone saves HEIC by default
)
# The brands an ISO media file names right after "ftyp" when it holds a HEIF (HEVC) still
# picture. AVIF ("avif", "avis") is read by Pillow itself.
HEIF_BRANDS = {
    b"heic",
    b"heix",
    b"heim",
    b"heis",
    b"hevc",
    b"hevx",
    b"hevm",
    b"hevs",
    b"mif1",
    b"msf1",
}
MAX_PIXELS = 40_000_000  # larger pictures are refused before they are decoded
MAX_FILE_BYTES = 256 * 2**20  # a bigger "image" file is almost surely not a digit
MAX_DOWNLOAD_BYTES = 20 * 2**20
URL_TIMEOUT = 10.0
# A transparent canvas whose strokes are all lighter than this is flattened onto black.
LIGHT_INK = 128


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def is_pattern(source: str) -> bool:
    """A glob such as ``scans/*.png`` that the shell left alone (quoted, or matching nothing)."""
    return not is_url(source) and any(c in source for c in "*?[") and not os.path.exists(source)


def expand_sources(sources: list[str]) -> list[str]:
    """Files and URLs as given; folders and glob patterns replaced by their images, sorted."""
    return [found for source in sources for found in expand_source(source)]


def expand_source(source: str) -> list[str]:
    """One argument's images. Files and URLs are kept as given, to fail one by one when
    read; a folder or a pattern that names no image at all is an error for that argument.

    >>> expand_source("scans/**/*.png")  # expanded here, so it works on every shell
    ['scans/a.png', 'scans/b/c.png']
    """
    if is_url(source):
        return [source]
    # os.path, unlike Path.is_dir, answers False instead of raising for a name that is
    # too long or in a folder we may not enter: reading the file then says why.
    if os.path.isdir(source):
        found = _images_in(Path(source))
        if not found:
            raise ImageError(f"{source}: folder holds no images ({', '.join(EXTENSIONS)})")
        return found
    if not is_pattern(source):
        return [source]
    matches = glob.glob(os.path.expanduser(source), recursive=True)
    found = set()
    for match in matches:
        if os.path.isdir(match):
            found.update(_images_in(Path(match)))
        elif os.path.isfile(match) and Path(match).suffix.lower() in EXTENSIONS:
            found.add(match)
    if not matches:
        raise ImageError(f"{source}: no file matches this pattern")
    if not found:
        raise ImageError(
            f"{source}: the pattern matches {len(matches)} paths but no images "
            f"({', '.join(EXTENSIONS)})"
        )
    return sorted(found)


def _images_in(folder: Path) -> list[str]:
    # rglob does not follow links to folders, so a link loop cannot make this run forever.
    return sorted(
        str(p) for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and os.path.isfile(p)
    )


def read_source(source: str) -> bytes:
    """The bytes of a file path or an http(s) URL (size-limited, with a timeout).

    Only regular files are opened: a named pipe or a device would block or never end.
    """
    if is_url(source):
        return _download(source)
    limit_mib = MAX_FILE_BYTES // 2**20
    try:
        info = os.stat(source)
        if stat.S_ISDIR(info.st_mode):
            raise ImageError(f"{source}: is a folder, not an image")
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"{source}: not a regular file (a pipe, socket or device)")
        if info.st_size > MAX_FILE_BYTES:
            raise ImageError(f"{source}: {info.st_size} bytes is over the {limit_mib} MiB limit")
        with open(source, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat
    except FileNotFoundError:
        raise ImageError(f"{source}: no such file") from None
    except OSError as error:
        raise ImageError(f"{source}: cannot read ({error.strerror or error})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{source}: larger than the {limit_mib} MiB limit")
    return data


def decode_image(data: bytes, name: str = "<image>", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into ``uint8`` grey ``(h, w)`` or RGB ``(h, w, 3)``.

    EXIF orientation is applied and transparency is flattened onto white, so a canvas
    export with a transparent background reads as ink on paper, not ink on black (onto
    black if every stroke is light, so that white ink does not vanish). Of a
    multi-frame file (animated GIF, multi-page TIFF) the first frame is read. A picture
    of more than ``max_pixels`` is refused from its header, before it is decoded.
    """
    if not data:
        raise ImageError(f"{name}: empty file")
    if is_heif(data):
        _register_heif(name)
    limit = f"limit {max_pixels / 10**6:g} megapixels"
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata it skips (bad EXIF, short tags): the
            # picture is still read, and stderr stays one line per real error.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(f"{name}: {width}x{height} pixels is too large ({limit})")
                image.load()
                image = ImageOps.exif_transpose(image)
                return _to_array(image)
    except ImageError:
        raise
    except UnidentifiedImageError:
        if is_heif(data):  # its header says HEIF, but libheif cannot read what follows
            raise ImageError(f"{name}: damaged or truncated image (HEIF)") from None
        raise ImageError(f"{name}: not a supported image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow refuses the largest pictures itself, before digitrec sees their size.
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(pixels[1]) / 10**6:.0f} megapixels" if pixels else "the picture"
        raise ImageError(f"{name}: {size} is too large ({limit})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"{name}: damaged or truncated image ({error})") from None
    except MemoryError:
        raise ImageError(f"{name}: not enough memory to decode this picture") from None
    except Exception as error:
        # Hostile bytes reach Pillow's parsers here, and fuzzed files can make a decoder
        # fail in ways it does not document (struct.error, IndexError ...): that is still
        # one damaged file, not a reason to stop a batch.
        reason = f"{type(error).__name__}: {error}"
        raise ImageError(f"{name}: damaged or truncated image ({reason})") from None


def is_heif(data: bytes) -> bool:
    """A HEIC/HEIF photo, from its first bytes (an ISO media box "ftyp" and its brand)."""
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def _register_heif(name: str) -> None:
    """Teach Pillow HEIF, only when a HEIF picture comes: the decoder (pi-heif, libheif)
    takes 60 ms to import, a tenth of a cold ``predict``. libheif applies the picture's
    rotation itself and resets its EXIF orientation, so it is not turned twice."""
    try:
        import pi_heif
    except ImportError:
        raise ImageError(
            f"{name}: a HEIC/HEIF photo, and reading those needs pi-heif (pip install pi-heif)"
        ) from None
    pi_heif.register_heif_opener()


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
        light = _light_drawing(np.asarray(rgba.getchannel("A")), np.asarray(rgba.convert("L")))
        paper = (0, 0, 0, 255) if light else (255, 255, 255, 255)
        return np.asarray(
            Image.alpha_composite(Image.new("RGBA", rgba.size, paper), rgba).convert("RGB")
        )
    if image.mode in ("L", "1"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))


def _light_drawing(alpha: np.ndarray, grey: np.ndarray) -> bool:
    """Light strokes on a transparent canvas (white ink from a dark-themed drawing app):
    onto white they would vanish, so they go onto black. Only when the visible pixels
    cover less than half the picture and none is darker than mid-grey: a cut-out photo of
    a sheet (mostly visible, with darker ink on it) still goes onto white."""
    visible = alpha >= 128
    if not visible.any() or visible.mean() >= 0.5:
        return False
    return bool(grey[visible].min() >= LIGHT_INK)


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
