"""Meta-device cross-check of ``longcat_flash`` (LongCat-Flash).

transformers before 5.25 (``LongcatFlashExperts``) allocates ``gate_up_proj`` for ``n_routed_experts +
zero_expert_num`` experts and ``down_proj`` for the routed ones only; 5.25 allocates routed experts only, as vLLM
(longcat_flash.py @055e47c2, ``FusedMoE(num_experts=config.n_routed_experts)``) does, which is what the spec prices.
So the check is exact in two parts: ``params_total + unloaded_params == meta count`` and ``unloaded_params ==
num_layers x zero_expert_num x 2 x expert_ffn_hidden_size x hidden_size`` under transformers < 5.25, 0 from 5.25
(the documented extra, nothing else).  Counted on LongCat-Flash-Chat's
geometry, the class defaults (plus ``zero_expert_type``, which vLLM asserts) and random valid configs
(``ORACLE_EXAMPLES_LONGCAT`` / ``ORACLE_EXAMPLES``, default 200).
"""

from __future__ import annotations

import copy
from importlib import metadata

import pytest
from packaging.version import Version

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import class_defaults, count_on_meta, examples, oracle_settings  # noqa: E402
from test_arch_longcat_flash import FLASH  # noqa: E402

EXAMPLES = examples("ORACLE_EXAMPLES_LONGCAT")


def meta_count(config: dict) -> int:
    import transformers
    from transformers import AutoModelForCausalLM

    cfg = copy.deepcopy(config)
    cfg.pop("architectures", None)
    conf = transformers.LongcatFlashConfig(**cfg)
    return count_on_meta(lambda: AutoModelForCausalLM.from_config(conf))


def _check(cfg: dict) -> None:
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    extra = cfg["num_layers"] * cfg.get("zero_expert_num", 0) * 2 * cfg["expert_ffn_hidden_size"] * cfg["hidden_size"]
    if Version(metadata.version("transformers")) >= Version("5.25.0"):
        extra = 0          # 5.25's LongcatFlashExperts allocates the routed experts only
    assert spec.unloaded_params == extra
    assert spec.params_total + spec.unloaded_params == meta_count(cfg)


def test_flash_chat_geometry_matches_meta_device():
    _check(FLASH)
    total = build_spec(FLASH).params_total + build_spec(FLASH).unloaded_params
    assert total == (741_053_585_408 if Version(metadata.version("transformers")) < Version("5.25.0")
                     else 560_664_958_976)


def test_transformers_default_config_matches_meta_device():
    cfg = class_defaults("longcat_flash")
    cfg["zero_expert_type"] = "identity"     # vLLM's LongcatMoe asserts it; the transformers class ignores it
    _check(cfg)


@st.composite
def longcat_configs(draw) -> dict:
    heads = draw(st.integers(1, 4))
    experts = draw(st.integers(1, 6))
    zero = draw(st.integers(0, 4))
    return {
        "model_type": "longcat_flash",
        "hidden_size": draw(st.integers(4, 48)),
        "num_layers": draw(st.integers(1, 4)),
        "num_attention_heads": heads,
        "vocab_size": draw(st.integers(8, 200)),
        "q_lora_rank": draw(st.integers(2, 24)),
        "kv_lora_rank": draw(st.integers(2, 24)),
        "qk_rope_head_dim": 2 * draw(st.integers(1, 6)),
        "qk_nope_head_dim": draw(st.integers(0, 12)),
        "v_head_dim": draw(st.integers(1, 12)),
        "ffn_hidden_size": draw(st.integers(1, 40)),
        "expert_ffn_hidden_size": draw(st.integers(1, 24)),
        "n_routed_experts": experts,
        "zero_expert_num": zero,
        "zero_expert_type": "identity",
        "moe_topk": draw(st.integers(1, experts + zero)),
        "router_bias": draw(st.booleans()),
        "max_position_embeddings": draw(st.integers(16, 4096)),
        "tie_word_embeddings": False,
    }


@oracle_settings(EXAMPLES)
@given(longcat_configs())
def test_random_longcat_configs_match_meta_device(cfg):
    _check(cfg)
    spec = build_spec(cfg)
    assert spec.kv_bytes_per_token(2) == cfg["num_layers"] * 2 * (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]) * 2
