"""Meta-device cross-check of the MLA / DSA flagships: glm4_moe_lite, deepseek_v32, glm_moe_dsa, kimi_k25.

Counted three ways: the shipped configs (tests/data/configs_2026; their recorded truths are pinned,
without torch, in test_arch_flagships_dsa.py), the transformers class defaults, and random valid
configs with small dims (hypothesis: ``ORACLE_EXAMPLES`` per family, default 200; ``ORACLE_EXAMPLES_DSA`` overrides).  MTP layers are checked by building the transformers model with one more decoder layer:
what that layer adds, plus the MTP module's own embedding / head / norms / eh_proj, must equal
``spec.mtp_params``.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from reportgen.arch.families.mla_moe import mtp_extras  # noqa: E402
from oracle_support import (check, class_defaults, class_defaults_test, examples, meta_count,  # noqa: E402
                            meta_count_image_text, oracle_settings, shipped)

SHIPPED = {"zai-org/GLM-4.7-Flash": "zai-org--GLM-4.7-Flash", "zai-org/GLM-5": "zai-org--GLM-5"}
FAMILIES = ("glm4_moe_lite", "deepseek_v32", "glm_moe_dsa")
EXAMPLES = examples("ORACLE_EXAMPLES_DSA")


@pytest.mark.parametrize("hub_id", sorted(SHIPPED))
def test_shipped_config_matches_meta_device(hub_id):
    cfg = shipped(SHIPPED[hub_id])
    assert build_spec(cfg).params_total == meta_count(cfg)


def test_deepseek_v32_published_geometry_matches_meta_device():
    from test_arch_flagships_dsa import _v32

    cfg = _v32()
    assert build_spec(cfg).params_total == meta_count(cfg)


test_transformers_default_config_matches_meta_device = class_defaults_test(FAMILIES)


@st.composite
def mla_configs(draw, model_type: str) -> dict:
    """A small valid config of ``model_type`` on which transformers and vLLM agree (layer placement)."""
    n = draw(st.integers(1, 5))
    heads = draw(st.integers(1, 4))
    experts = draw(st.integers(1, 6))
    k_dense = draw(st.integers(0, n))
    freq = draw(st.integers(1, 3))
    dense = [not (i >= k_dense and i % freq == 0) for i in range(n)]
    dsa = model_type != "glm4_moe_lite"
    cfg = {
        "model_type": model_type,
        "hidden_size": draw(st.integers(4, 48)),
        "num_hidden_layers": n,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "vocab_size": draw(st.integers(8, 200)),
        "q_lora_rank": draw(st.integers(2, 24) if dsa else st.one_of(st.none(), st.integers(2, 24))),
        "kv_lora_rank": draw(st.integers(2, 24)),
        "qk_rope_head_dim": 2 * draw(st.integers(1, 6)),
        "qk_nope_head_dim": draw(st.integers(0, 12)),
        "v_head_dim": draw(st.integers(1, 12)),
        "n_routed_experts": experts,
        "num_experts_per_tok": draw(st.integers(1, experts)),
        "n_shared_experts": draw(st.integers(0, 2)),
        "moe_intermediate_size": draw(st.integers(1, 24)),
        "intermediate_size": draw(st.integers(1, 40)),
        "first_k_dense_replace": k_dense,
        "moe_layer_freq": freq,
        "mlp_layer_types": ["dense" if d else "sparse" for d in dense],
        "tie_word_embeddings": draw(st.booleans()),
        "num_nextn_predict_layers": draw(st.integers(0, 1)),
        "max_position_embeddings": draw(st.integers(16, 4096)),
    }
    if dsa:
        cfg.update(index_head_dim=128 * draw(st.integers(1, 2)), index_n_heads=draw(st.integers(1, 4)),
                   index_topk=draw(st.integers(1, 64)))
    if model_type == "glm_moe_dsa" and draw(st.booleans()):
        cfg.update(index_topk_freq=draw(st.integers(1, 3)), index_skip_topk_offset=draw(st.integers(0, 3)))
    return cfg


def _check(cfg: dict) -> None:
    spec = check(cfg)
    n = cfg["num_hidden_layers"]
    if cfg.get("num_nextn_predict_layers"):
        # the MTP layer is decoder layer n (MoE unless n < first_k_dense_replace) plus its own extras
        plus = dict(cfg, num_hidden_layers=n + 1, num_nextn_predict_layers=0,
                    mlp_layer_types=cfg["mlp_layer_types"] + ["dense" if n < cfg["first_k_dense_replace"] else "sparse"])
        plus.pop("moe_layer_freq")
        if "index_topk_freq" in plus:   # an MTP layer always builds its indexer
            plus["index_topk_pattern"] = "".join("F" if l.index_token_bytes else "S" for l in spec.layers_kv) + "F"
            plus.pop("index_topk_freq"), plus.pop("index_skip_topk_offset")
        layer = meta_count(plus) - meta_count(dict(plus, num_hidden_layers=n, mlp_layer_types=cfg["mlp_layer_types"],
                                                   **({"index_topk_pattern": plus["index_topk_pattern"][:-1]}
                                                      if "index_topk_pattern" in plus else {})))
        assert spec.mtp_params == layer + mtp_extras(cfg["hidden_size"], cfg["vocab_size"])


@pytest.mark.parametrize("model_type", FAMILIES)
def test_random_configs_match_meta_device(model_type):
    @oracle_settings(EXAMPLES)
    @given(mla_configs(model_type))
    def run(cfg):
        _check(cfg)

    run()


# ---- Kimi-K2.5: DeepSeek-V3 text stack + MoonViT-3D tower ---------------------------------------------



def meta_count_kimi(config: dict) -> int:
    """The composite on the meta device, with the language model's tie flag (what vLLM does)."""
    text = {k: v for k, v in config["text_config"].items() if k not in ("quantization_config", "auto_map")}
    return meta_count_image_text(dict(config, text_config=text,
                                      tie_word_embeddings=bool(text.get("tie_word_embeddings", False))),
                                 drop=("auto_map",))


def test_kimi_k25_shipped_config_matches_meta_device():
    cfg = shipped("moonshotai--Kimi-K2.5")
    assert build_spec(cfg).params_total == meta_count_kimi(cfg)


def test_kimi_k25_default_config_matches_meta_device():
    cfg = class_defaults("kimi_k25")
    cfg["tie_word_embeddings"] = False       # the language model's flag (DeepSeek-V3 default), as vLLM
    check(cfg, meta_count_kimi)


@st.composite
def kimi_configs(draw) -> dict:
    text = draw(mla_configs("glm4_moe_lite"))
    text.update(model_type="kimi_k2", architectures=["DeepseekV3ForCausalLM"], moe_layer_freq=1,
                tie_word_embeddings=False, num_nextn_predict_layers=0)
    text["mlp_layer_types"] = None
    text.pop("mlp_layer_types")
    heads = draw(st.integers(1, 3))
    hidden = heads * 4 * draw(st.integers(1, 3))
    vis = {"patch_size": draw(st.integers(1, 4)), "merge_kernel_size": [draw(st.integers(1, 2)), draw(st.integers(1, 2))]}
    dims = {"hidden_size": hidden, "intermediate_size": draw(st.integers(1, 40)),
            "num_hidden_layers": draw(st.integers(1, 3)), "num_attention_heads": heads}
    pos = {"h": draw(st.integers(1, 6)), "w": draw(st.integers(1, 6)), "t": draw(st.integers(1, 4))}
    if draw(st.booleans()):   # remote-code names (vLLM reads them) alongside transformers' names
        vis.update({f"vt_{k}": v for k, v in dims.items()}, init_pos_emb_height=pos["h"],
                   init_pos_emb_width=pos["w"], init_pos_emb_time=pos["t"])
    vis.update(dims, pos_emb_height=pos["h"], pos_emb_width=pos["w"], pos_emb_time=pos["t"])
    if "init_pos_emb_height" not in vis:
        vis.update(init_pos_emb_height=pos["h"], init_pos_emb_width=pos["w"], init_pos_emb_time=pos["t"])
    return {"model_type": "kimi_k25", "architectures": ["KimiK25ForConditionalGeneration"],
            "text_config": text, "vision_config": vis, "projection_hidden_size": hidden,
            "tie_word_embeddings": False}


@oracle_settings(EXAMPLES)
@given(kimi_configs())
def test_random_kimi_k25_configs_match_meta_device(cfg):
    check(cfg, meta_count_kimi)
