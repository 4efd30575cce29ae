import os
import sys

from hypothesis import HealthCheck, settings

# fixture_utils.py sits beside the tests.
sys.path.insert(0, os.path.dirname(__file__))

# Property-based tests (tests/test_properties_*.py) run under a hypothesis profile:
# - "default": few examples from a fixed seed (derandomize), so every run tries the same cases
#   and the whole suite stays fast;
# - "nightly": many random examples; select it with TINYGRAD_RNN_HYPOTHESIS_PROFILE=nightly.
# Tests that pin their own `settings(max_examples=...)` keep them under either profile.
settings.register_profile("default", max_examples=30, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("TINYGRAD_RNN_HYPOTHESIS_PROFILE", "default"))
