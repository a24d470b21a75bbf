"""The published bound on the Mamba-mixer profile activation the estimator does not price
(scripts/mamba_profile_transient.py, docs/accuracy.md "Mamba families: no activation term")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import mamba_profile_transient as M  # noqa: E402


def test_nemotron_nano_row_by_hand():
    rows = {(r[0], r[1]): r for r in M.rows(8192)}
    name, tp, widest, mlp, forward, missing = rows[("Nemotron-3-Nano-30B-A3B (bundled)", 1)]
    # Mamba-2: I = 64 heads x 64, 8 groups x 128 state, 64 heads -> 4I + 4GN + H
    assert widest == 4 * 4096 + 4 * 8 * 128 + 64
    # widest MLP: the non-gated shared expert's up_proj (3712 columns) x ALPHA_MLP
    assert mlp == pytest.approx(M.oh.ALPHA_MLP * 3712)
    assert missing == pytest.approx(8192 * 2 * (widest - mlp) / 2**30)
    # TP 2 halves it (8 groups split, no padding)
    assert rows[("Nemotron-3-Nano-30B-A3B (bundled)", 2)][5] == pytest.approx(missing / 2)


def test_bound_is_small_next_to_the_forward_term():
    for name, tp, widest, mlp, forward, missing in M.rows(8192):
        assert missing < 0.5, name          # GiB at 8192 batched tokens, bf16
        assert widest > 0, name             # every family has a priced mixer geometry


def test_attention_free_mixer_width_is_priced():
    """mamba / mamba2 have no MLP: their mixer width is the priced forward term, nothing left over."""
    rows = {(r[0], r[1]): r for r in M.rows(8192)}
    name, tp, widest, mlp, forward, missing = rows[("mamba2 defaults", 1)]
    assert widest == 4 * 8192 + 4 * 8 * 128 + 128 and mlp == 0 and missing == 0
    assert forward == pytest.approx(8192 * 2 * (M.oh.BETA_HIDDEN * 4096 + widest) / 2**30)
