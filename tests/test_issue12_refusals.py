"""Issue 12: two per-config refusals that named a reportgen gap, now priced as vLLM serves the config.

1. hunyuan_v1_moe with a per-layer ``moe_topk`` list (reportgen/arch/families/hunyuan.py).  vLLM takes layer i's
   top-k from the list in every release 0.10 - 0.34: natively ("Get layer_id topk if config.moe_topk is a list",
   vllm 0.10.0 sdist model_executor/models/hunyuan_v1.py:367-373, 0.28.0 hunyuan_v1.py:384-390) and through
   the Transformers backend from 0.29 (``maybe_per_layer(top_k, layer_idx)``, 0.29.0 transformers/moe.py:277,
   0.34.0 transformers/moe.py:352).  transformers 5.25's HunYuanMoEV1Config types it ``int | list[int]`` and
   its MoE block reads ``moe_topk[layer_idx]``; no parameter depends on it.  The profile-run peak is the MoE
   layer with the largest top-k: ``experts_per_token`` = the max (also vLLM's own reading of a list, 0.34.0
   transformers_utils/model_arch_config_convertor.py:195-196).
2. exaone_moe without ``sliding_windows`` (reportgen/arch/families/exaone_moe.py).  vLLM 0.32 falls back to the
   scalar ``sliding_window`` (vllm 0.32.0 / 0.34.0 sdists, model_executor/models/exaone_moe.py:243-246); 0.27 -
   0.31 evaluate ``config.sliding_windows`` for every layer (0.31.0 exaone_moe.py:230) and raise AttributeError
   on transformers' ExaoneMoeConfig.  Such a spec carries ``served_from`` and estimate/served.py refuses the
   older releases with that reason.
"""

from __future__ import annotations

import json

import pytest

from reportgen.arch import ConfigError, build_spec
from reportgen.arch.spec import AttentionKind
from reportgen.estimate.kvcache import kv_bytes_per_token, kv_groups
from reportgen.estimate.served import spec_for_version
from reportgen.job import DEFAULT_VLLM_VERSION
from reportgen.matrix import GpuLike, estimate_one

from test_arch_cohere_exaone import KEXAONE, KEXAONE_TOTAL
from test_arch_flagships_gqa import HUNYUAN_MOE

H100 = GpuLike(id="h100", name="H100", usable_memory_gib=79.19)
SLIDING, FULL = AttentionKind.SLIDING, AttentionKind.FULL

# ---------------------------------------------------------------- hunyuan_v1_moe: per-layer moe_topk

HUNYUAN_TOTAL = 80_393_183_232             # Hunyuan-A13B geometry (tests/test_arch_flagships_gqa.py), top-k 8
ROUTED_PER_LAYER = 64 * 3 * 4096 * 3072    # 64 experts x (gate, up, down) of 4096 x 3072
MIXED = [8] * 16 + [4] * 15 + [2]           # 32 layers, three different top-k


def test_per_layer_topk_keeps_the_meta_device_count():
    torch = pytest.importorskip("torch")  # noqa: F841
    from oracle_support import meta_count

    cfg = dict(HUNYUAN_MOE, moe_topk=MIXED)
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None
    assert spec.params_total == meta_count(cfg) == HUNYUAN_TOTAL


def test_per_layer_topk_prices_the_largest_and_counts_active_per_layer():
    spec = build_spec(dict(HUNYUAN_MOE, moe_topk=MIXED))
    assert spec.experts_per_token == 8 and spec.experts_per_token_by_layer == tuple(MIXED)
    assert spec.notes == ["per-layer moe_topk (layers 0-15: 8, 16-30: 4, 31: 2): activation and MoE workspaces "
                          "priced at the largest, 8 (the layer that peaks in vLLM's profile run); active "
                          "parameters per layer"]
    # active = everything but the routed experts + each layer's k/64 of its own experts
    non_routed = HUNYUAN_TOTAL - 32 * ROUTED_PER_LAYER
    assert spec.params_active == non_routed + ROUTED_PER_LAYER * sum(MIXED) // 64 == 10_256_031_744
    assert build_spec(HUNYUAN_MOE).params_active == non_routed + ROUTED_PER_LAYER * 8 * 32 // 64 == 12_747_448_320


def test_a_uniform_list_is_the_scalar():
    spec = build_spec(dict(HUNYUAN_MOE, moe_topk=[6] * 32))
    assert (spec.experts_per_token, spec.experts_per_token_by_layer, spec.notes) == (6, (), [])
    assert spec.params_active == build_spec(dict(HUNYUAN_MOE, moe_topk=6)).params_active


def test_the_activation_follows_the_largest_layer_topk():
    """The fused-MoE workspaces scale with top-k (estimate/tables.py activation_coeffs ``moe_ws``): a list whose
    largest entry is 8 prices as top-k 8, above the same model at its smallest entry."""
    def act(topk):
        return estimate_one(build_spec(dict(HUNYUAN_MOE, moe_topk=topk)), H100, tp=4, max_model_len=8192,
                            vllm_version="0.29")["activation_gib"]

    mixed, top8, top2 = act([2] * 31 + [8]), act(8), act(2)
    assert mixed == top8 > top2
    assert top8 - top2 > 0.1                 # GiB: a real move at 8192 batched tokens, not rounding


@pytest.mark.parametrize(("topk", "field"), [
    ([8] * 31, "moe_topk"),                   # shorter than num_hidden_layers: vLLM asserts len > layer_id
    ([8] * 5 + [0] + [8] * 26, r"moe_topk\[5\]"),
    ([8] * 31 + [65], r"moe_topk\[31\]"),     # above num_experts (64)
    ([True] + [8] * 31, "moe_topk.*index 0"),  # transformers' strict int | list[int] rejects a bool first
    ([8] * 10 + ["8"] + [8] * 21, "moe_topk.*index 10"),
])
def test_a_bad_list_is_a_config_error_naming_the_entry(topk, field):
    with pytest.raises(ConfigError, match=field):
        build_spec(dict(HUNYUAN_MOE, moe_topk=topk))


def test_entries_past_the_last_layer_are_not_read():
    """vLLM and transformers index moe_topk by layer: a longer list's extra entries change nothing."""
    spec = build_spec(dict(HUNYUAN_MOE, moe_topk=MIXED + [64, 64]))
    assert spec.experts_per_token == 8 and spec.experts_per_token_by_layer == tuple(MIXED)


def test_per_layer_topk_is_served_on_every_release():
    spec = build_spec(dict(HUNYUAN_MOE, moe_topk=MIXED))
    assert spec.served_from is None
    for version in ("0.10", "0.28", "0.29", "0.34"):
        # 0.29 on: the Transformers backend's build (estimate/tf_backend.py) -- the same tensors, no get_rope cache
        served = spec_for_version(spec, version)
        assert served.unsupported_reason is None and served.tensors is spec.tensors
        assert served.experts_per_token_by_layer == tuple(MIXED)


# ---------------------------------------------------------------- exaone_moe without sliding_windows

NO_LIST = {k: v for k, v in KEXAONE.items() if k != "sliding_windows"}


@pytest.mark.parametrize("cfg", [NO_LIST, dict(KEXAONE, sliding_windows=None)], ids=["absent", "null"])
def test_sliding_layers_take_the_scalar_window(cfg):
    """vllm 0.32.0 exaone_moe.py:241-246: full_attention -> no window, sliding_windows None -> config.sliding_window;
    the layer's ``per_layer_sliding_window`` becomes a SlidingWindowSpec (0.34.0 attention.py:282-284, 650-702)."""
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.params_total == KEXAONE_TOTAL
    assert [(l.kind, l.window) for l in spec.layers_kv] == ([(SLIDING, 128)] * 3 + [(FULL, None)]) * 12
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 48 * 2 * 8 * 128 * 2 == 196_608
    assert kv_bytes_per_token(spec, "fp8", 2, 8) == 48 * 2 * 1 * 128 == 12_288
    g = kv_groups(spec, 1, 1, "auto", 2, 16)
    assert (g.n_groups, g.n_full, g.n_slide, g.window) == (4, 1, 3, 128)
    assert spec.served_from[0] == (0, 32)


def test_the_scalar_is_the_window_not_a_default():
    """With no list, the window is whatever sliding_window says (4096 here), not K-EXAONE's 128."""
    spec = build_spec(dict(NO_LIST, sliding_window=4096))
    assert {l.window for l in spec.layers_kv if l.kind is SLIDING} == {4096}
    assert spec.notes == ["no sliding_windows: sliding layers take the scalar sliding_window 4096 (vLLM 0.32+; "
                          "older releases cannot build the config)"]
    listed = build_spec(dict(KEXAONE, sliding_window=4096))        # the list wins when present
    assert {l.window for l in listed.layers_kv if l.kind is SLIDING} == {128} and listed.served_from is None


def test_an_all_full_config_without_the_list_fails_on_0_27_to_0_31_too():
    """0.27 - 0.31 read config.sliding_windows before looking at the layer type (0.27.0 exaone_moe.py:236-240):
    an absent list fails for every layer; a null one only for sliding layers."""
    full = dict(NO_LIST, layer_types=["full_attention"] * 48)
    assert build_spec(full).served_from[0] == (0, 32)
    assert build_spec(dict(full, sliding_windows=None)).served_from is None


def test_the_matrix_prices_it_from_0_32_and_refuses_older_releases():
    spec = build_spec(NO_LIST)
    new = estimate_one(spec, H100, tp=8, max_model_len=8192, vllm_version="0.32")
    newest = estimate_one(spec, H100, tp=8, max_model_len=8192, vllm_version="0.34")
    listed = estimate_one(build_spec(KEXAONE), H100, tp=8, max_model_len=8192, vllm_version="0.32")
    assert new["status"] not in ("unsupported", "error") and new["kv_cache_tokens"] > 0
    # same windows as the config that states them: the same KV pool (bytes per token on one of 8 ranks)
    assert (new["kv_cache_tokens"], new["kv_bytes_per_token"]) == (listed["kv_cache_tokens"], 196_608 // 8)
    assert newest["status"] == new["status"]
    for version in ("0.31", "0.30", "0.27"):
        old = estimate_one(spec, H100, tp=8, max_model_len=8192, vllm_version=version)
        assert old["status"] == "unsupported" and old["reason"].startswith(f"vLLM {version} cannot build this config")
        assert "AttributeError: 'ExaoneMoeConfig' object has no attribute 'sliding_windows'" in old["reason"]
        assert old["reason"].endswith("set vllm_version to 0.32 or newer to price it")
    # before 0.27 (another exaone_moe.py, K-EXAONE's pre-release fields): refused too
    assert estimate_one(spec, H100, tp=8, max_model_len=8192, vllm_version="0.20")["status"] == "unsupported"
    # the job default follows the same rule
    default = estimate_one(spec, H100, tp=8, max_model_len=8192)
    assert (default["status"] == "unsupported") is (tuple(map(int, DEFAULT_VLLM_VERSION.split("."))) < (0, 32))
    assert spec.unsupported_reason is None          # the job's spec is not mutated


def test_the_estimate_cli_refuses_0_31_and_prices_0_32(tmp_path, capsys):
    from reportgen.cli import main

    path = tmp_path / "k-exaone-no-window-list.json"
    path.write_text(json.dumps(NO_LIST))
    out = {}
    for version in ("0.31", "0.32"):
        rc = main(["estimate", str(path), "--json", "--gpu", "H100", "--tp", "8", "--max-model-len", "8192",
                   "--vllm-version", version])
        out[version] = json.loads(capsys.readouterr().out)
        assert rc == 0
    assert out["0.31"]["status"] == "unsupported" and "sliding_windows" in out["0.31"]["reason"]
    assert "set vllm_version to 0.32" in out["0.31"]["reason"]
    assert out["0.32"]["status"] not in ("unsupported", "error") and out["0.32"]["kv_bytes_per_token"] == 196_608
    assert out["0.32"]["kv_cache_tokens"] > 0


def test_a_non_positive_scalar_window_stays_refused():
    reason = build_spec(dict(NO_LIST, sliding_window=0)).unsupported_reason
    assert reason and "sliding_window" in reason and "not a positive size" in reason


@pytest.mark.parametrize(("version", "refused"), [
    ("0.32", False), ("0.32.5", False), ("v0.33.0rc1", False), ("1.0", False),
    ("0.31", True), ("v0.31.9", True), ("0.10", True), ("not a version", False),
])
def test_spec_for_version_reads_served_from_by_minor_release(version, refused):
    spec = build_spec(NO_LIST)
    out = spec_for_version(spec, version)
    assert (out.unsupported_reason is not None) is refused
    assert (out is spec) is (not refused)
