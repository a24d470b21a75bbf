"""Architectures vLLM has removed: priced up to their last release, `unsupported` after it.

Source: vLLM ``vllm/model_executor/models/registry.py`` ``_PREVIOUSLY_SUPPORTED_MODELS`` and
``_raise_for_unsupported`` at commit 055e47c28003156421365af985d676fc921cb075 ("Dots1ForCausalLM":
"0.23.0", "BambaForCausalLM": "0.23.0", "MllamaForConditionalGeneration": "0.10.2").
"""

from __future__ import annotations

import pytest

from reportgen.arch import build_spec
from reportgen.estimate.served import removed_reason, spec_for_version
from reportgen.matrix import GpuLike, estimate_one

from test_arch_flagships_gqa import DOTS1
from test_arch_hybrid_mamba import BAMBA
from test_arch_minimax import TEXT01

H100 = GpuLike(id="h100", name="H100", usable_memory_gib=79.19)


@pytest.mark.parametrize("version, removed", [
    ("0.10", False), ("0.19", False), ("0.23", False), ("0.23.4", False), ("v0.23.0", False),
    ("0.24", True), ("0.24.0", True), ("0.29.1", True), ("0.31", True), ("1.0", True),
])
def test_dots1_is_served_until_0_23(version, removed):
    reason = removed_reason(["Dots1ForCausalLM"], version)
    assert (reason is not None) is removed
    if removed:
        assert "Dots1ForCausalLM" in reason and "until v0.23.0" in reason and "055e47c2" in reason


def test_a_config_listing_a_still_served_architecture_is_not_refused():
    # vLLM only raises when none of the listed architectures is registered
    assert removed_reason(["Dots1ForCausalLM", "LlamaForCausalLM"], "0.31") is None
    assert removed_reason(["LlamaForCausalLM"], "0.31") is None
    assert removed_reason([], "0.31") is None
    assert removed_reason(["BambaForCausalLM"], "not a version") is None


def test_spec_for_version_keeps_the_counts_and_sets_the_reason():
    spec = build_spec(BAMBA)
    assert spec.unsupported_reason is None
    assert spec_for_version(spec, "0.23") is spec
    old = spec_for_version(spec, "0.26")
    assert old.params_total == spec.params_total and "BambaForCausalLM" in old.unsupported_reason
    assert spec.unsupported_reason is None                      # the job's spec is not mutated


@pytest.mark.parametrize("cfg", [DOTS1, BAMBA], ids=["dots1", "bamba"])
def test_the_matrix_prices_removed_architectures_only_on_releases_that_serve_them(cfg):
    spec = build_spec(cfg)
    served = estimate_one(spec, H100, tp=8, max_model_len=4096, vllm_version="0.23")
    assert served["status"] not in ("unsupported",) and served["weights_gib"] > 0
    gone = estimate_one(spec, H100, tp=8, max_model_len=4096, vllm_version="0.26")
    assert gone["status"] == "unsupported"
    assert "supported until v0.23.0" in gone["reason"]


def test_minimax_text01_is_priced_until_0_23_and_refused_after():
    """MiniMax-Text-01 / M1 (families/minimax.py): "MiniMaxText01ForCausalLM" / "MiniMaxM1ForCausalLM" /
    "MiniMaxForCausalLM": "0.23.0" in the removed list; the spec itself is priced."""
    spec = build_spec(TEXT01)
    assert spec.unsupported_reason is None
    for arch in ("MiniMaxForCausalLM", "MiniMaxText01ForCausalLM", "MiniMaxM1ForCausalLM"):
        assert removed_reason([arch], "0.23") is None
        assert f"{arch}: it was supported until v0.23.0" in removed_reason([arch], "0.24")
    gone = spec_for_version(spec, "0.24")
    assert gone.params_total == spec.params_total and "until v0.23.0" in gone.unsupported_reason


def test_mllama_is_weights_only_on_every_release():
    """Llama-3.2-Vision (families/mllama.py): vLLM served it until v0.10.2 (V0 engine), but its cross-attention
    KV is not modelled, so no release prices it -- the cell carries the weights-only reason, never a number."""
    import json
    from pathlib import Path

    from reportgen.arch.registry import WEIGHTS_ONLY

    cfg = json.loads((Path(__file__).parent / "data" / "configs_2026" /
                      "meta-llama--Llama-3.2-11B-Vision-Instruct.json").read_text())
    spec = build_spec(cfg)
    assert spec.unsupported_reason == WEIGHTS_ONLY["mllama"] and spec.params_total == 10_670_220_835
    assert removed_reason(["MllamaForConditionalGeneration"], "0.10") is None
    assert "until v0.10.2" in removed_reason(["MllamaForConditionalGeneration"], "0.11")
    for version in ("0.10", "0.11", "0.19"):
        assert spec_for_version(spec, version) is spec
        cell = estimate_one(spec, H100, tp=1, max_model_len=4096, vllm_version=version)
        assert cell["status"] == "unsupported" and cell["reason"] == WEIGHTS_ONLY["mllama"]
