"""DSA models' (DeepSeek-V3.2 ``deepseek_v32``, GLM-5 ``glm_moe_dsa``) profile-run workspaces read from vLLM (issues
10 / 12, branch dsaws; docs/decisions.md "DSA profile-run workspaces").

vLLM code read (search tool, vllm-project/vllm):

* ``vllm/model_executor/layers/sparse_attn_indexer.py`` @006475fe, ``sparse_attn_indexer``'s
  ``not isinstance(attn_metadata, dict)`` (dummy-run) branch: ``current_workspace_manager().get_simultaneous(
  ((total_seq_lens, head_dim), fp8), ((total_seq_lens, 4), uint8), ((RADIX_TOPK_WORKSPACE_SIZE,), uint8))`` with
  ``RADIX_TOPK_WORKSPACE_SIZE = 1024 * 1024``, then a freed ``torch.empty(VLLM_SPARSE_INDEXER_MAX_LOGITS_MB MiB)``;
* DeepSeek-V3.2 / GLM-5's ``Indexer`` (deepseek_v2.py, search file id 1709496): ``total_seq_lens =
  get_max_prefill_buffer_size(vllm_config)``, not divided (DeepSeek-V4 divides by its compress ratio);
* ``vllm/v1/attention/backends/mla/indexer.py`` @0023368d ``get_max_prefill_buffer_size`` = ``max_model_len * 40``
  ("For DeepSeek-V3.2, the max_model_len is 163840. 40 * 163840 * 132 = 865075200 bytes = 825 MB");
* ``vllm/v1/worker/workspace.py`` @00606a9b ``get_simultaneous``: each request rounded up to 256 B, one buffer
  grown to the largest (``_ensure_workspace_size``);
* ``vllm/v1/attention/backends/mla/flashmla_sparse.py`` @008a0c31 ``FlashMLASparseImpl.__init__``: the bf16 prefill
  gather ``(5 * max_model_len, 576)`` is reserved only for a quantized (``fp8_ds_mla`` / ``nvfp4_ds_mla``) cache, at
  model construction -- not for ``--kv-cache-dtype auto`` (rows 175 / 176), and not priced here.
"""
import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.estimate import compressed as C
from reportgen.estimate import overheads as oh

GIB = 1024 ** 3
ROOT = Path(__file__).resolve().parents[1]
GLM5 = json.loads((ROOT / "tests" / "data" / "configs_2026" / "zai-org--GLM-5.json").read_text())


def test_indexer_k_gather_bytes():
    # GLM-5 / 5.1 at its max_model_len 202,752: 8,110,080 rows of 128 fp8 + 4 scale bytes, + the radix scratch
    assert C.indexer_workspace_bytes(202_752, 128, 1) == 8_110_080 * 128 + 8_110_080 * 4 + 1_048_576 == 1_071_579_136
    assert round(1_071_579_136 / GIB, 3) == 0.998
    # vLLM's own comment (mla/indexer.py @0023368d): DeepSeek-V3.2 at 163,840 -> 865,075,200 B before the radix scratch
    assert C.indexer_workspace_bytes(163_840, 128, 1) == 865_075_200 + 1_048_576
    # each request rounded up to 256 B (workspace.py get_simultaneous): 40 rows x 4 B = 160 -> 256
    assert C.indexer_workspace_bytes(1, 128, 1) == 5_120 + 256 + 1_048_576
    # DeepSeek-V4 divides the rows by its compress ratio; DSA does not
    assert C.indexer_workspace_bytes(202_752, 128, 4) < C.indexer_workspace_bytes(202_752, 128, 1)
    # the FlashMLA-sparse fp8 gather (not priced: fp8_ds_mla only, reserved at model construction) would be larger
    assert 5 * 202_752 * 576 * 2 == 1_167_851_520 > 1_071_579_136


def _cells(version: str, lens: list[int], kd: str = "auto", cc: tuple | None = None, tp: int = 8):
    from reportgen.job import Matrix
    from reportgen.matrix import GpuLike, ModelEntry, evaluate_matrix_lazy

    m = Matrix(tp=[tp], pp=[1], dp=[1], ep=[False], weight_dtype=["fp8"], kv_cache_dtype=[kd],
               max_model_len=lens, concurrency=[1], gpu_memory_utilization=[0.9], max_num_batched_tokens=8_192,
               max_nodes=64, allow_cross_node_tp=True, vllm_version=version)
    gpu = GpuLike(id="h200", name="H200", usable_memory_gib=139.81, compute_capability=cc)
    df = evaluate_matrix_lazy([ModelEntry("zai-org/GLM-5", build_spec(GLM5))], [gpu], m).collect()
    return {r["max_model_len"]: r for r in df.iter_rows(named=True)}


# the fused-MoE workspaces of GLM-5 at TP 8, 8,192 batched tokens: topk 8, expert width 2048 / 8, hidden 6144, bf16
# (the fitted MOE_WS term, the activation's ``a_moe_t``): the shared buffer already holds this much
MOE = oh.MOE_WS * 8 * (3 * 2048 / 8 + 6144) * 2 * 8_192


@pytest.mark.parametrize("kd", ["auto", "fp8"])
def test_the_matrix_prices_the_k_gather_per_length_from_0_13(kd):
    lens = [4_096, 65_536, 202_752]
    new, old = _cells("0.20", lens, kd), _cells("0.12", lens, kd)
    assert round(MOE / GIB, 3) == 0.648
    for m in lens:
        grow = max(C.indexer_workspace_bytes(m, 128, 1) - MOE, 0) / GIB
        # per length: what the gather exceeds the fused-MoE workspaces by (0 below ~ 124k tokens here)
        assert new[m]["activation_gib"] - new[4_096]["activation_gib"] == pytest.approx(grow, abs=1e-9)
        assert new[4_096]["kv_cache_gib"] - new[m]["kv_cache_gib"] == pytest.approx(grow, abs=1e-9)
        # 0.12 has no WorkspaceManager reservation (vllm 0.12.0 sdist deepseek_v2.py:767-786; it arrives in 0.13.0,
        # deepseek_v2.py:622-627 -- compressed.DSA_INDEXER_WORKSPACE_FROM, by version since branch versionaudit)
        assert old[m]["activation_gib"] == old[4_096]["activation_gib"]
    assert new[65_536]["activation_gib"] == new[4_096]["activation_gib"]          # 346 MB < 0.65 GiB of MoE
    assert round(new[202_752]["activation_gib"] - new[4_096]["activation_gib"], 3) == 0.350


def test_index_head_dim_is_carried_on_the_layer_entry():
    """The indexer's key width rides on ``LayerKV.index_head_dim`` (set from the config's ``index_head_dim`` where the
    DSA layer spec is built), not recovered from the cache entry's 132 bytes; ``tables.dsa_indexer_workspace`` reads
    it, from vLLM 0.13 on, and layers without an indexer (IndexCache "S" layers) carry 0."""
    from types import SimpleNamespace

    from reportgen.estimate import kvcache as kv
    from reportgen.estimate.tables import dsa_indexer_workspace

    spec = build_spec(GLM5)
    assert GLM5["index_head_dim"] == 128
    assert {(l.index_head_dim, l.index_token_bytes) for l in spec.layers_kv} == {(128, 132)}
    g = kv.kv_groups(spec, 8, 1, "auto", 2, 16)
    assert dsa_indexer_workspace(g, spec, SimpleNamespace(first=(0, 20))).dsa_ix == 128
    assert dsa_indexer_workspace(g, spec, SimpleNamespace(first=(0, 11))).dsa_ix == 0
    cfg = dict(GLM5, index_head_dim=256, index_topk_pattern="FS" * (GLM5["num_hidden_layers"] // 2),
               indexer_types=["full", "shared"] * (GLM5["num_hidden_layers"] // 2))
    wide = build_spec(cfg)
    assert [l.index_head_dim for l in wide.layers_kv[:4]] == [256, 0, 256, 0]
    assert [l.index_token_bytes for l in wide.layers_kv[:2]] == [256 + 2 * 4, 0]
    assert dsa_indexer_workspace(kv.kv_groups(wide, 8, 1, "auto", 2, 16), wide,
                                 SimpleNamespace(first=(0, 20))).dsa_ix == 256


# FlashMLA-sparse's q-concat buffer (branch dsa2): vllm/v1/attention/backends/mla/flashmla_sparse.py of the v0.20.0 sdist,
# ``FlashMLASparseImpl.__init__`` lines 750-776 -- ``max_tokens = vllm_config.scheduler_config.max_num_batched_tokens``,
# ``q_concat_shape = (max_tokens, num_heads, head_size)``, and for a cache other than fp8_ds_mla
# ``(self.q_concat_buffer,) = current_workspace_manager().get_simultaneous((q_concat_shape, torch.bfloat16),)``: a view
# the layer keeps, made inside ``load_model``'s DeviceMemoryProfiler (gpu_model_runner.py:4788, "Model loading took").
# The same code in the v0.18.0 .. v0.24.0 sdists; v0.17.0 reserves the fp8 gather only; v0.25.0's cuda.py
# ``_get_backend_priorities`` puts FLASH_ATTN_MLA_SPARSE (SM 9.x, bf16 caches, no workspace) ahead on SM 9.x.
GLM5_TP8_Q_CONCAT = 8_192 * (64 // 8) * 576 * 2


def test_flashmla_sparse_q_concat_bytes():
    """GLM-5 at TP 8 (64 heads -> 8 a rank), 576-wide latent, bf16, 8,192 batched tokens: 75,497,472 B = 72 MiB a rank,
    only for a bf16 cache (an fp8_ds_mla cache is left out: ``tables.flashmla_sparse_q_concat``)."""
    from reportgen.estimate import kvcache as kv
    from reportgen.estimate.tables import flashmla_sparse_q_concat

    spec = build_spec(GLM5)
    assert GLM5_TP8_Q_CONCAT == 75_497_472 == 72 * 1024 ** 2
    g = kv.kv_groups(spec, 8, 1, "auto", 2, 16)
    assert flashmla_sparse_q_concat(g, spec, 8, 2).fm_qc * 8_192 == GLM5_TP8_Q_CONCAT
    assert flashmla_sparse_q_concat(g, spec, 4, 2).fm_qc == 16 * 576 * 2      # heads split by TP
    assert flashmla_sparse_q_concat(g, spec, 8, 1).fm_qc == 0                # fp8_ds_mla: not priced


def test_flashmla_q_concat_gate_per_gpu_and_version():
    """(on, fewest heads a rank, padding): SM 9.x (and a GPU of unknown capability: the H100 default) under vLLM
    0.18-0.24 at any heads (v0.25.0's cuda.py ``_get_backend_priorities`` lists FLASH_ATTN_MLA_SPARSE first on SM 9.x);
    SM 10.x above 16 heads a rank (v0.20.0 cuda.py lines 97-108: FLASHINFER_MLA_SPARSE first at ``num_heads <= 16``)
    under 0.18-0.28, and 0.29-0.30 with the heads padded to 128 (v0.29.0 flashmla_sparse.py lines 590-597,
    ``prefill_padding`` 128 on SM 10.x); nothing from 0.31 (no kept view) nor on SM 8.x / 12.x."""
    from reportgen.estimate.tables import flashmla_q_concat_on

    for v in ((0, 18), (0, 19), (0, 20), (0, 24)):
        assert flashmla_q_concat_on((9, 0), v) == flashmla_q_concat_on(None, v) == (1.0, 0, 0)
    for v in ((0, 17), (0, 25), (0, 29), None):
        assert flashmla_q_concat_on((9, 0), v)[0] == 0.0
    assert flashmla_q_concat_on((10, 0), (0, 18)) == flashmla_q_concat_on((10, 0), (0, 28)) == (1.0, 17, 0)
    assert flashmla_q_concat_on((10, 0), (0, 29)) == flashmla_q_concat_on((10, 3), (0, 30)) == (1.0, 17, 128)
    for cc, v in (((10, 0), (0, 17)), ((10, 0), (0, 31)), ((8, 0), (0, 20)), ((12, 0), (0, 20))):
        assert flashmla_q_concat_on(cc, v)[0] == 0.0


def test_the_matrix_adds_the_q_concat_buffer_to_the_weights():
    """The matrix's GLM-5 TP 8 rows on an H200 (SM 9.0): +72 MiB of weights (load-time memory) and -72 MiB of KV under
    0.19 / 0.20 with a bf16 cache; nothing on an SM 10.0 GPU, under 0.17 / 0.26, or with an fp8 cache."""
    lens = [4_096]
    d = GLM5_TP8_Q_CONCAT / GIB
    for version in ("0.19", "0.20"):
        h, b = _cells(version, lens, cc=(9, 0))[4_096], _cells(version, lens, cc=(10, 0))[4_096]
        assert h["weights_gib"] - b["weights_gib"] == pytest.approx(d, abs=1e-9)
        assert b["kv_cache_gib"] - h["kv_cache_gib"] == pytest.approx(d, abs=1e-9)
        assert h["activation_gib"] == b["activation_gib"]
    for version, kd in (("0.17", "auto"), ("0.26", "auto"), ("0.20", "fp8")):
        h, b = _cells(version, lens, kd, cc=(9, 0))[4_096], _cells(version, lens, kd, cc=(10, 0))[4_096]
        assert h["weights_gib"] == b["weights_gib"] and h["kv_cache_gib"] == b["kv_cache_gib"]


def test_sm10_runs_flashmla_sparse_above_16_heads_a_rank():
    """On SM 10.x FlashMLA-sparse (and its kept buffer) runs only above 16 heads a rank: GLM-5 at TP 2 (32 heads a
    rank) gets 8,192 x 32 x 576 x 2 B under 0.20 and, padded to 128 heads, 8,192 x 128 x 576 x 2 B under 0.29; at TP 8
    (8 heads a rank) FlashInfer-MLA-sparse runs and nothing is added.  SM 8.0 is the reference without the buffer."""
    lens = [4_096]

    def extra(version, tp):
        return (_cells(version, lens, cc=(10, 0), tp=tp)[4_096]["weights_gib"]
                - _cells(version, lens, cc=(8, 0), tp=tp)[4_096]["weights_gib"])

    assert extra("0.20", 2) == pytest.approx(8_192 * 32 * 576 * 2 / GIB, abs=1e-9)
    assert extra("0.29", 2) == pytest.approx(8_192 * 128 * 576 * 2 / GIB, abs=1e-9)
    assert extra("0.20", 8) == 0 and extra("0.31", 2) == 0
