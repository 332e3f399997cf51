"""The IDX file format of MNIST: a 4-byte magic, big-endian dimensions, then raw data.

Magic bytes are ``0 0 <dtype code> <ndim>``. Only the ``uint8`` type (0x08) is used by
the digit datasets, but the reader understands every type the format defines so that a
wrong file is reported as "wrong dtype", not as garbage.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from digitrec.errors import DataError

_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {
    dtype.newbyteorder(">") if dtype.itemsize > 1 else dtype: code
    for code, dtype in _DTYPES.items()
}


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (already decompressed) into an array, validating every field."""
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes is too short for an IDX header")
    zero1, zero2, code, ndim = data[0], data[1], data[2], data[3]
    if zero1 != 0 or zero2 != 0 or code not in _DTYPES or not 1 <= ndim <= 8:
        raise DataError(f"{name}: not an IDX file (magic bytes {data[:4].hex()})")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{name}: truncated IDX header ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = _DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(
            f"{name}: IDX file {problem}: header says {shape} ({expected} data bytes), "
            f"found {actual}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (uncompressed)."""
    array = np.asarray(array)
    big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big not in _CODES:
        raise DataError(f"IDX cannot store dtype {array.dtype}")
    if not 1 <= array.ndim <= 8:
        raise DataError(f"IDX stores 1 to 8 dimensions, not {array.ndim}")
    header = bytes([0, 0, _CODES[big], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big).tobytes()


def read_idx_bytes(path: Path) -> bytes:
    """The decompressed bytes of an IDX file, gzip or raw (decided by content, not name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(
            f"{path}: damaged or truncated gzip file ({error}); delete it and fetch it again"
        ) from None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a NumPy array."""
    return parse_idx(read_idx_bytes(path), name=str(path))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX file; gzip-compressed when the name ends in ``.gz``."""
    data = encode_idx(array)
    path = Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
