"""Keep the memory a training step frees, so the next step does not fault it back in.

A training step of an unrolled RNN allocates thousands of activation arrays during the forward
pass and frees them all at the end of backward. glibc's malloc then returns the emptied top of the
heap to the operating system (and unmaps every block above its mmap threshold), so the next
forward pass page-faults the same megabytes in again, zero-filling each page. For the small
matrices of a recurrent net that costs as much as the arithmetic (see the README's Performance
section). PyTorch avoids it with its own caching allocator; NumPy uses malloc directly.

``keep_freed_memory()`` asks glibc (through ``mallopt``) to keep up to ``pad_bytes`` of freed heap
mapped and to serve arrays below ``mmap_threshold_bytes`` from the heap. It changes a setting of the
whole process, so the library never calls it on import: the ``tinygrad-rnn`` command and the
benchmark runner call it, and a script can opt in with one line. The same effect is available
without code through the environment variables ``MALLOC_TOP_PAD_``, ``MALLOC_TRIM_THRESHOLD_`` and
``MALLOC_MMAP_THRESHOLD_``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

DEFAULT_PAD_BYTES = 256 * 2**20
DEFAULT_MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's own ceiling for its dynamic threshold


def keep_freed_memory(pad_bytes: int = DEFAULT_PAD_BYTES,
                      mmap_threshold_bytes: int = DEFAULT_MMAP_THRESHOLD_BYTES) -> bool:
    """Keep up to ``pad_bytes`` of freed heap mapped between steps (glibc only).

    Returns True when the settings were applied, False where they do not apply (not Linux with
    glibc); never raises for that, so callers need no platform checks.
    """
    for name, value in (("pad_bytes", pad_bytes), ("mmap_threshold_bytes", mmap_threshold_bytes)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"keep_freed_memory: {name} must be an int, got {type(value).__name__}")
        if not 0 <= value < 2**31:
            raise ValueError(f"keep_freed_memory: {name} must lie in [0, 2**31), got {value}")
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_TRIM_THRESHOLD, pad_bytes)
    ok &= libc.mallopt(_M_TOP_PAD, pad_bytes)
    ok &= libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold_bytes)
    return bool(ok)


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        version = libc.gnu_get_libc_version  # absent on musl: mallopt's numbers may differ there
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc
