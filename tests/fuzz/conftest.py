"""Hypothesis profiles for the fuzz tests, registered here so they never leak into other tests.

Every test in this folder takes its settings from the profile named ``fuzz``::

    FUZZ = settings.get_profile("fuzz")

    @settings(FUZZ)
    @given(...)
    def test_...

``fuzz`` is ``fuzz-ci`` unless ``FUZZ_PROFILE`` names another one:

* ``fuzz-ci`` (the default, and what CI runs): derandomized, so every run tries the same
  inputs and a failure reproduces; no example database; a bounded number of examples.
* ``fuzz-explore``: random seeds and ten times the examples, for hunting locally
  (``FUZZ_PROFILE=fuzz-explore pytest tests/fuzz``). Failures print a reproduction blob.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

MAX_EXAMPLES = 200
DEADLINE = timedelta(milliseconds=1500)
"""Far above what any decoder needs for the bounded inputs here (a few ms); a quadratic path
still stands out (the old ``csv.Sniffer`` took ~2 s). It is wall-clock time, so it leaves room
for a busy 2-core machine: at load 9 one 7 ms case once took 850 ms."""

settings.register_profile(
    "fuzz-ci",
    derandomize=True,
    database=None,
    max_examples=MAX_EXAMPLES,
    deadline=DEADLINE,
    print_blob=True,
    # The 2-core CI machine is shared; generation speed says nothing about the code under test.
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz-explore",
    parent=settings.get_profile("fuzz-ci"),
    derandomize=False,
    max_examples=MAX_EXAMPLES * 10,
)
settings.register_profile(
    "fuzz", parent=settings.get_profile(os.environ.get("FUZZ_PROFILE", "fuzz-ci"))
)
