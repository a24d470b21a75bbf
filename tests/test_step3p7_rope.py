"""Step-3.7-Flash (``step3p7``) with ``rope_scaling``: the rotary caches and the length limit vLLM derives, read in the
release sdists (/work/vllm_src/vllm-X.Y.Z; step3p5.py exists from 0.15.1, step3p7.py from 0.23.0).

The config: the shipped Step-3.7-Flash fields (``shipped_nested``) plus the rope fields real Step checkpoints state.
The ``text_config`` of a Step-3.7 checkpoint as NVIDIA-NeMo/Megatron-Bridge's Step37 config-loader unit test writes
it (found with the search index, excerpt id 57415667184): ``max_seq_len`` and ``max_position_embeddings`` 262144,
``rope_scaling = {"rope_type": "llama3", "factor": 2.0, "original_max_position_embeddings": 131072,
"low_freq_factor": 1.0, "high_freq_factor": 32.0}``, ``yarn_only_types = ["full_attention"]``; per-layer
``rope_theta`` 5e6 on the full-attention layers and 1e4 on the sliding ones, ``partial_rotary_factors`` 0.5 / 1.0
(Megatron-Bridge's Step-3.5 reference-config test: "Per-layer rope_theta is a 4-cycle starting at 5e6", then 1e4;
the public Step-3.7 test configs in the same index: ``"partial_rotary_factors": [0.5, 1.0, 1.0, 1.0, 0.5]`` with
``"rope_theta": [5000000.0, 10000.0, 10000.0, 10000.0, 5000000.0]`` over a full / 3 x sliding / full pattern).

vLLM (0.23.0 sdist, vllm/model_executor/models/step3p5.py): ``Step3p5DecoderLayer`` passes
``max_position=config.max_position_embeddings`` (line 452), ``rope_theta=config.rope_theta``,
``rope_scaling=getattr(config, "rope_scaling", None)``, ``yarn_only_types``, ``partial_rotary_factors[layer_idx]``;
``Step3p5Attention`` drops ``rope_scaling`` on a layer whose type is not in ``yarn_only_types`` (lines 163-164),
indexes the theta list (174-175), and calls ``get_rope(head_size=head_dim, max_position, rope_parameters=
dict(rope_scaling) + rope_type default + rope_theta + partial_rotary_factor)`` (213-226).  Same rule in 0.34.0
(``_get_rope_parameters`` lines 86-109, decoder line 442).  ``get_rope`` memoises on (head size, rotary dim,
max_position, neox, parameters, dtype) (rotary_embedding/__init__.py 0.34.0 lines 74-85): one
``cos_sin_cache`` buffer per distinct set, ``max_position x rotary_dim`` in the model dtype for
``RotaryEmbedding`` and ``Llama3RotaryEmbedding`` (base.py ``_compute_cos_sin_cache``: ``torch.arange(
self.max_position_embeddings)``, cos and sin concatenated; llama3_rope.py only changes ``inv_freq``).
"""

from __future__ import annotations

import copy

import pytest

from reportgen.arch import build_spec
from reportgen.estimate.served import spec_for_version
from reportgen.estimate.weights import rotary_cache_bytes
from step3p7_configs import shipped_nested

LLAMA3 = {"rope_type": "llama3", "factor": 2.0, "original_max_position_embeddings": 131072,
          "low_freq_factor": 1.0, "high_freq_factor": 32.0}
MPE = 262_144


def _cfg(rope_scaling=LLAMA3, yarn_only_types=("full_attention",), **text) -> dict:
    cfg = shipped_nested()
    t = cfg["text_config"]
    full = [x == "full_attention" for x in t["layer_types"]]
    t.update(max_position_embeddings=MPE, max_seq_len=MPE,
             rope_theta=[5e6 if f else 1e4 for f in full], partial_rotary_factors=[0.5 if f else 1.0 for f in full])
    if rope_scaling is not None:
        t["rope_scaling"] = copy.deepcopy(rope_scaling)
    if yarn_only_types is not None:
        t["yarn_only_types"] = list(yarn_only_types)
    t.update(text)
    return cfg


def test_llama3_on_full_layers_priced_caches_limit_and_kv():
    spec = build_spec(_cfg())
    assert spec.unsupported_reason is None, spec.unsupported_reason
    # two get_rope modules: the 33 sliding layers' default rope (theta 1e4, rotary 128) and the 12 full layers'
    # Llama3RotaryEmbedding (theta 5e6, partial 0.5 -> rotary 64); both max_position_embeddings rows
    assert spec.rope_caches == ((MPE, 128, 0), (MPE, 64, 0))
    # bf16: 262,144 x 128 x 2 B = 64 MiB  +  262,144 x 64 x 2 B = 32 MiB
    assert rotary_cache_bytes(spec, 2) == 67_108_864 + 33_554_432 == 96 * 2**20
    # llama3 does not scale the derived length (vllm/config/model.py _get_and_verify_max_len: 0.29.0 line 2452
    # skips "su" / "longrope" / "llama3", 0.31.0 lines 2549-2556 as well): max_position_embeddings = max_seq_len
    assert spec.max_model_len_limit == MPE
    # the KV cache does not depend on the rope: 45 layers x 8 K/V heads x (128 + 128) x 2 B
    assert spec.kv_bytes_per_token(2) == 184_320
    plain = build_spec(_cfg(rope_scaling=None, yarn_only_types=None))
    assert spec.params_total == plain.params_total == build_spec(shipped_nested()).params_total
    assert spec.kv_bytes_per_token(2) == plain.kv_bytes_per_token(2)


def test_parameters_exact_against_the_meta_device():
    pytest.importorskip("torch")
    from oracle_support import check, meta_count_image_text

    spec = check(_cfg(), meta_count_image_text)
    assert spec.params_total == 197_825_511_424


def test_scaled_layers_are_their_own_cache_even_with_one_theta():
    # one theta and full rotary everywhere: without rope_scaling every layer shares one get_rope module;
    # llama3 on the full layers adds a second (its parameters differ), same size: 2 x 262,144 x 128 x 2 B
    one = dict(rope_theta=1e4, partial_rotary_factors=[1.0] * 45)
    assert build_spec(_cfg(rope_scaling=None, yarn_only_types=None, **one)).rope_caches == ((MPE, 128, 0),)
    spec = build_spec(_cfg(**one))
    assert spec.rope_caches == ((MPE, 128, 0), (MPE, 128, 0))
    assert rotary_cache_bytes(spec, 2) == 2 * MPE * 128 * 2 == 128 * 2**20


def test_other_types_rows_and_limits():
    # linear (LinearScalingRotaryEmbedding, linear_scaling_rope.py 0.23.0 / 0.34.0 line 90: max_position x factor
    # rows); the derived length x factor in every release (linear is not exempt)
    spec = build_spec(_cfg({"rope_type": "linear", "factor": 2.0}))
    assert spec.rope_caches == ((MPE, 128, 0), (2 * MPE, 64, 0)) and spec.max_model_len_limit == 2 * MPE
    # dynamic with factor: max_position rows from vLLM 0.22 (dynamic_ntk_scaling_rope.py 0.23.0 line 67), the
    # derived length x factor
    spec = build_spec(_cfg({"rope_type": "dynamic", "factor": 2.0}))
    assert spec.rope_caches == ((MPE, 128, 0), (MPE, 64, 0)) and spec.max_model_len_limit == 2 * MPE
    # yarn (YaRNScalingRotaryEmbedding: original_max_position_embeddings x factor rows, yarn_scaling_rope.py
    # 0.23.0 lines 77-78) where the config length is that product: the same limit in every release
    spec = build_spec(_cfg({"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 131072}))
    assert spec.unsupported_reason is None
    assert spec.rope_caches == ((MPE, 128, 0), (MPE, 64, 0)) and spec.max_model_len_limit == MPE
    assert rotary_cache_bytes(spec, 2) == 96 * 2**20
    # yarn over a config length other than original x factor: priced per release (no longer refused) -- 0.29.0
    # config/model.py lines 2452-2458 cap max_model_len at 131,072 x 4 = 524,288, 0.30.0 lines 2468-2481 at the
    # config's 262,144 (tests/test_rope_versions.py); the yarn cache is 524,288 rows x 64 in both
    spec = build_spec(_cfg({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 131072}))
    assert spec.unsupported_reason is None and spec.rope_caches == ((MPE, 128, 0), (4 * 131072, 64, 0))
    assert [spec_for_version(spec, v).max_model_len_limit for v in ("0.23", "0.29", "0.30", "0.34")] == \
        [524288, 524288, MPE, MPE]


@pytest.mark.parametrize("edit, words", [
    # step3p5.py: yarn_only_types absent -> rope_scaling on every layer; transformers: full_attention only
    (dict(yarn_only_types=None), ("reaches 45 of 45", "12 full_attention")),
    (dict(yarn_only_types=("full_attention", "sliding_attention")), ("reaches 45 of 45",)),
    # transformers merges rope_scaling over {"rope_type": "default"}: a legacy "type" leaves the layers default
    (dict(rope_scaling={k if k != "rope_type" else "type": v for k, v in LLAMA3.items()}), ("legacy 'type'",)),
    # patch_legacy_rope_type (0.31.0 transformers_utils/config.py lines 605-617) raises on a conflict
    (dict(rope_scaling=dict(LLAMA3, type="yarn")), ("patch_legacy_rope_type",)),
    (dict(rope_scaling={"rope_type": "longrope", "factor": 2.0, "original_max_position_embeddings": 131072,
                        "short_factor": [1.0] * 16, "long_factor": [2.0] * 16}), ("'longrope'", "not priced")),
])
def test_refused_where_vllm_releases_differ(edit, words):
    kw = {"rope_scaling": LLAMA3, "yarn_only_types": ("full_attention",)}
    kw.update(edit)
    spec = build_spec(_cfg(**kw))
    assert spec.unsupported_reason and all(w in spec.unsupported_reason for w in words), spec.unsupported_reason
    assert "rope_scaling" in spec.unsupported_reason and spec.params_total == 0


def test_random_configs_with_llama3_scaling_match_meta_device():
    """The oracle module's random nested configs (per-layer theta 1e4 / 5e5, partial 1 / 0.5) with llama3 scaling on
    the full layers: parameters exact on the meta device, and one cache per distinct (theta, partial, full) set."""
    pytest.importorskip("torch")
    from hypothesis import given, strategies as st

    from oracle_support import check, examples, meta_count_image_text, oracle_settings
    from test_oracle_step3p7 import step3p7_configs

    @oracle_settings(min(examples("ORACLE_EXAMPLES_STEP3P7"), 40))
    @given(step3p7_configs(), st.sampled_from([1.5, 2.0, 4.0]))
    def run(cfg, factor):
        t = cfg["text_config"]
        t.update(rope_scaling=dict(LLAMA3, factor=factor,
                                   original_max_position_embeddings=max(1, t["max_position_embeddings"] // 2)),
                 yarn_only_types=["full_attention"])
        spec = check(cfg, meta_count_image_text)
        n = t["num_hidden_layers"]
        sets = {(th, x, ty == "full_attention")
                for th, x, ty in zip(t["rope_theta"][:n], t["partial_rotary_factors"][:n], t["layer_types"][:n])}
        hd, mpe = t["head_dim"], t["max_position_embeddings"]
        assert sorted(spec.rope_caches) == sorted((mpe, int(hd * x), 0) for _, x, _ in sets)
        assert spec.max_model_len_limit == mpe

    run()
