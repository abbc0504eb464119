"""Zstandard decompression without a compiled dependency of ours.

Zed stores each thread as zstd-compressed JSON. Python has zstd in its standard library from
3.14 (`compression.zstd`); before that, the `zstandard` package if it happens to be installed,
else the system's libzstd through ctypes (present on most Linux systems: Zed itself and many
others use it). Where none is found, `available()` says so and the caller reports it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

#: a thread's JSON is never near this; a larger frame is refused rather than allocated
MAX_OUTPUT = 256 << 20
_UNKNOWN = (1 << 64) - 1  # ZSTD_CONTENTSIZE_UNKNOWN
_ERROR = (1 << 64) - 2  # ZSTD_CONTENTSIZE_ERROR

Decoder = Callable[[bytes], bytes]


class ZstdError(ValueError):
    """Not a zstd frame, or one this decoder cannot expand."""


def available() -> bool:
    return _decoder() is not None


def decompress(data: bytes) -> bytes:
    decoder = _decoder()
    if decoder is None:
        raise ZstdError("no zstd decoder (Python 3.14+, the zstandard package or libzstd)")
    try:
        return decoder(data)
    except ZstdError:
        raise
    except Exception as exc:  # each library has its own error type
        raise ZstdError(str(exc) or type(exc).__name__) from exc


@lru_cache(maxsize=1)
def _decoder() -> Decoder | None:
    for name in ("compression.zstd", "zstandard"):
        try:
            module: Any = importlib.import_module(name)
        except ImportError:
            continue
        if name == "zstandard":
            return _bounded(_streamed(module))
        return _bounded(module.decompress)
    return _libzstd()


def _streamed(zstandard: Any) -> Decoder:
    """`zstandard`'s one-shot API refuses frames without a size: its stream reader does not."""

    def run(data: bytes) -> bytes:
        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))

    return run


def _bounded(decode: Decoder) -> Decoder:
    def run(data: bytes) -> bytes:
        out = decode(data)
        if len(out) > MAX_OUTPUT:
            raise ZstdError("the frame expands beyond 256 MiB")
        return bytes(out)

    return run


def _libzstd() -> Decoder | None:
    name = ctypes.util.find_library("zstd")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        size_of = lib.ZSTD_getFrameContentSize
        expand = lib.ZSTD_decompress
        is_error = lib.ZSTD_isError
        error_name = lib.ZSTD_getErrorName
    except (OSError, AttributeError):
        return None
    size_of.restype = ctypes.c_ulonglong
    size_of.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    expand.restype = ctypes.c_size_t
    expand.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    is_error.restype = ctypes.c_uint
    is_error.argtypes = [ctypes.c_size_t]
    error_name.restype = ctypes.c_char_p
    error_name.argtypes = [ctypes.c_size_t]

    def run(data: bytes) -> bytes:
        size = size_of(data, len(data))
        if size == _ERROR:
            raise ZstdError("not a zstd frame")
        # a streamed frame (as Zed's encoder writes) does not say its size: grow until it fits
        capacity = size if size != _UNKNOWN else max(1 << 16, len(data) * 8)
        while True:
            if capacity > MAX_OUTPUT:
                raise ZstdError("the frame expands beyond 256 MiB")
            out = ctypes.create_string_buffer(max(1, capacity))
            n = expand(out, capacity, data, len(data))
            if not is_error(n):
                return out.raw[:n]
            why = (error_name(n) or b"").decode(errors="replace")
            if "too small" not in why or size != _UNKNOWN:
                raise ZstdError(why or "corrupt zstd data")
            capacity *= 4

    return run
