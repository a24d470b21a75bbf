"""The Mamba-mixer width the profile-run activation peak prices (hybrid.mixer_excess_cols;
scripts/mamba_profile_transient.py, docs/accuracy_hybrids.md "Mamba families: the mixer width").

vLLM V1's profile run skips the conv and the chunked scan (``attn_metadata is None`` branch of
``MambaMixer2.conv_ssm_forward``, vLLM vllm/model_executor/layers/mamba/mamba2/mamba_mixer2.py @2e0714af):
the layer holds in_proj's output, ssm_output and one x|B|C clone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import mamba_profile_transient as M  # noqa: E402
from reportgen.estimate import hybrid  # noqa: E402
from reportgen.estimate.layout import Layout  # noqa: E402
from reportgen.estimate.tables import activation_coeffs, model_facts  # noqa: E402

GIB = 2**30


def test_nemotron_nano_row_by_hand():
    rows = {(r[0], r[1]): r for r in M.rows(8192)}
    name, tp, widest, mlp, forward, excess = rows[("Nemotron-3-Nano-30B-A3B (bundled)", 1)]
    # Mamba-2: I = 64 heads x 64, 8 groups x 128 state, 64 heads -> 4I + 4GN + H
    assert widest == 4 * 4096 + 4 * 8 * 128 + 64 == 20544
    # widest MLP: the non-gated shared expert's up_proj (3712 columns) x ALPHA_MLP
    assert mlp == pytest.approx(M.oh.ALPHA_MLP * 3712)
    assert excess == pytest.approx(8192 * 2 * (widest - mlp) / GIB)           # 0.223 GiB
    # the forward term is the Mamba layer's: hidden states + the mixer, the MLP width no longer counted
    assert forward == pytest.approx(8192 * 2 * (M.oh.BETA_HIDDEN * 2688 + widest) / GIB)
    # TP 2 halves it (8 groups split, no padding)
    assert rows[("Nemotron-3-Nano-30B-A3B (bundled)", 2)][5] == pytest.approx(excess / 2)


def test_forward_peak_is_the_wider_layer():
    """Every family: F = T a (BETA h + max(ALPHA_MLP x mlp_cols / tp, mixer)) -- a wider MLP hides the mixer."""
    for name, tp, widest, mlp, forward, excess in M.rows(8192):
        assert widest > 0, name             # every family has a priced mixer geometry
        assert excess == pytest.approx(8192 * 2 * max(0.0, widest - mlp) / GIB), name
        if "bamba" in name or "jamba" in name or "zamba2" in name or "falcon_h1" in name:
            assert excess == 0, name        # their MLP is wider than the mixer (defaults)


def test_attention_free_mixer_width_is_priced_whole():
    """mamba / mamba2 have no MLP: their mixer width is the whole forward term beyond the hidden states."""
    rows = {(r[0], r[1]): r for r in M.rows(8192)}
    name, tp, widest, mlp, forward, excess = rows[("mamba2 defaults", 1)]
    assert widest == 4 * 8192 + 4 * 8 * 128 + 128 and mlp == 0
    assert excess == pytest.approx(8192 * 2 * widest / GIB)
    assert forward == pytest.approx(8192 * 2 * (M.oh.BETA_HIDDEN * 4096 + widest) / GIB)


def test_hybrid_activation_coefficient_and_padding():
    """activation_coeffs takes the excess (hybrid.mixer_excess_cols); n_groups = 1 pads the groups to tp."""
    import json
    from reportgen.arch import build_spec

    spec = build_spec(json.loads(M.BUNDLED.read_text()))
    f = model_facts(spec)
    assert f.ssm_state.kind == "mamba2" and f.ssm_state.dims[:5] == (4096, 8, 64, 64, 128)
    for tp in (1, 2, 4):
        c = activation_coeffs(f, Layout(tp=tp), 2)
        mlp = M.oh.ALPHA_MLP * 3712 / tp
        mixer = (4 * 4096 + 4 * 8 * 128 + 64) / tp
        assert c["a_fwd_t"] == pytest.approx(2 * (M.oh.BETA_HIDDEN * 2688 + max(mlp, mixer)))
    g1 = type(f.ssm_state)(kind="mamba2", dims=(4096, 1, 64, 64, 128, 4), num_spec=0, ssm_dtype="bfloat16")
    # one group replicated on 4 ranks (vLLM pads n_groups to tp): 4 x 128 per B and per C on every rank
    assert hybrid.mixer_excess_cols(g1, 0.0, 4) == pytest.approx((4 * 4096 + 4 * 4 * 128 + 64) / 4)
    assert hybrid.mixer_excess_cols(g1, 1e9, 4) == 0.0
    assert hybrid.mixer_excess_cols(None, 0.0, 1) == 0.0
    assert hybrid.widest_mixer_state([l for l in spec.layers_kv if l.state is None]) is None


def test_profile_branch_copies_x_b_c_once():
    """vLLM's profile branch ``hidden_states_B_C.transpose(0, 1).clone().transpose(0, 1).contiguous()`` on the
    x|B|C slice of in_proj's output: the clone keeps the transposed permutation (preserve-format empty_like
    infers dense strides), so ``.contiguous()`` returns it unchanged -- one copy, as mamba_profile_cols counts."""
    torch = pytest.importorskip("torch")
    proj = torch.empty(32, 2 * 4096 + 2 * 8 * 128 + 64)          # Nemotron-3-Nano's in_proj output, 32 tokens
    xbc = proj[:, 4096:4096 + 4096 + 2 * 8 * 128]
    cloned = xbc.transpose(0, 1).clone()
    out = cloned.transpose(0, 1).contiguous()
    assert out.data_ptr() == cloned.data_ptr() and out.shape == xbc.shape
