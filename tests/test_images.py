import io
import os
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec.errors import ImageError
from digitrec.images import decode_image, expand_source, expand_sources, load_image


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


def test_light_strokes_on_a_transparent_canvas_go_onto_black():
    canvas = Image.new("RGBA", (20, 20), (255, 255, 255, 0))  # white ink, dark-themed app
    canvas.paste((230, 230, 230, 255), (8, 2, 12, 18))
    array = decode_image(encode(canvas, "PNG"))
    assert tuple(array[0, 0]) == (0, 0, 0) and tuple(array[10, 10]) == (230, 230, 230)


@pytest.mark.parametrize(
    "visible, ink",
    [
        ((2, 2, 18, 18), 200),  # a cut-out sheet: mostly visible, with light pencil on it
        ((8, 2, 12, 18), 120),  # grey strokes, darker than mid-grey
    ],
)
def test_other_transparent_pictures_still_go_onto_white(visible, ink):
    canvas = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    canvas.paste((240, 240, 240, 255), visible)
    canvas.paste((ink, ink, ink, 255), (9, 4, 11, 16))
    array = decode_image(encode(canvas, "PNG"))
    assert tuple(array[0, 0]) == (255, 255, 255) and tuple(array[10, 10]) == (ink, ink, ink)


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


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png(width: int, height: int) -> bytes:
    """A complete, valid 1-bit PNG of ``width`` x ``height`` white pixels, a few kB long."""
    deflate = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    body = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", body)
        + chunk(b"IEND", b"")
    )


def huge_gif_header(width: int, height: int) -> bytes:
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00;"
    return screen + frame


@pytest.mark.parametrize(
    "data, name",
    [
        (huge_png(20000, 20000), "huge.png"),  # over Pillow's own bomb limit: it refuses first
        (huge_png(10000, 10000), "big.png"),  # Pillow warns; the warning must not leak out
        (huge_png(7000, 7000), "large.png"),  # under Pillow's limit, over digitrec's
        (huge_gif_header(20000, 20000), "huge.gif"),
    ],
    ids=["png-20000", "png-10000", "png-7000", "gif-20000"],
)
def test_huge_pictures_are_refused_quickly_and_quietly(data, name):
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError, match=rf"^{name}: .* is too large \(limit 40 megapixels\)$"):
            decode_image(data, name)
    assert time.perf_counter() - start < 1.0  # decoding 400 megapixels would take seconds
    assert not caught


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_huge_picture_costs_no_memory(tmp_path):
    """Refused from its header: the process stays far below the 400 MB of the pixels."""
    (tmp_path / "huge.png").write_bytes(huge_png(20000, 20000))
    # VmHWM, the peak resident memory of this process image (unlike ru_maxrss, it does not
    # carry over the parent's peak across fork and exec).
    script = (
        "import re\n"
        "from digitrec.images import load_image\n"
        "try:\n"
        f"    load_image({str(tmp_path / 'huge.png')!r})\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status)[1]) // 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    refusal, peak_mib = result.stdout.strip().splitlines()
    assert refusal.startswith("ImageError") and "too large" in refusal
    assert int(peak_mib) < 150, result.stdout


def multi_frame(fmt: str) -> bytes:
    """Two frames: the digit first, then a blank page that must not be the one read."""
    buffer = io.BytesIO()
    first, blank = digit_picture(), Image.new("RGB", (40, 60), (255, 255, 255))
    first.save(buffer, fmt, save_all=True, append_images=[blank], duration=100, loop=0)
    return buffer.getvalue()


def png16_rgb(grey: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG, which Pillow cannot write itself."""
    rgb16 = np.repeat(grey.astype(">u2")[..., None] * 257, 3, axis=2)
    rows = b"".join(b"\x00" + row.tobytes() for row in rgb16)
    height, width = grey.shape
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: multi_frame("GIF"),
        lambda: multi_frame("TIFF"),
        lambda: multi_frame("PNG"),  # APNG
        lambda: encode(digit_picture("CMYK"), "JPEG"),
        lambda: encode(
            Image.fromarray(np.asarray(digit_picture("L")).astype(np.uint16) * 257), "PNG"
        ),
        lambda: png16_rgb(np.asarray(digit_picture("L"))),
    ],
    ids=["animated-gif", "multi-page-tiff", "apng", "cmyk-jpeg", "png-16bit-grey", "png-16bit-rgb"],
)
def test_unusual_but_valid_files_are_read(make):
    array = decode_image(make())
    assert array.dtype == np.uint8 and array.shape[:2] == (60, 40)
    grey = array if array.ndim == 2 else array.mean(axis=2)
    assert grey[30, 20] < 60 and grey[30, 5] > 200  # the first frame's ink, on light paper


def test_one_pixel_image_is_read():
    assert decode_image(encode(Image.new("L", (1, 1), 0), "PNG")).shape == (1, 1)


def test_damaged_metadata_does_not_print_warnings():
    exif = Image.Exif()
    exif[0x010E] = "a seven, drawn on a napkin."  # ImageDescription: 28 bytes with its NUL
    data = encode(digit_picture(), "JPEG", exif=exif.tobytes())
    for order in (">", "<"):  # the tag now claims a megabyte the file does not hold
        entry = struct.pack(f"{order}HHI", 0x010E, 2, 28)
        data = data.replace(entry, struct.pack(f"{order}HHI", 0x010E, 2, 10**6))
    assert struct.pack(">I", 10**6) in data or struct.pack("<I", 10**6) in data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        array = decode_image(data, "odd.jpg")
    assert array.shape[:2] == (60, 40) and not caught


def valid_png() -> bytes:
    return encode(digit_picture(), "PNG")


def valid_jpeg() -> bytes:
    return encode(digit_picture(), "JPEG")


MALFORMED = {
    "empty.png": (b"", "empty file"),
    "half.png": (valid_png()[: len(valid_png()) // 2], "damaged or truncated"),
    "half.jpg": (valid_jpeg()[: len(valid_jpeg()) // 2], "damaged or truncated"),
    "text.png": (b"Dear diary, today I drew a seven.\n" * 20, "not a supported image"),
    "noise.png": (np.random.default_rng(0).bytes(4096), "not a supported image"),
    "huge.png": (huge_png(20000, 20000), "too large"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_files_are_one_line_errors_naming_the_file(tmp_path, name):
    data, message = MALFORMED[name]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ImageError) as raised:
        load_image(str(tmp_path / name))
    text = str(raised.value)
    assert text.startswith(f"{tmp_path / name}: ") and message in text and "\n" not in text


def test_things_that_are_not_files(tmp_path):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageError, match="folder.png: is a folder, not an image"):
        load_image(str(tmp_path / "folder.png"))
    os.mkfifo(tmp_path / "pipe.png")  # opening it to read would wait for a writer forever
    with pytest.raises(ImageError, match="pipe.png: not a regular file"):
        load_image(str(tmp_path / "pipe.png"))
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    with pytest.raises(ImageError, match="loop.png: cannot read .*symbolic links"):
        load_image(str(tmp_path / "loop.png"))
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(ImageError, match="dangling.png: no such file"):
        load_image(str(tmp_path / "dangling.png"))
    with pytest.raises(ImageError, match="cannot read .*name too long"):
        load_image("x" * 300 + ".png")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path):
    (tmp_path / "secret.png").write_bytes(valid_png())
    (tmp_path / "secret.png").chmod(0)
    with pytest.raises(ImageError, match="secret.png: cannot read .*Permission denied"):
        load_image(str(tmp_path / "secret.png"))


def test_oversized_files_are_not_read_into_memory(tmp_path, monkeypatch):
    monkeypatch.setattr("digitrec.images.MAX_FILE_BYTES", 1000)
    (tmp_path / "big.png").write_bytes(b"\0" * 2000)
    with pytest.raises(ImageError, match="big.png: 2000 bytes is over the 0 MiB limit"):
        load_image(str(tmp_path / "big.png"))


def test_glob_patterns_are_expanded_sorted(tmp_path):
    for name in ("b.png", "a.png", "notes.txt", "sub/c.jpg", "sub/deeper/d.PNG"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(valid_png())
    assert expand_source(f"{tmp_path}/*.png") == [f"{tmp_path}/a.png", f"{tmp_path}/b.png"]
    assert expand_source(f"{tmp_path}/**/*.jpg") == [f"{tmp_path}/sub/c.jpg"]
    assert expand_source(f"{tmp_path}/s*") == [
        f"{tmp_path}/sub/c.jpg",
        f"{tmp_path}/sub/deeper/d.PNG",
    ]
    assert len(expand_source(f"{tmp_path}/**")) == 4
    with pytest.raises(ImageError, match=r"\*.gif: no file matches this pattern"):
        expand_source(f"{tmp_path}/*.gif")
    with pytest.raises(ImageError, match=r"\*.txt: the pattern matches 1 paths but no images"):
        expand_source(f"{tmp_path}/*.txt")
    (tmp_path / "literal[1].png").write_bytes(valid_png())  # an existing name is not a pattern
    assert expand_source(f"{tmp_path}/literal[1].png") == [f"{tmp_path}/literal[1].png"]


def test_folder_with_a_link_loop_is_listed_once(tmp_path):
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "a.png").write_bytes(valid_png())
    (tmp_path / "scans" / "again").symlink_to(tmp_path / "scans")
    (tmp_path / "scans" / "self.png").symlink_to(tmp_path / "scans" / "self.png")
    assert expand_source(str(tmp_path / "scans")) == [str(tmp_path / "scans" / "a.png")]


PHONE_PHOTO = Path(__file__).parent / "data" / "seven-sideways.heic"  # made with pillow-heif


def upright_seven(size: int = 96) -> np.ndarray:
    seven = Path(__file__).parents[1] / "examples" / "seven.png"
    return np.asarray(Image.open(seven).convert("RGB").resize((size, size), Image.LANCZOS))


def test_a_heic_phone_photo_is_read_upright():
    """An iPhone's own format. The file stores the picture sideways, with an EXIF
    orientation saying to turn it: it must be turned once, not twice or never."""
    array = load_image(str(PHONE_PHOTO))
    assert array.shape == (96, 96, 3) and array.dtype == np.uint8
    upright = upright_seven().astype(float)
    assert np.abs(array - upright).mean() < 3  # HEVC is lossy; sideways differs by ~25
    assert np.abs(np.rot90(array) - upright).mean() > 15


def test_avif_is_read_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise when shown
    sideways = Image.fromarray(upright_seven()).transpose(Image.ROTATE_90)
    array = decode_image(encode(sideways, "AVIF", quality=90, exif=exif.tobytes()), "x.avif")
    assert np.abs(array - upright_seven().astype(float)).mean() < 3


def test_damaged_or_huge_heic_is_a_clear_error():
    data = PHONE_PHOTO.read_bytes()
    with pytest.raises(ImageError, match=r"^cut.heic: damaged or truncated image \(HEIF\)$"):
        decode_image(data[:300], "cut.heic")
    at = data.find(b"ispe") + 8  # the picture's size, in its header
    huge = data[:at] + struct.pack(">II", 20000, 20000) + data[at + 8 :]
    with pytest.raises(ImageError, match=r"^huge.heic: .* is too large"):
        decode_image(huge, "huge.heic")


def test_heic_without_its_decoder_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pi_heif", None)  # as if it were not installed
    with pytest.raises(ImageError, match=r"needs pi-heif \(pip install pi-heif\)"):
        load_image(str(PHONE_PHOTO))


def test_heic_files_are_found_in_folders(tmp_path):
    (tmp_path / "IMG_0001.HEIC").write_bytes(PHONE_PHOTO.read_bytes())
    (tmp_path / "notes.txt").write_text("not a picture")
    assert expand_source(str(tmp_path)) == [str(tmp_path / "IMG_0001.HEIC")]


def test_heif_decoder_is_imported_only_for_heif():
    """pi-heif takes ~60 ms to import, so a cold ``predict`` of a PNG never pays for it."""
    code = (
        "import sys; from digitrec.images import load_image; "
        "load_image('examples/seven.png'); print('pi_heif' in sys.modules)"
    )
    root = Path(__file__).parents[1]
    assert (
        subprocess.check_output([sys.executable, "-c", code], cwd=root, text=True).strip()
        == "False"
    )
