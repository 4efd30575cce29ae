"""Process-wide runtime settings: they apply where they can, validate their arguments, and never
raise for the platform."""
import json
import os
import platform
import subprocess
import sys

import pytest

from tinygrad_rnn.runtime import keep_freed_memory, set_blas_threads


def _in_subprocess(code: str, env_extra: dict | None = None) -> object:
    """Run ``code`` (whose last printed line is one JSON value) in a fresh interpreter: the settings are
    process-wide, so the test process itself is left alone."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])  # the last line: earlier ones are output


def test_applies_on_glibc_and_reports_it():
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    code = "import json; from tinygrad_rnn.runtime import keep_freed_memory; print(json.dumps(keep_freed_memory()))"
    assert _in_subprocess(code) is expected


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(pad_bytes=-1), ValueError, "pad_bytes"),
    (dict(pad_bytes=2**31), ValueError, "pad_bytes"),
    (dict(mmap_threshold_bytes=1.5), TypeError, "mmap_threshold_bytes"),
    (dict(pad_bytes=True), TypeError, "pad_bytes"),
])
def test_rejects_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        keep_freed_memory(**kwargs)


def _numpy_uses_openblas() -> bool:
    import threadpoolctl  # dev extra: an independent observer of the settings
    return any(i["internal_api"] == "openblas" for i in threadpoolctl.threadpool_info())


BLAS_THREADS = ("[i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']")


def _blas_threads_after(n: int) -> list:
    """threadpoolctl's view of NumPy's BLAS after set_blas_threads(n), in a fresh process."""
    code = ("import threadpoolctl, json; from tinygrad_rnn.runtime import set_blas_threads; "
            f"ok = set_blas_threads({n}); print(json.dumps([ok, {BLAS_THREADS}]))")
    return _in_subprocess(code)


def test_set_blas_threads_changes_numpys_openblas():
    if not _numpy_uses_openblas():
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


@pytest.mark.parametrize("env, expected", [({}, 1), ({"OPENBLAS_NUM_THREADS": "2"}, 2)])
def test_tune_for_training_uses_one_blas_thread_unless_the_environment_chooses(env, expected):
    code = ("import numpy, threadpoolctl, json; before = " + BLAS_THREADS + "; "
            "from tinygrad_rnn.runtime import tune_for_training; tune_for_training(); "
            "print(json.dumps([before, " + BLAS_THREADS + "]))")
    before, after = _in_subprocess(code, env)
    if _numpy_uses_openblas():
        assert after == [expected]
    else:  # MKL or Accelerate: no OpenBLAS to set, and nothing else may change
        assert after == before


def test_plain_import_and_in_process_main_change_nothing_process_wide():
    code = ("import numpy, threadpoolctl, json; before = " + BLAS_THREADS + "; import tinygrad_rnn; "
            "from tinygrad_rnn import cli; cli.main(['check', '--cell', 'rnn']); "
            "print(json.dumps([before, " + BLAS_THREADS + "]))")
    before, after = _in_subprocess(code, {"OPENBLAS_NUM_THREADS": "2"})
    assert after == before
    if _numpy_uses_openblas():
        assert before == [2]  # the setting under test was really in force
