import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from digitrec.errors import ImageError
from digitrec.images import decode_image, expand_sources, load_image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def digit_picture(mode="RGB") -> Image.Image:
    image = Image.new("RGB", (40, 60), (250, 250, 250))
    image.paste((10, 10, 10), (18, 10, 24, 50))
    return image.convert(mode)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"])
def test_common_formats_decode(fmt):
    array = decode_image(encode(digit_picture(), fmt), f"x.{fmt.lower()}")
    assert array.dtype == np.uint8 and array.shape[:2] == (60, 40)
    assert array.min() < 60 and array.max() > 200


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "LA", "I;16"])
def test_modes_decode(mode):
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    image = (
        digit_picture("L").convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.asarray(digit_picture("L")).astype(np.uint16) * 257)
    )
    array = decode_image(encode(image, fmt))
    assert array.dtype == np.uint8 and array.shape[:2] == (60, 40)
    assert array.max() - array.min() > 150


def test_transparent_canvas_becomes_ink_on_white_paper():
    canvas = Image.new("RGBA", (20, 20), (0, 0, 0, 0))  # transparent black, as a canvas exports
    canvas.paste((0, 0, 0, 255), (8, 2, 12, 18))
    array = decode_image(encode(canvas, "PNG"))
    assert tuple(array[0, 0]) == (255, 255, 255) and tuple(array[10, 10]) == (0, 0, 0)


def test_exif_orientation_is_applied():
    image = Image.new("L", (30, 10), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    array = decode_image(encode(image, "JPEG", exif=exif.tobytes()))
    assert array.shape == (30, 10)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty file"),
        (b"hello, this is not a picture", "not a supported image"),
        (encode(digit_picture(), "PNG")[:60], "damaged or truncated"),
    ],
)
def test_bad_bytes_are_clear_errors(data, message):
    with pytest.raises(ImageError, match=message):
        decode_image(data, "bad.png")


def test_huge_dimensions_are_refused_before_decoding():
    # A valid PNG header claiming 20000x20000 pixels, with almost no data behind it.
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)

    def chunk_bytes(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk_bytes(b"IHDR", header)
        + chunk_bytes(b"IDAT", zlib.compress(b"\x00" * 100))
        + chunk_bytes(b"IEND", b"")
    )
    with pytest.raises(ImageError, match="too large"):
        decode_image(png, "huge.png")


def test_files_folders_and_urls(tmp_path, http_server):
    base_url, www = http_server
    (www / "seven.png").write_bytes(encode(digit_picture(), "PNG"))
    folder = tmp_path / "digits"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.jpg").write_bytes(encode(digit_picture(), "JPEG"))
    (folder / "sub" / "a.png").write_bytes(encode(digit_picture(), "PNG"))
    (folder / "notes.txt").write_text("not an image")
    assert expand_sources([str(folder)]) == [str(folder / "b.jpg"), str(folder / "sub/a.png")]
    assert load_image(base_url + "seven.png").shape == (60, 40, 3)
    with pytest.raises(ImageError, match="HTTP 404"):
        load_image(base_url + "missing.png")
    with pytest.raises(ImageError, match="no such file"):
        load_image(str(tmp_path / "nope.png"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="holds no images"):
        expand_sources([str(tmp_path / "empty")])


def test_url_size_limit(http_server, monkeypatch):
    base_url, www = http_server
    (www / "big.png").write_bytes(b"x" * 5000)
    monkeypatch.setattr("digitrec.images.MAX_DOWNLOAD_BYTES", 1000)
    with pytest.raises(ImageError, match="limit"):
        load_image(base_url + "big.png")


def test_unreachable_url_fails_fast():
    with pytest.raises(ImageError, match="download failed"):
        load_image("http://127.0.0.1:9/digit.png")  # the discard port: connection refused
