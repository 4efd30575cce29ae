"""Two process-wide settings that decide how fast small recurrent nets train on a CPU.

Both change the whole process, so the library never applies them on import: the ``tinygrad-rnn``
command and the examples apply both with ``tune_for_training()``, the benchmark runner applies
the memory one, and a script can opt in with one line.

**Freed memory.** A training step of an unrolled RNN allocates thousands of activation arrays during the forward
pass and frees them all at the end of backward. glibc's malloc then returns the emptied top of the
heap to the operating system (and unmaps every block above its mmap threshold), so the next
forward pass page-faults the same megabytes in again, zero-filling each page. For the small
matrices of a recurrent net that costs as much as the arithmetic (see the README's Performance
section). PyTorch avoids it with its own caching allocator; NumPy uses malloc directly.

``keep_freed_memory()`` asks glibc (through ``mallopt``) to keep up to ``pad_bytes`` of freed heap
mapped and to serve arrays below ``mmap_threshold_bytes`` from the heap. The same effect is
available without code through the environment variables ``MALLOC_TOP_PAD_``,
``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_MMAP_THRESHOLD_``.

**BLAS threads.** A recurrent step multiplies small matrices (a batch of 32-64 rows); splitting
them over threads gains little, and OpenBLAS threads that wait for a core another process holds
make every product slower: on a 2-core machine with one other busy process, 100 steps of the
default ``tinygrad-rnn train`` took 45 s with two BLAS threads and 2.3 s with one (measured, see
the README's Performance section). ``set_blas_threads(n)`` sets the thread count of the OpenBLAS
that NumPy loaded; the environment variable ``OPENBLAS_NUM_THREADS`` does the same if set before
NumPy is imported.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import sys

__all__ = [
    "tune_for_training", "set_blas_threads", "keep_freed_memory", "DEFAULT_PAD_BYTES",
    "DEFAULT_MMAP_THRESHOLD_BYTES",
]

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
    settings = ((_M_TRIM_THRESHOLD, pad_bytes), (_M_TOP_PAD, pad_bytes),
                (_M_MMAP_THRESHOLD, mmap_threshold_bytes))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)


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


def tune_for_training() -> None:
    """Both settings for a process of our own (the CLI, the examples): freed memory kept mapped,
    and one BLAS thread unless ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` chose a count."""
    keep_freed_memory()
    if not any(k in os.environ for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")):
        set_blas_threads(1)


def set_blas_threads(threads: int) -> bool:
    """Use ``threads`` threads in the OpenBLAS that NumPy loaded (Linux). Returns True when it was
    set, False when no OpenBLAS with a known setter is loaded (e.g. NumPy built on MKL or
    Accelerate; use that library's own variable then)."""
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"set_blas_threads: threads must be an int, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"set_blas_threads: threads must be >= 1, got {threads}")
    import numpy  # noqa: F401  (loads NumPy's BLAS, whose setter is looked up below)
    done = False
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        # Plain OpenBLAS, and the prefixed/suffixed names of the 64-bit-integer builds NumPy's
        # wheels ship (scipy_openblas_..._64_ in NumPy 2, openblas_...64_ in NumPy 1.2x).
        for name in _SETTER_NAMES:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter.argtypes = (ctypes.c_int,)
                setter.restype = None
                setter(threads)
                done = True
                break
    return done


_SETTER_NAMES = tuple(f"{prefix}openblas_set_num_threads{suffix}"
                      for prefix in ("", "scipy_") for suffix in ("", "64_", "_64"))


def _loaded_openblas() -> list[str]:
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return []
    return sorted(set(re.findall(r"(/\S*openblas\S*\.so[\w.]*)", maps)))
