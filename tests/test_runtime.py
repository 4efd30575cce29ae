"""Process-wide runtime settings: they apply where they can, validate their arguments, and never
raise for the platform."""
import json
import platform
import subprocess
import sys

import pytest

from tinygrad_rnn.runtime import keep_freed_memory, set_blas_threads


def test_applies_on_glibc_and_reports_it():
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(pad_bytes=-1), ValueError, "pad_bytes"),
    (dict(pad_bytes=2**31), ValueError, "pad_bytes"),
    (dict(mmap_threshold_bytes=1.5), TypeError, "mmap_threshold_bytes"),
    (dict(pad_bytes=True), TypeError, "pad_bytes"),
])
def test_rejects_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        keep_freed_memory(**kwargs)


def _blas_threads_after(n: int) -> list:
    """threadpoolctl's view of NumPy's BLAS after set_blas_threads(n), in a fresh process."""
    code = ("import threadpoolctl, json; from tinygrad_rnn.runtime import set_blas_threads; "
            f"ok = set_blas_threads({n}); "
            "print(json.dumps([ok, [i['num_threads'] for i in threadpoolctl.threadpool_info() "
            "if i['user_api'] == 'blas']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_set_blas_threads_changes_numpys_openblas():
    import threadpoolctl  # dev extra: an independent observer of the setting
    uses_openblas = any(i["internal_api"] == "openblas" for i in threadpoolctl.threadpool_info())
    if not uses_openblas:
        assert set_blas_threads(1) is False
        return
    for n in (1, 2):
        ok, counts = _blas_threads_after(n)
        assert ok is True and counts and all(c == n for c in counts)


@pytest.mark.parametrize("value, error", [(0, ValueError), (-2, ValueError), (1.0, TypeError),
                                          (True, TypeError)])
def test_set_blas_threads_rejects_bad_counts(value, error):
    with pytest.raises(error, match="threads"):
        set_blas_threads(value)
