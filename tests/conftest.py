"""Test-wide settings.

Hypothesis: no per-example deadline.  Its default (200 ms) makes a property test fail when the shared,
noisy machines these tests run on stall a process (a `test_quant` example timed out under load while it
passes alone): the brief keeps timing out of tests -- speed targets live in `benchmarks/`.  Tests that set
their own `@settings` keep their other choices; this only changes the default profile.
"""

import sys
from pathlib import Path

from hypothesis import settings

settings.register_profile("reportgen", deadline=None)
settings.load_profile("reportgen")

# timm + torchvision for Gemma-3n's meta-device oracle live in <venv>/oracle-timm (see
# scripts/timm_towers.py: enable_timm); set up before anything imports transformers, which decides once per
# process whether torchvision (and so timm) is available.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from timm_towers import enable_timm  # noqa: E402

enable_timm()
