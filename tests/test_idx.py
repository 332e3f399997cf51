import gzip

import numpy as np
import pytest

from digitrec.errors import DataError
from digitrec.idx import encode_idx, parse_idx, read_idx, write_idx


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_header_is_the_mnist_layout():
    data = encode_idx(np.zeros((5, 28, 28), np.uint8))
    assert data[:4] == bytes([0, 0, 8, 3])
    assert int.from_bytes(data[4:8], "big") == 5 and len(data) == 16 + 5 * 784


def test_gzip_detected_by_content_not_name(tmp_path):
    path = tmp_path / "labels.idx"  # no .gz suffix, but gzip inside
    path.write_bytes(gzip.compress(encode_idx(np.arange(10, dtype=np.uint8))))
    np.testing.assert_array_equal(read_idx(path), np.arange(10))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "too short"),
        (b"\x00\x00\x08", "too short"),
        (b"\x12\x34\x08\x01" + b"\x00" * 8, "not an IDX file"),
        (b"\x00\x00\x07\x01" + b"\x00" * 8, "not an IDX file"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (encode_idx(np.zeros((4, 2, 2), np.uint8))[:-1], "truncated"),
        (encode_idx(np.zeros((4, 2, 2), np.uint8)) + b"x", "trailing bytes"),
    ],
)
def test_malformed_bytes_are_named_errors(data, message):
    with pytest.raises(DataError, match=message):
        parse_idx(data, "file.idx")


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "images.gz"
    noise = np.random.default_rng(0).integers(0, 256, (100, 28, 28)).astype(np.uint8)
    path.write_bytes(gzip.compress(encode_idx(noise))[:2000])
    with pytest.raises(DataError, match=r"images.gz.*truncated.*fetch it again"):
        read_idx(path)


def test_unreadable_path(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "missing.gz")
