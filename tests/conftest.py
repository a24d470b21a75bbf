"""Test-wide settings.

Hypothesis: no per-example deadline.  Its default (200 ms) makes a property test fail when the shared,
noisy machines these tests run on stall a process (a `test_quant` example timed out under load while it
passes alone): the brief keeps timing out of tests -- speed targets live in `benchmarks/`.  Tests that set
their own `@settings` keep their other choices; this only changes the default profile.
"""

from hypothesis import settings

settings.register_profile("reportgen", deadline=None)
settings.load_profile("reportgen")
