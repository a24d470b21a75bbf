"""vLLM 0.33+ FlashInfer GDN prefill checkpoints (estimate/hybrid.py "FlashInfer GDN prefill checkpoints").

Every expected value is derived by hand from the vLLM formulas (sdists /work/vllm_src/vllm-0.3x.0):

- state page of one Qwen GDN layer on a rank (MambaSpec.page_size_bytes before padding): conv
  ``(kernel - 1) x (2 nk hk + nv hv) / tp`` in the model dtype + delta-rule state ``nv / tp x hv x hk`` in the ssm
  dtype (Qwen3.5 ships float32, Qwen3-Next the model dtype);
- attention block = ``align x cdiv(state page, align x attn page of one token)`` with ``align = max(16, block_size)``
  (0.20+), and from 0.33 with checkpoints ``lcm(align, 64)`` (platforms/interface.py:1101-1106 in 0.34.0);
- state blocks a request in align mode: ``2 + num_prefill_checkpoint_blocks`` (kv_cache_interface.py:1167-1173);
- checkpoint buffer: ``cdiv(max_num_batched_tokens, block) x nv / tp x hv x hk x 4`` (qwen_gdn_linear_attn.py:924-938).

Qwen3.5-35B-A3B (bundled config): 40 layers, every 4th full attention (10 full, 30 GDN), 2 KV heads x 256, GDN
16 key / 32 value heads of 128, conv kernel 4, float32 ssm state, bf16.  One rank:
  conv 3 x (2 x 16 x 128 + 32 x 128) x 2 = 49,152 B; ssm 32 x 128 x 128 x 4 = 2,097,152 B; page 2,146,304 B;
  attention 2 x 2 x 256 x 2 = 2,048 B a token a layer.
  block at align 64 (0.34's default block size 64; or 0.33 with checkpoints, lcm(16, 64)): 64 x cdiv(2,146,304,
  131,072) = 64 x 17 = 1088; at align 16 (0.32 / 0.33 without checkpoints): 16 x cdiv(2,146,304, 32,768) = 16 x 66
  = 1056.  Groups: 30 GDN / 10 full -> group size 10 -> 3 state groups + 1 full = 4; a block on the one stage is
  10 pages = 10 x block x 2,048 B.
Qwen3-Next-80B-A3B: 48 layers (12 full, 36 GDN), same head counts, bf16 ssm state: page 49,152 + 32 x 128 x 128 x 2
  = 1,097,728 B; block at align 64: 64 x cdiv(1,097,728, 131,072) = 64 x 9 = 576; at 16: 16 x 34 = 544 (row 71's
  logged 544 at TP2 is the same: both pages halve).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.estimate import hybrid
from reportgen.estimate.kvcache import kv_groups

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
H100, A100, L40S, B200, B300, THOR, RTX_PRO_6000 = (9, 0), (8, 0), (8, 9), (10, 0), (10, 3), (11, 0), (12, 0)
MIB = 2**20


def _spec(name: str, **text_overrides):
    cfg = json.loads((BUNDLED / name).read_text())
    (cfg.get("text_config") or cfg).update(text_overrides)
    return build_spec(cfg)


@pytest.fixture(scope="module")
def q35():
    return _spec("Qwen--Qwen3.5-35B-A3B.json")


@pytest.fixture(scope="module")
def next80b():
    return _spec("Qwen--Qwen3-Next-80B-A3B-Instruct.json")


def _groups(spec, version, block, capability=H100, prefix_caching=None, tp=1):
    mode = hybrid.state_cache_mode(".".join(map(str, version)), prefix_caching)
    ck = hybrid.gdn_checkpoints(spec, version, mode, capability)
    return kv_groups(spec, tp, 1, "auto", 2, block, state_conv_bytes=2, state_mode=mode, default_block=block,
                     version=version, gdn_checkpoint=ck), ck


def test_which_gpus_and_releases(q35):
    # _resolve_gdn_prefill_backend("auto"): SM 9.0, or SM 10.x / 12.x with head_k_dim 128 and CUDA 13 (the release
    # wheels'); SM 8.x and 11.x stay on Triton / CuteDSL (no checkpoint export)
    on = {cap: hybrid.gdn_checkpoints(q35, (0, 34), "align", cap)
          for cap in (H100, A100, L40S, B200, B300, THOR, RTX_PRO_6000)}
    assert on == {H100: True, A100: False, L40S: False, B200: True, B300: True, THOR: False, RTX_PRO_6000: True}
    assert hybrid.gdn_checkpoints(q35, (0, 33), "align", H100)
    assert not hybrid.gdn_checkpoints(q35, (0, 32), "align", H100)          # absent in the 0.32.0 sdist
    assert not hybrid.gdn_checkpoints(q35, (0, 34), "none", H100)           # prefix caching off
    # a CUDA 12 runtime keeps Blackwell on Triton, Hopper does not care
    assert not hybrid.flashinfer_gdn_prefill(B200, 128, cuda_major=12)
    assert hybrid.flashinfer_gdn_prefill(H100, 128, cuda_major=12)
    # head_k_dim != 128: only Hopper
    assert hybrid.flashinfer_gdn_prefill(H100, 64) and not hybrid.flashinfer_gdn_prefill(B200, 64)


def test_only_qwen_gdn_layers(q35):
    # OLMo-Hybrid's GDN layer (olmo_gdn_linear_attn.py) keeps MambaBase's spec: no checkpoints
    olmo = type("S", (), {"model_type": "olmo_hybrid", "layers_kv": q35.layers_kv})()
    assert not hybrid.gdn_checkpoints(olmo, (0, 34), "align", H100)


def test_qwen35_35b_h100_034_vs_032(q35):
    g34, ck = _groups(q35, (0, 34), 64)
    assert ck
    assert (g34.token_block, g34.n_groups, g34.n_state, g34.state_blocks) == (1088, 4, 3, 3)
    assert g34.stage_bytes_per_block == (10 * 1088 * 2048,)
    # checkpoint buffer on the H100 (8192 batched tokens by default): cdiv(8192, 1088) = 8 rows of 32 x 128 x 128 x 4
    assert g34.ck_b == 32 * 128 * 128 * 4 == 2 * MIB
    assert g34.checkpoint_workspace_bytes(8192) == 8 * 2 * MIB
    assert g34.checkpoint_workspace_bytes(16384) == 16 * 2 * MIB      # cdiv(16384, 1088) = 16 (B200's default)

    g32, ck32 = _groups(q35, (0, 32), 16)
    assert not ck32
    assert (g32.token_block, g32.n_state, g32.state_blocks, g32.ck_b) == (1056, 3, 2, 0)
    assert g32.stage_bytes_per_block == (10 * 1056 * 2048,)
    assert g32.checkpoint_workspace_bytes(8192) == 0.0

    # the same 60 GiB of KV memory: num_blocks = bytes // block bytes, tokens = num_blocks // 4 groups x block,
    # concurrency at 262,144 = num_blocks / (cdiv(M, block) + 3 groups x state blocks)
    kv = 60 * 2**30
    nb34 = kv // (10 * 1088 * 2048)          # 2891
    nb32 = kv // (10 * 1056 * 2048)          # 2978
    assert (nb34, nb32) == (2891, 2978)
    assert g34.kv_cache_tokens(nb34, 262144) == 2891 // 4 * 1088 == 785_536
    assert g32.kv_cache_tokens(nb32, 262144) == 2978 // 4 * 1056 == 785_664
    assert g34.blocks_per_request(262144, 8192) == 241 + 3 * 3 == 250     # cdiv(262144, 1088) = 241
    assert g32.blocks_per_request(262144, 8192) == 249 + 3 * 2 == 255     # cdiv(262144, 1056) = 249
    # at the same 0.34 block, the checkpoint block alone: 247 -> 250 blocks a request (-1.2 % concurrency)
    g34_off = kv_groups(q35, 1, 1, "auto", 2, 64, state_conv_bytes=2, state_mode="align", default_block=64,
                        version=(0, 34), gdn_checkpoint=False)
    assert g34_off.token_block == 1088 and g34_off.blocks_per_request(262144, 8192) == 247
    assert nb34 / 250 == pytest.approx(11.564)


def test_qwen35_033_block_alignment(q35):
    # 0.33's default block size is 16: the checkpoint alignment lcm(16, 64) = 64 moves the block 1056 -> 1088
    g33, ck = _groups(q35, (0, 33), 16)
    assert ck and (g33.token_block, g33.state_blocks) == (1088, 3)
    g33a, ck_a = _groups(q35, (0, 33), 16, capability=A100)
    assert not ck_a and (g33a.token_block, g33a.state_blocks, g33a.ck_b) == (1056, 2, 0)


def test_next80b_h100(next80b):
    g, ck = _groups(next80b, (0, 34), 64)
    assert ck and (g.token_block, g.n_groups, g.state_blocks) == (576, 4, 3)
    assert g.stage_bytes_per_block == (12 * 576 * 2048,)
    # cdiv(8192, 576) = 15 rows of 2 MiB
    assert g.checkpoint_workspace_bytes(8192) == 15 * 2 * MIB
    g33, _ = _groups(next80b, (0, 33), 16)
    assert g33.token_block == 576                          # 544 without checkpoints, 64 x 9 with
    g32, _ = _groups(next80b, (0, 32), 16)
    assert (g32.token_block, g32.state_blocks) == (544, 2)
    # TP2: pages halve, the same blocks; the buffer's rows halve (16 value heads a rank)
    g2, _ = _groups(next80b, (0, 34), 64, tp=2)
    assert (g2.token_block, g2.ck_b) == (576, 16 * 128 * 128 * 4)


def test_a100_and_prefix_caching_off_unchanged(q35, next80b):
    for spec in (q35, next80b):
        base = kv_groups(spec, 1, 1, "auto", 2, 64, state_conv_bytes=2, state_mode="align", default_block=64,
                         version=(0, 34))
        a100, ck = _groups(spec, (0, 34), 64, capability=A100)
        assert not ck and a100 == base and a100.state_blocks == 2
        off, ck_off = _groups(spec, (0, 34), 64, prefix_caching=False)
        assert not ck_off and off.state_blocks == 1 and off.ck_b == 0
        # asked for anyway, mode none holds one state block and no buffer (the layer checks align mode)
        forced = kv_groups(spec, 1, 1, "auto", 2, 64, state_conv_bytes=2, state_mode="none", default_block=64,
                           version=(0, 34), gdn_checkpoint=True)
        assert forced == off


# ---- through the matrix (tables.ModelTables.mxfp4_variant's third item GDN_CHECKPOINT, per GPU) ----

GIB = 2**30


def _est(spec, gpu: str, version: str, m: int, **kw):
    from reportgen.catalog import load_catalog
    from reportgen.matrix import estimate_one
    return estimate_one(spec, load_catalog().get(gpu), max_model_len=m, vllm_version=version, **kw)


def _blocks(r: dict, block_bytes: int) -> int:
    return int(r["kv_cache_gib"] * GIB // block_bytes)


def test_matrix_qwen35_35b_h100_a100_034(q35):
    """Qwen3.5-35B-A3B at 262,144 tokens, vLLM 0.34 defaults (prefix caching on: align mode).  H100: 3 state
    blocks a request, so max concurrency = num_blocks / (241 + 3 x 3); the 16 MiB buffer (8 rows) sits inside the
    fused-MoE workspace the WorkspaceManager already holds at 8192 tokens, so the activation does not move.
    A100 (SM 8.0: Triton, no checkpoints): num_blocks / (241 + 3 x 2)."""
    bb = 10 * 1088 * 2048
    h = _est(q35, "H100", "0.34", 262144)
    h_off = _est(q35, "H100", "0.34", 262144, enable_prefix_caching=False)
    assert h["block_size"] == 1088 and h["max_num_batched_tokens"] == 8192
    assert h["max_concurrency"] == pytest.approx(_blocks(h, bb) / 250, abs=1e-3)
    assert h["activation_gib"] == h_off["activation_gib"]
    assert h_off["max_concurrency"] == pytest.approx(_blocks(h_off, bb) / (241 + 3), abs=1e-3)
    a = _est(q35, "A100", "0.34", 262144)
    assert a["block_size"] == 1088
    assert a["max_concurrency"] == pytest.approx(_blocks(a, bb) / 247, abs=1e-3)
    # 0.32 on the H100: no checkpoints, block 1056 (align 16), 2 state blocks
    h32 = _est(q35, "H100", "0.32", 262144)
    assert h32["block_size"] == 1056
    assert h32["max_concurrency"] == pytest.approx(_blocks(h32, 10 * 1056 * 2048) / (249 + 6), abs=1e-3)


@pytest.fixture(scope="module")
def q35_9b():
    return _spec("RedHatAI--Qwen3.5-9B-quantized.w4a16.json")


def test_matrix_qwen35_9b_dense_workspace(q35_9b):
    """Qwen3.5-9B (dense: no fused-MoE workspace to share): 32 layers (8 full, 24 GDN), 4 KV heads x 256, the same
    GDN state (page 2,146,304 B); attention 2 x 4 x 256 x 2 = 4,096 B a token a layer; block 64 x cdiv(2,146,304,
    262,144) = 576 at 0.34 (16 x cdiv(.., 65,536) = 528 at 0.32).  On the H100 (8192 batched tokens) the checkpoint
    buffer is cdiv(8192, 576) = 15 rows of 32 x 128 x 128 x 4 = 2 MiB: +30 MiB of activation; a request at 32,768
    holds cdiv(32768, 576) = 57 + 3 x 3 blocks.  A100: no buffer, 57 + 3 x 2."""
    bb = 8 * 576 * 4096
    on = _est(q35_9b, "H100", "0.34", 32768)
    off = _est(q35_9b, "H100", "0.34", 32768, enable_prefix_caching=False)
    assert on["block_size"] == 576
    assert on["activation_gib"] - off["activation_gib"] == pytest.approx(15 * 2 * 2**20 / GIB, abs=1e-9)
    assert on["max_concurrency"] == pytest.approx(_blocks(on, bb) / 66, abs=1e-3)
    assert off["max_concurrency"] == pytest.approx(_blocks(off, bb) / (57 + 3), abs=1e-3)
    a_on = _est(q35_9b, "A100", "0.34", 32768)
    a_off = _est(q35_9b, "A100", "0.34", 32768, enable_prefix_caching=False)
    assert a_on["activation_gib"] == a_off["activation_gib"] and a_on["kv_cache_gib"] == a_off["kv_cache_gib"]
    assert a_on["max_concurrency"] == pytest.approx(_blocks(a_on, bb) / 63, abs=1e-3)
    # 0.32 on the H100: unchanged by this branch (block 528, 2 state blocks, no buffer)
    h32 = _est(q35_9b, "H100", "0.32", 32768)
    h32_off = _est(q35_9b, "H100", "0.32", 32768, enable_prefix_caching=False)
    assert h32["block_size"] == 528 and h32["activation_gib"] == h32_off["activation_gib"]
    assert h32["max_concurrency"] == pytest.approx(_blocks(h32, 8 * 528 * 4096) / (63 + 6), abs=1e-3)


def test_mixed_fleet_each_gpu_as_its_own_estimate(q35_9b):
    """One 0.34 matrix over an H100 (checkpoints), an A100 (none) and a B200 (SM 10.0, head_k_dim 128, CUDA 13:
    checkpoints): the GDN rows split per GPU, each equal to its one-GPU estimate."""
    from reportgen.catalog import load_catalog
    from reportgen.job import Matrix
    from reportgen.matrix import ModelEntry, evaluate_matrix
    cat = load_catalog()
    skus = [cat.get("H100"), cat.get("A100"), cat.get("B200")]
    mx = Matrix(vllm_version="0.34", max_model_len=[32768], concurrency=[1])
    df = evaluate_matrix([ModelEntry("RedHatAI/Qwen3.5-9B-quantized.w4a16", q35_9b)], skus, mx)
    got = {row["gpu"]: row for row in df.iter_rows(named=True)}
    for sku in skus:
        one = _est(q35_9b, sku.id, "0.34", 32768)
        for k in ("kv_cache_gib", "activation_gib", "max_concurrency"):
            assert got[sku.id][k] == pytest.approx(one[k]), (sku.id, k)
    # the B200's 16,384 batched tokens: cdiv(16384, 576) = 29 rows of 2 MiB beside the A100-style estimate
    b = _est(q35_9b, "B200", "0.34", 32768)
    b_off = _est(q35_9b, "B200", "0.34", 32768, enable_prefix_caching=False)
    assert b["activation_gib"] - b_off["activation_gib"] == pytest.approx(29 * 2 * 2**20 / GIB, abs=1e-9)


def test_mamba2_hybrids_checkpoint_block_from_032():
    """vLLM 0.32+ MambaMixer2 declares ``num_prefill_checkpoint_blocks=1`` (alignment 1) on every GPU
    (vllm 0.32.0 sdist model_executor/layers/mamba/mamba_mixer2.py:1098-1108; not in 0.31.0): Nemotron-3-Nano-30B-A3B
    (bf16; 23 Mamba-2 + 6 attention layers, groups of 6: 4 state groups) holds 3 state blocks a request in align
    mode from 0.32, 2 under 0.31, 1 with prefix caching off; the block size does not move (alignment 1) and
    there is no buffer."""
    spec = _spec("nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.json")
    g31 = kv_groups(spec, 1, 1, "auto", 2, 16, state_conv_bytes=2, state_mode="align", version=(0, 31))
    g32 = kv_groups(spec, 1, 1, "auto", 2, 16, state_conv_bytes=2, state_mode="align", version=(0, 32))
    none = kv_groups(spec, 1, 1, "auto", 2, 16, state_conv_bytes=2, state_mode="none", version=(0, 32))
    assert (g31.n_state, g31.state_blocks, g32.state_blocks, none.state_blocks) == (4, 2, 3, 1)
    assert g31.token_block == g32.token_block == none.token_block and g32.ck_b == 0
    m = 131072
    assert g32.blocks_per_request(m, 8192) - g31.blocks_per_request(m, 8192) == 4
    # through the matrix on an A100 (no FlashInfer: the Mamba-2 rule is GPU-independent), 0.34 defaults
    a = _est(spec, "A100", "0.34", m)
    g34 = kv_groups(spec, 1, 1, "auto", 2, 64, state_conv_bytes=2, state_mode="align", version=(0, 34))
    assert a["block_size"] == g34.token_block and g34.state_blocks == 3
    nb = int(a["kv_cache_gib"] * GIB // g34.stage_bytes_per_block[0])
    assert a["max_concurrency"] == pytest.approx(nb / (-(-m // g34.token_block) + 4 * 3), abs=1e-3)
