"""The ignore/exclude-list matching rule (reportgen/estimate/quant/names.py)."""

import pytest

from reportgen.estimate.quant.names import NameMatcher, candidates


@pytest.mark.parametrize("entry,name,hit", [
    # compressed-tensors exact full names (HF prefixes, multimodal wrapper)
    ("model.language_model.layers.0.linear_attn.out_proj", "layers.0.linear_attn.out_proj.weight", True),
    ("model.language_model.layers.0.linear_attn.out_proj", "layers.10.linear_attn.out_proj.weight", False),
    ("model.visual.blocks.0.attn.qkv", "visual.blocks.0.attn.qkv.weight", True),
    ("model.layers.0.mlp.gate", "model.layers.0.mlp.gate.weight", True),   # arch names may keep "model."
    ("lm_head", "lm_head.weight", True),
    # component-wise, not substring
    ("mlp.gate", "layers.0.mlp.gate_proj.weight", False),
    ("model.layers.1.mlp", "layers.10.mlp.down_proj.weight", False),
    ("visual", "visual.blocks.3.mlp.fc1.weight", True),
    # regexes (re.match on the prefixed candidates, as vLLM on its full prefix)
    ("re:.*mlp.gate$", "layers.7.mlp.gate.weight", True),
    ("re:.*mlp.gate$", "layers.7.mlp.gate_proj.weight", False),
    ("re:model.visual.*", "visual.merger.mlp.0.weight", True),
    # wildcards (ModelOpt / gpt-oss)
    ("model.layers.*.self_attn", "layers.5.self_attn.q_proj.weight", True),
    ("model.layers.*.mlp.router", "layers.5.mlp.experts.gate_up_proj.weight", False),
    ("*.mlp.gate", "layers.5.mlp.gate.weight", True),
    # fused vLLM names cover their HF parts, and expert 0 names cover the counted experts
    ("model.layers.0.self_attn.qkv_proj", "layers.0.self_attn.k_proj.weight", True),
    ("model.layers.0.mlp.experts.0.down_proj", "layers.0.mlp.experts.down_proj.weight", True),
    # the HF "backbone" root of Mamba-2 / Nemotron-H checkpoints (vLLM's nemotron_h mapper: backbone -> model),
    # as NVIDIA's Nemotron-3-Nano NVFP4 hf_quant_config.json names its bf16 modules, and the parts of a fused
    # tensor the arch layer splits ("in_proj[zx]") are their module's
    ("backbone.layers.4.mixer.in_proj", "model.layers.4.mixer.in_proj[zx].weight", True),
    ("backbone.layers.4.mixer.in_proj", "model.layers.4.mixer.in_proj[dt].weight", True),
    ("backbone.layers.4.mixer.in_proj", "model.layers.41.mixer.in_proj[zx].weight", False),
    ("backbone.layers.5.mixer.q_proj", "model.layers.5.mixer.q_proj.weight", True),
    ("backbone.layers.4.mixer.in_proj", "backbone.layers.4.mixer.in_proj[BC].weight", True),    # mamba family
    ("backbone.layers.*.mixer.out_proj", "model.layers.9.mixer.out_proj.weight", True),
    ("model.layers.0.self_attn.qkv_proj", "layers.0.self_attn.qkv_proj[k].weight", True),
    ("model.layers.0.mlp.gate_up_proj", "layers.0.mlp.gate_up_proj[up].weight", True),
    ("model.layers.0.mlp.gate_up_proj", "layers.0.mlp.down_proj.weight", False),
])
def test_match(entry, name, hit):
    assert NameMatcher([entry]).matches(name) is hit


def test_empty_matcher():
    m = NameMatcher(None)
    assert not m and not m.matches("lm_head.weight")


def test_candidates_strip_and_reprefix():
    c = candidates("model.layers.0.self_attn.q_proj.weight")
    assert c[:2] == ("layers.0.self_attn.q_proj", "model.layers.0.self_attn.q_proj")
    assert "model.layers.0.self_attn.qkv_proj" in c
