"""keep_freed_memory: applies on glibc, validates its arguments, never raises for the platform."""
import platform
import sys

import pytest

from tinygrad_rnn.allocator import keep_freed_memory


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
