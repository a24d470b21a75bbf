#!/usr/bin/env python
"""Run the estimator on every vLLM start-up log row it can read; print predicted vs measured.

Why a script and not a typed table: the accuracy table in README.md and
docs/accuracy.md must be regenerated whenever the estimator changes, from the
rows themselves (tests/data/vllm_logs.csv, a copy of shared/reference/vllm_logs.csv).

A row is run when its model's config is readable: the bundled snapshot
(reportgen/sources/bundled), or a *proxy* -- the same architecture under another
id (an -Instruct twin, or the base model with vLLM's online quantization for a
RedHatAI fp8/w8a8 re-upload).  Proxies are marked in the output.

Targets (issue 4) on the v0.19 H100 full-breakdown rows: weights within 1 %
(or 0.05 GiB), KV cache GiB within 3 %, KV tokens within 5 %, and no row where
vLLM started but we say no_fit (or the reverse).  PP rows compare against the
first stage (vLLM logs rank 0); tokens always compare the engine-wide figure.

Usage: python scripts/validate_vllm_logs.py [--csv PATH] [--no-write] [--all]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reportgen.arch import build_spec  # noqa: E402
from reportgen.matrix import GpuLike, ModelEntry, evaluate_matrix_lazy  # noqa: E402
from reportgen.job import Matrix  # noqa: E402

CSV = ROOT / "tests" / "data" / "vllm_logs.csv"
CSV_2026 = ROOT / "tests" / "data" / "vllm_logs_2026.csv"
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
# configs of logged models that are not bundled (tests/data/configs_*/SOURCES.md)
CONFIG_DIRS = (BUNDLED, ROOT / "tests" / "data" / "configs_2026", ROOT / "tests" / "data" / "configs_profiles")
README = ROOT / "README.md"
ACCURACY_MD = ROOT / "docs" / "accuracy.md"
# hand-written: the hybrid start-ups are checked by tests/test_hybrid_logs.py, not by this script's runner;
# their section is carried into accuracy.md verbatim so a regeneration never drops it
HYBRID_MD = ROOT / "docs" / "accuracy_hybrids.md"
# hand-written likewise: speculative-decoding start-ups (rows whose command had --speculative-config)
SPEC_MD = ROOT / "docs" / "accuracy_specdecode.md"
START, END = "<!-- accuracy:start -->", "<!-- accuracy:end -->"

# same architecture under another id: (config id, weight dtype to cost, why)
PROXIES: dict[str, tuple[str, str, str]] = {
    "RedHatAI/Llama-3.3-70B-Instruct-fp8-dynamic": (
        "meta-llama/Meta-Llama-3.1-70B", "fp8", "Llama-3.1-70B config + fp8 per-channel (compressed-tensors fp8-dynamic)"),
    "RedHatAI/Qwen2.5-7B-Instruct-fp8-dynamic": (
        "Qwen/Qwen2.5-7B-Instruct", "fp8", "Qwen2.5-7B-Instruct config + fp8 per-channel"),
    "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8": (
        "meta-llama/Llama-3.1-8B-Instruct", "int8", "Llama-3.1-8B config + int8 per-channel (w8a8)"),
    "google/gemma-2-9b-it": ("google/gemma-2-9b", "checkpoint", "base-model config (same architecture)"),
    "mistralai/Mixtral-8x7B-Instruct-v0.1": ("mistralai/Mixtral-8x7B-v0.1", "checkpoint", "base-model config"),
    "ibm-granite/granite-3.1-8b-instruct": (
        "ibm-granite/granite-3.3-8b-instruct", "checkpoint", "granite-3.3 config (vocab 49159 vs 49155)"),
    "meta-llama/Llama-3.1-8B-Instruct": ("meta-llama/Llama-3.1-8B-Instruct", "checkpoint", ""),
    "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8": ("Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8", "checkpoint", ""),
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": (
        "nvidia/Qwen3-235B-A22B-NVFP4", "fp8", "Qwen3-235B-A22B config (same architecture) + fp8 block-scaled"),
    "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic": (
        "meta-llama/Meta-Llama-3.1-70B", "fp8", "Llama-3.1-70B config + fp8 per-channel (compressed-tensors fp8-dynamic)"),
}
PROXIES["Qwen/Qwen2.5-0.5B-Instruct"] = (
    "Qwen/Qwen2.5-0.5B", "checkpoint", "base-model config (same architecture, tied embeddings)")
# rows 154 / 155 (RTX 4090, vLLM 0.27.1): the RedHatAI FP8-dynamic re-upload and Qwen's own GPTQ-Int4 checkpoint
PROXIES["RedHatAI/Qwen2.5-7B-Instruct-FP8-dynamic"] = PROXIES["RedHatAI/Qwen2.5-7B-Instruct-fp8-dynamic"]
PROXIES["Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4"] = (
    "Qwen/Qwen2.5-7B-Instruct", "int4", "Qwen2.5-7B-Instruct config + int4 group-128 weights (GPTQ checkpoint config not offline)")
# rows 157-160 (GB10, vLLM 0.30): a Qwen3-30B-A3B-2507 FP8 twin, a Qwen3-14B fine-tune, an unsloth GLM-4.7-Flash FP8 re-upload
PROXIES["Qwen/Qwen3-30B-A3B-Thinking-2507-FP8"] = (
    "Qwen/Qwen3-30B-A3B-FP8", "checkpoint", "Qwen3-30B-A3B-FP8 config (same architecture, block-scaled fp8)")
PROXIES["NousResearch/Hermes-4-14B-FP8"] = (
    "Qwen/Qwen3-14B", "fp8", "Qwen3-14B config (Hermes-4-14B is a Qwen3-14B fine-tune) + fp8 per-channel")
PROXIES["unsloth/GLM-4.7-Flash-FP8-Dynamic"] = (
    "zai-org/GLM-4.7-Flash", "fp8", "GLM-4.7-Flash config + fp8 everywhere (the checkpoint keeps some layers bf16: listed only)")
# rows 162 / 163 (L40S, vLLM 0.29.0): Qwen's AWQ checkpoint of Qwen3-14B
PROXIES["Qwen/Qwen3-14B-AWQ"] = (
    "Qwen/Qwen3-14B", "int4", "Qwen3-14B config + int4 group-128 weights (AWQ checkpoint config not offline)")
# rows 164-166 (vLLM 0.25.1 on an L40S; 0.20.1rc1 on a WSL2 Blackwell card): Gemma-4-26B-A4B-it served in fp8 (the
# checkpoint is not named: the base config + vLLM's online fp8), and a Nemotron-3-Nano fine-tune's NVFP4 re-upload
PROXIES["google/gemma-4-26B-A4B-it"] = (
    "google/gemma-4-26B-A4B", "checkpoint", "gemma-4-26B-A4B base config (same architecture); fp8 as --quantization fp8")
PROXIES["chankhavu/Nemotron-Cascade-2-30B-A3B-NVFP4"] = (
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4", "checkpoint",
    "NVIDIA's Nemotron-3-Nano-30B-A3B NVFP4 config and hf_quant_config.json (Nemotron-Cascade-2 is a fine-tune of "
    "it, quantized with the same ModelOpt NVFP4 recipe)")
# row 169 (0.23.0, Kaggle): google/gemma-4-31B-it in bf16; the only offline copy of its architecture is NVIDIA's NVFP4
# re-upload (tests/data/configs_2026/SOURCES.md), costed with its quantization_config ignored
PROXIES["google/gemma-4-31B-it"] = (
    "nvidia/Gemma-4-31B-IT-NVFP4", "bf16", "gemma-4-31B-it architecture (nvidia NVFP4 re-upload config), bf16 weights")
# row 171 (0.20.x, RTX PRO 6000 Blackwell Server Edition on Colab): Qwen3-Reranker-8B, a Qwen3-8B-geometry
# Qwen3ForCausalLM run as a generator (yes / no logprobs); its own config.json is not offline
PROXIES["Qwen/Qwen3-Reranker-8B"] = (
    "Qwen/Qwen3-8B", "checkpoint", "Qwen3-8B config (same Qwen3ForCausalLM geometry: 36 layers, hidden 4096, 8 KV heads)")
# rows 172 / 173 (0.27.1, the WSL2 RTX 4090 of rows 153-155): Qwen's FP8 (block-128) checkpoints of Qwen3-8B / 14B
PROXIES["Qwen/Qwen3-8B-FP8"] = ("Qwen/Qwen3-8B", "fp8", "Qwen3-8B config + fp8 weights (FP8 checkpoint config not offline)")
PROXIES["Qwen/Qwen3-14B-FP8"] = ("Qwen/Qwen3-14B", "fp8", "Qwen3-14B config + fp8 weights (FP8 checkpoint config not offline)")
# row 188 (0.20.0, Kaggle Tesla T4): Qwen's AWQ checkpoint of Qwen3-8B, as rows 162 / 163 take Qwen3-14B-AWQ
PROXIES["Qwen/Qwen3-8B-AWQ"] = (
    "Qwen/Qwen3-8B", "int4", "Qwen3-8B config + int4 group-128 weights (AWQ checkpoint config not offline)")
# row 192 (0.16.0, 2 x L40S): an AWQ re-upload of Llama-3-70B-Instruct; Llama-3.1-70B has its geometry (80 layers, hidden
# 8192, 8 KV heads, vocab 128,256) -- only the llama3 rope scaling and 131,072 positions differ (a larger rotary cache)
PROXIES["TechxGenus/Meta-Llama-3-70B-Instruct-AWQ"] = (
    "meta-llama/Meta-Llama-3.1-70B", "int4",
    "Llama-3.1-70B config (Llama-3-70B geometry) + int4 group-128 weights (AWQ checkpoint config not offline)")
# row 174 (0.28.0, A100): "Qwen3.8-27B", a qwen3_5 hybrid whose config is not offline; the Qwen3.5-27B config reproduces
# its logged weights (51.08 vs 51.1 GiB) and attention block (784), so it is run and scored on that proxy (branch
# gdnact: listed while the GDN profile-run term, which vLLM 0.11+ does not allocate, made it no_fit)
PROXIES["Qwen/Qwen3.8-27B"] = (
    "Qwen/Qwen3.5-27B", "checkpoint", "Qwen3.5-27B config (same qwen3_5 geometry by the logged weights and block size)")
# rows 175 / 176 (branch loghunt22; vLLM 0.20.1.dev1 / 0.19.1rc1.dev329 bisect builds, 8 x H200): zai-org/GLM-5.1-FP8, whose
# config.json is not offline; GLM-5.1 has GLM-5's geometry, and the GLM-5-FP8 config (tests/data/configs_2026/SOURCES.md)
# carries the block-fp8 quantization_config of the same release line
PROXIES["zai-org/GLM-5.1-FP8"] = (
    "zai-org/GLM-5-FP8", "checkpoint",
    "GLM-5-FP8 config (GLM-5.1 keeps the GLM-5 geometry; block-fp8 with GLM-5-FP8's modules_to_not_convert)")
# rows 177 / 178 (branch loghunt23; the 0.10 profile's started rows): the base Llama-3.2-1B, whose config is not
# offline (the Instruct twin's is: same LlamaForCausalLM geometry, tied embeddings), and Qwen3-Reranker-0.6B, a
# Qwen3ForCausalLM run as a yes / no generator with Qwen3-0.6B's geometry
PROXIES["meta-llama/Llama-3.2-1B"] = (
    "meta-llama/Llama-3.2-1B-Instruct", "checkpoint", "Llama-3.2-1B-Instruct config (same architecture as the base model)")
PROXIES["Qwen/Qwen3-Reranker-0.6B"] = (
    "Qwen/Qwen3-0.6B", "checkpoint", "Qwen3-0.6B config (same Qwen3ForCausalLM geometry: 28 layers, hidden 1024, 8 KV heads)")
PROXIES["mistralai/Mistral-Small-3.2-24B-Instruct-2506"] = (
    "mistralai/Mistral-Small-3.1-24B-Instruct-2503", "checkpoint", "Mistral-Small-3.1 config (same architecture)")
TARGET_VERSION = "0.19"
# device totals the log pins although it does not print them: F02 and F03 are the same start at
# util 0.90 and 0.95; their available KV differs by 6.99 GiB = 0.05 x 139.8 GiB, so the card is the
# 141 GB H20 (H20-3e), not the 96 GB one the row's GPU column names
TOTAL_OVERRIDES = {"F02": 139.8, "F03": 139.8,
                   # row 68: "46GB" card (27.52 GiB of weights = "60 %") -> L40S (46068 MiB); vLLM prints
                   # 44.42 GiB on an L40S (row 23)
                   "68": 44.42,
                   # L01: 0.9764 - 0.9543 = 0.0221 of the total is the 0.52 GiB graph estimate -> 23.53 GiB
                   "L01": 23.53,
                   # row 143: 0.9500 "is equivalent to" 0.9417 without graph profiling, i.e. the 0.37 GiB
                   # estimate is 0.0083 of the total -> 43.5-45.7 GiB: a 48 GB-class card (L40S / L40 / A40
                   # print 44.35-44.52); vLLM prints 44.42 for an L40S (row 23)
                   "143": 44.42,
                   # row 144: an A40 (46068 MiB); 48 GB-class cards print 44.31-44.42 (catalog L40 / L40S)
                   "144": 44.35,
                   # D01: "GH200 (2 GPUs, 96 GB each)", no total printed; assumed the 96 GB HBM3 the H20 rows
                   # print (95.08 GiB, GPU_TOTALS) -- the KV figure of this row depends on it, the verdict not
                   "D01": 95.08,
                   # row 52: "A100 (stated)"; 48.5 GiB of weights + 21.5 GiB of KV at util 0.9 need a > 77 GiB card:
                   # the 80 GB A100 (vLLM prints 79.25 GiB, GPU_TOTALS)
                   "52": 79.25,
                   # row 53 (same blog and card): 13.72 GiB of weights + 36.56 GiB of KV at util 0.65 need > 77 GiB
                   "53": 79.25,
                   # row 54: the blog names an H100, but its 5.97x at 262,144 needs 71.34 GiB of KV (9,797 blocks of
                   # 1.25 MiB per request, kvcache.py) -- more than an 80 GB H100's whole 71.27 GiB budget before the
                   # 31.18 GiB of weights.  The unified-memory GB10 total P01 prints (119.63 GiB) reproduces both
                   # logged figures; derived from the row itself, so the row is listed, not scored (UNSCORED)
                   "54": 119.63}
# settings a row's command implies but the CSV leaves empty: vLLM's defaults for that entry point
ROW_SETTINGS = {"68": {"gpu_memory_utilization": 0.9},             # `vllm serve Qwen/Qwen3-14B` (defaults)
                "L01": {"max_num_batched_tokens": 8192},           # offline LLM(): LLM-class default, < 70 GiB
                # 0.11 samples with FlashInfer when it is installed (VLLM_USE_FLASHINFER_SAMPLER unset: "in V1,
                # None means True"); the row's own activation peak (2.12 GiB for 1024 x 131072 logits) is the
                # no-sort sampler's, while rows 76-79 (same doc, 0.11) show the sort-based one.  Inferred from
                # this one row: the doc does not say which environment ran it.
                "80": {"flashinfer_sampler": True},
                # row 177 (0.10.1.dev source build, branch loghunt23): its log prints "[topk_topp_sampler.py:49] Using
                # FlashInfer for top-p & top-k sampling." -- the no-sort sampler of profiles.py's 0.10-0.16 note.
                # (Row 178 quotes no sampler line and keeps the default.)
                "177": {"flashinfer_sampler": True},
                # vllm#44376: offline LLM() on a >= 70 GiB Hopper (LLM-class default 16384 batched tokens, which
                # reproduces the logged 6.66 GiB / 13528 exactly: tests/test_compressed_kv.py); the version is not
                # stated, the issue is filed against v0.22
                "D01": {"max_num_batched_tokens": 16384, "vllm_version": "0.22"},
                # robotmunki.com: non-default args are model and max_num_batched_tokens only (util: the 0.9 default);
                # the version is not printed, but "GPU KV cache size" 1,563,739 = int(5.965 x 262,144) is no block
                # multiple: the 0.20.1+ rule (VllmProfile.tokens_from_concurrency; vllm 0.20.1 sdist
                # v1/core/kv_cache_utils.py:1706).  Run at 0.21 as before: no release is named, the row is listed,
                # not scored (UNSCORED), and 0.21 keeps its weights rule (max_split_size_mb, 0.21.0 on)
                "54": {"gpu_memory_utilization": 0.9, "vllm_version": "0.21"},
                # rows 166 (0.20.1rc1.dev91 nightly), 170 and 183 (0.20.2) print the concurrency x length token line:
                # they run at their own version since branch patchver (the 0.20.1 profile; they were forced to 0.21
                # here before).  Row 166's card, an "unnamed 32 GB Blackwell card", gets SM 12.0 from
                # GPU_CAPABILITIES_UNNAMED.  Row 170: its command's --moe-backend cutlass (the CSV has no column for
                # it; the log: "Using 'VLLM_CUTLASS' NvFp4 MoE backend") and its env
                # PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True: c10 should_split splits every block then, so no
                # weight keeps a 2 MiB-rounded block (weights.allocator_unsplit_bytes, branch quantalloc)
                "170": {"moe_backend": "cutlass", "expandable_segments": True},
                # row 171 ("0.20.x"): its "GPU KV cache size" / "Maximum concurrency" lines are kv_cache_utils.py:1708 /
                # 1709, the logger calls of the vllm 0.20.1 / 0.20.2 sdists (the 0.20.0 sdist logs them at :1711 / :1716,
                # after the block-multiple count at :1694-1697): at least 0.20.1
                "171": {"vllm_version": "0.20.1"},
                # row 184 (0.29.0 `vllm serve`, branch loghunt34): its log prints "Using FlashInfer for top-p & top-k
                # sampling" -- the no-sort sampler (row 185's stored excerpt has no sampler line: default kept)
                "184": {"flashinfer_sampler": True},
                # DeepSeek-V4-Flash TP 2 on two PCIe RTX PRO 6000 (search file id 56819795714): the command's
                # --speculative-config and --disable-custom-all-reduce (the CSV has no column for either)
                "156": {"speculative_config": {"method": "mtp", "num_speculative_tokens": 2},
                        "disable_custom_all_reduce": True}}
# rows run and listed but not scored: a setting that decides the KV figure is not in the source, or the source
# shows the profile charged memory the start did not keep (153: WSL2 desktop on the card, or another transient)
UNSCORED = {"N02": "entry point not shown: an offline LLM() script (LLM-class default max_num_batched_tokens "
                   "8192 on a < 70 GiB card: KV tokens -13.9 %) or the API server's 2048 (-3.2 %); the WSL2 "
                   "device total is not printed either",
            "157": "GB10 bench (vLLM 0.30): the engine arguments beyond util / max_model_len are not shown, and the "
                   "implied non-KV overhead (budget - weights - KV = 0.6 GiB at the P01 total of 119.63 GiB) is below "
                   "the logged graph estimate alone (~1.08 GiB): max_num_seqs / max_num_batched_tokens (or the unified-"
                   "memory total) differ from the defaults assumed",
            "159": "GB10 bench (vLLM 0.30), as row 157: engine arguments not shown; implied overhead 1.7 GiB with a "
                   "~1.2 GiB graph estimate leaves ~0.5 GiB for activation + non-torch, below any default-settings "
                   "profile of a 14B model",
            "158": "the unsloth checkpoint's quantization config is not offline: the all-fp8 proxy (with MLA's "
                   "dequantized bf16 kv_b_proj copy, 0.40 GiB) is 1.83 GiB lighter than the logged 30.80 GiB -- "
                   "~1.97e9 parameters kept bf16, more than attention + shared experts + the dense layer (1.52e9)",
            "160": "logged tokens are 1.24x the bf16-KV estimate (0.30 logs concurrency x length) while the same bench's other starts are within 5-13 %: "
                   "an fp8 KV cache or other engine arguments are likely but not shown",
            "54": "device total not printed and contradicted by the source: the logged 5.97x / 1,563,739 tokens do not "
                  "fit an 80 GB H100 (the blog's GPU) at util 0.9 and are reproduced (+0.1 %) at the GB10 total of 119.63 "
                  "GiB, which is inferred from this row's own KV figures; the version (>= 0.21) is inferred from the "
                  "token line's format",
            # WSL2 RTX 4090 session (file 61510271682; same desktop as rows 35 / N05): docs/decisions.md "WSL2 rows
            # 153-155"; tests/test_wsl_rows.py recomputes both comparisons from the rows and the quoted VRAM figures
            "153": "the start's non-KV charge was not memory vLLM kept: beyond weights and KV it took 2.40 GiB of the "
                   "22.07 GiB budget, 0.75 / 0.94 GiB more than the same session's FP8 / GPTQ starts (same code, "
                   "command and card), yet while serving nvidia-smi leaves the same 2.74 / 2.81 / 2.69 GiB beyond "
                   "weights + KV in all three.  On this WSL2 desktop Windows holds VRAM that moved by >= 1.3 GiB within "
                   "minutes the same evening (2,864 MiB used with no vLLM at 20:14:56; 1.54 GiB, vLLM's context "
                   "included, at row 35's start at 20:20), and vLLM counts any change of it during the profile as its "
                   "own non-torch memory (mem_utils.py MemorySnapshot: device-wide cudaMemGetInfo; gpu_worker.py "
                   "assumes other processes do not change): a profile-window transient no setting decides",
            "N06": "a RunPod worker's engine arguments (max_num_batched_tokens / max_num_seqs) and the RTX 4090's "
                   "printed total are not in the source"}
# device totals vLLM prints, for rows whose log does not (catalog usable_memory_gib)
GPU_TOTALS = (("H100", 79.19), ("H20", 95.08), ("A100 80GB", 79.25), ("RTX PRO 6000", 95.01),
              ("RTX 4090", 23.55), ("RTX 3090", 23.58))     # 3090: as rows 7-8 print

# how the logged GPUs are linked (catalog ``interconnect``; estimate/overheads.comm_terms), by the row's GPU
# text: the H100 / H200 / H20 rows are HGX (NVSwitch, NVLink SHARP) machines, the cards below PCIe-only
# (row N08 says so: 'SYS' topology, no NVLink).  A GPU not listed keeps the fitted terms.
GPU_INTERCONNECTS = (("RTX PRO 6000", "pcie"), ("RTX 3090", "pcie"), ("RTX 4090", "pcie"), ("RTX 4070", "pcie"), ("RTX 5060 Ti", "pcie"), ("RTX 5090", "pcie"),
                     ("RTX A5000", "pcie"), ("L40S", "pcie"), ("A40", "pcie"),
                     ("H100", "nvswitch_nvls"), ("H200", "nvswitch_nvls"), ("H20", "nvswitch_nvls"))


def gpu_interconnect(name: str) -> str:
    return next((ic for key, ic in GPU_INTERCONNECTS if key.lower() in (name or "").lower()), "")


# the logged GPU's CUDA compute capability (catalog ``compute_capability``; the MXFP4 MoE backend follows it:
# estimate/quant/layouts.mxfp4_moe_backend), by the row's GPU text, first match; unnamed and AMD GPUs: none
GPU_CAPABILITIES = (("RTX PRO 6000", (12, 0)), ("RTX 5090", (12, 0)), ("GB10", (12, 1)), ("GH200", (9, 0)),
                    ("GB200", (10, 0)), ("B200", (10, 0)), ("H100", (9, 0)), ("H200", (9, 0)), ("H20", (9, 0)),
                    ("A100", (8, 0)), ("L40S", (8, 9)), ("RTX 4090", (8, 9)), ("RTX 4070", (8, 9)), ("RTX 5060 Ti", (12, 0)), ("RTX 3090", (8, 6)),
                    ("RTX 3060", (8, 6)), ("RTX A5000", (8, 6)), ("RTX A6000", (8, 6)), ("A40", (8, 6)))


# unnamed cards whose text pins the capability: every 32 GB Blackwell card (RTX 5090, RTX PRO 4500 Blackwell) is
# SM 12.0 -- the SM 10.x Blackwell parts (B200 / B300) carry 180+ GB (rows 166 / 167: "unnamed 32 GB Blackwell card"
# under WSL2).  The one place such a row gets its capability: it picks the NVFP4 MoE backend (tables.nvfp4_backend_for)
GPU_CAPABILITIES_UNNAMED = (("32 gb blackwell", (12, 0)),)


def gpu_capability(name: str) -> tuple[int, int] | None:
    n = (name or "").lower()
    hit = next((cc for key, cc in GPU_CAPABILITIES_UNNAMED if key in n), None)
    if hit is not None:
        return hit
    if n.startswith("unnamed") or "amd" in n:
        return None
    return next((cc for key, cc in GPU_CAPABILITIES if key.lower() in n), None)


@dataclass
class Case:
    row: dict
    model: str
    config_id: str
    proxy: str
    spec: object
    weight_dtype: str
    matrix: Matrix
    memory_gib: float


def _f(v) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def _i(v, default=None):
    f = _f(v)
    return int(f) if f is not None else default


def load_rows(csv: Path | None = None) -> list[dict]:
    """Rows of one CSV, or (None) of both start-up log files, ``dataset`` naming the file."""
    files = [csv] if csv is not None else [CSV, CSV_2026]
    rows = []
    for f in files:
        for r in pl.read_csv(f, infer_schema_length=0).to_dicts():
            r["dataset"] = f.name
            rows.append(r)
    return rows


def _config_path(model_id: str) -> Path | None:
    """The offline copy of a model's config.json (``<owner>--<name>.json`` in CONFIG_DIRS), or None."""
    for d in CONFIG_DIRS:
        p = d / (model_id.replace("/", "--") + ".json")
        if p.exists():
            return p
    return None


def _config(model_id: str) -> dict | None:
    p = _config_path(model_id)
    return json.loads(p.read_text()) if p else None


def _side_files(model_id: str) -> dict:
    """The ModelOpt ``hf_quant_config.json`` kept beside a config (``<key>.hf_quant_config.json``, the bundled
    naming ``sources/local.local_config_path`` reads), as the source layer passes it to ``build_spec``; {} when
    there is none."""
    from reportgen.sources.local import local_config_path
    from reportgen.sources.resolved import QUANT_KEY
    p = _config_path(model_id)
    q = local_config_path(str(p))[1] if p else None
    return {QUANT_KEY: json.loads(q.read_text())} if q is not None and q.exists() else {}


def version_of(v: str | None) -> str | None:
    """The 0.x release a row's ``vllm_version`` text names, patch included when written ("0.16.1rc1.dev265+g..." ->
    "0.16.1", "~0.10.1" -> "0.10.1", ">=0.21" / "0.20.x" -> "0.21" / "0.20", "docker vllm/vllm-openai:v0.31.0" ->
    "0.31.0"), or None.  Pre-release and dev builds are priced as the release they lead to (profiles.parse_version)."""
    m = re.search(r"(?<![\d.])0\.(\d+)(?:\.(\d+))?", v or "")
    if not m:
        return None
    return f"0.{int(m.group(1))}" + (f".{int(m.group(2))}" if m.group(2) is not None else "")


def version_profile(v: str | None) -> str:
    """The profile label of a row (``profiles.profile_for``)."""
    from reportgen.estimate.profiles import profile_for
    return profile_for(version_of(v) or TARGET_VERSION)[0].label


def _lead_num(v) -> float | None:
    """Leading number of a cell such as "0.9 (default)" or "262144 (default)"."""
    m = re.match(r"\s*(\d+(?:\.\d+)?)", str(v or ""))
    return float(m.group(1)) if m else None


def failed_start(row: dict) -> bool:
    return (row.get("expected_status") or "") == "failed_start" or "FAILED" in (row.get("notes") or "")


def interference(row: dict) -> bool:
    """The row's KV figures include another process on the same GPU (notes say so), or a setting that
    decides them is not in the source (``UNSCORED``): listed, not scored."""
    if row.get("row_id") in UNSCORED:
        return True
    n = (row.get("notes") or "").lower()
    return any(k in n for k in ("interference", "shares the card", "share the gpu", "shares the gpu",
                                "apparently on the same gpu", "card shared", "embedding-model vllm instance"))


def run_version(row: dict) -> str | None:
    """The 0.x release a row is run under: its ROW_SETTINGS ``vllm_version`` when set (it wins over the row's text:
    row 171's "0.20.x" is 0.20.1+ by its log line numbers), else the one its ``vllm_version`` text names."""
    return version_of(ROW_SETTINGS.get(row.get("row_id"), {}).get("vllm_version") or row.get("vllm_version"))


def make_case(row: dict) -> Case | None:
    """The estimator inputs for one log row, or None when it cannot be run."""
    extra = ROW_SETTINGS.get(row.get("row_id"), {})
    version = run_version(row)
    if row.get("engine") != "v1" or version is None:
        return None
    total = _f(row.get("total_gpu_memory_gib")) or TOTAL_OVERRIDES.get(row.get("row_id"))
    if total is None:
        gpu = row.get("gpu") or ""
        total = next((t for name, t in GPU_TOTALS if gpu.startswith(name)), None)
    util = _lead_num(row.get("gpu_memory_utilization")) or extra.get("gpu_memory_utilization")
    measured = _f(row.get("kv_cache_gib")) is not None or _f(row.get("gpu_kv_cache_tokens")) is not None
    if total is None or util is None or (not measured and not failed_start(row)):
        return None
    model = row["model"]
    cfg_id, wd, why = PROXIES.get(model, (model, "checkpoint", ""))
    cfg = _config(cfg_id)
    if cfg is None:
        return None
    dtype = (row.get("dtype") or "").lower()
    q = (row.get("quantization") or "").lower()
    if wd == "checkpoint":
        if q == "fp8":
            wd = "fp8"                       # vLLM --quantization fp8: online per-tensor fp8
        elif dtype in ("float32", "float16"):
            wd = {"float32": "fp32", "float16": "fp16"}[dtype]
    # the proxy's ModelOpt side file only when its checkpoint layout is what the row serves: a proxy taken for its
    # architecture (weights re-priced as "fp8" ...) must not lend its fp8 KV calibration to the row
    spec = build_spec(cfg, cfg_id, _side_files(cfg_id) if wd == "checkpoint" else None)
    if spec.unsupported_reason:
        return None
    mm = Matrix(tp=[_i(row.get("tensor_parallel_size"), 1)], pp=[_i(row.get("pipeline_parallel_size"), 1)],
                dp=[_i(row.get("data_parallel_size"), 1)],
                ep=[(row.get("enable_expert_parallel") or "").lower() in ("true", "1", "yes")],
                weight_dtype=[wd], kv_cache_dtype=[row.get("kv_cache_dtype") or "auto"],
                max_model_len=[int(_lead_num(row.get("max_model_len")) or 8192)], concurrency=[1],
                gpu_memory_utilization=[util],
                max_num_batched_tokens=_i(row.get("max_num_batched_tokens")) or extra.get("max_num_batched_tokens"),
                max_num_seqs=_i(row.get("max_num_seqs")),
                block_size=_i(row.get("block_size"), 16), vllm_version=version,
                enforce_eager=(row.get("enforce_eager") or "").strip().lower() == "true",
                max_nodes=64, allow_cross_node_tp=True, flashinfer_sampler=extra.get("flashinfer_sampler"),
                disable_custom_all_reduce=bool(extra.get("disable_custom_all_reduce", False)),
                moe_backend=extra.get("moe_backend", "auto"),
                expandable_segments=bool(extra.get("expandable_segments", False)),   # PYTORCH_CUDA_ALLOC_CONF
                speculative_config=_spec_config(row, extra))
    if mm.speculative_config:
        # a draft_model's config comes from the same config directories as the target's
        from reportgen.estimate.specdecode import draft_from_config, parse_speculative_config
        sd = parse_speculative_config(mm.speculative_config)
        draft_cfg = _config(sd.model) if sd.model else None
        mm.draft_spec = draft_from_config(sd, draft_cfg, sd.model) if draft_cfg else None
    return Case(row, model, cfg_id, why, spec, wd, mm, total)


def _spec_config(row: dict, extra: dict):
    """The row's --speculative-config (a ``speculative_config`` CSV cell holding the JSON, or ROW_SETTINGS)."""
    text = (row.get("speculative_config") or "").strip()
    return json.loads(text) if text else extra.get("speculative_config")


@dataclass(frozen=True)
class LogGpu(GpuLike):
    """The logged device; vLLM's default scheduler limits treat A100s as small whatever their size
    (engine/arg_utils.py: ``device_memory >= 70 GiB and "a100" not in device_name``)."""

    large_gpu: bool = True


def predict(case: Case) -> dict:
    name = case.row.get("gpu") or ""
    gpu = LogGpu(id="log-gpu", name=name, usable_memory_gib=case.memory_gib, gpus_per_node=8,
                 interconnect=gpu_interconnect(name), large_gpu=case.memory_gib >= 70 and "a100" not in name.lower(),
                 compute_capability=gpu_capability(name))
    lf = evaluate_matrix_lazy([ModelEntry(case.model, case.spec)], [gpu], case.matrix, stage0_columns=True)
    return lf.collect().row(0, named=True)


def runs_model_runner_v2(case: Case) -> bool:
    """Whether the row's model runs on Model Runner V2 under the version it is run at (the estimator's own rule,
    profiles.model_runs_mrv2): what scripts/calibrate_overheads.py fits oh.MRV2_GRAPH_RATIO on."""
    from reportgen.estimate import profiles as vp
    from reportgen.estimate.tables import state_kinds
    version = vp.parse_version(case.matrix.vllm_version)
    profile = vp.profile_for(case.matrix.vllm_version)[0]
    return vp.model_runs_mrv2(profile, version, case.spec.architectures, bool(case.spec.num_experts),
                              case.spec.quantization_config is not None, state_kinds(case.spec)[0])


def _err(pred, meas) -> float | None:
    if pred is None or meas is None or meas == 0:
        return None
    return (pred - meas) / abs(meas) * 100


def compare(case: Case, p: dict) -> dict:
    r = case.row
    meas_w = _f(r.get("weights_profile_gib")) or _f(r.get("weights_loading_gib"))
    meas_tok = _f(r.get("gpu_kv_cache_tokens"))
    meas_kv = _f(r.get("kv_cache_gib"))
    # vLLM started: it reported KV room (and tokens, when printed) and the source does not say it failed
    started = ((meas_kv or 0) > 0 or (meas_kv is None and (meas_tok or 0) > 0)) \
        and (meas_tok is None or meas_tok > 0) and not failed_start(r)
    out = {
        "row": int(r["row_id"]) if str(r["row_id"]).isdigit() else r["row_id"], "model": case.model, "proxy": case.proxy, "version": r.get("vllm_version") or ROW_SETTINGS.get(r["row_id"], {}).get("vllm_version"),
        "run_version": case.matrix.vllm_version, "profile": version_profile(case.matrix.vllm_version), "dataset": r.get("dataset"),
        "interference": interference(r), "reason": p["reason"], "mml_fit": p["max_model_len_fit"],
        "sampler_rows": min(p["max_num_seqs"], p["max_num_batched_tokens"]), "vocab": case.spec.vocab_size,
        "dp": case.matrix.dp[0], "is_moe": bool(case.spec.num_experts), "multimodal": bool(case.spec.multimodal),
        "g_est_meas": _f(r.get("cuda_graph_estimated_gib")),
        "tp": case.matrix.tp[0], "pp": case.matrix.pp[0], "weights": case.weight_dtype,
        "interconnect": gpu_interconnect(r.get("gpu") or ""),
        "kv_dtype": case.matrix.kv_cache_dtype[0], "mml": case.matrix.max_model_len[0],
        "w_pred": p["stage0_weights_gib"], "w_meas": meas_w,
        "act_pred": p["stage0_activation_gib"], "act_meas": _f(r.get("activation_peak_gib")),
        "nt_pred": p["non_torch_gib"], "nt_meas": _f(r.get("non_torch_gib")),
        "g_pred": p["cuda_graph_gib"], "g_meas": _f(r.get("cuda_graph_gib")),
        "kv_pred": p["stage0_kv_cache_gib"], "kv_meas": _f(r.get("kv_cache_gib")),
        "tok_pred": p["kv_cache_tokens"], "tok_meas": meas_tok,
        "conc_pred": p["max_concurrency"], "conc_meas": _f(r.get("max_concurrency")),
        "status": p["status"], "started": started, "speculative": p.get("speculative"),
        "mrv2": runs_model_runner_v2(case),
    }
    out["w_err"] = _err(out["w_pred"], out["w_meas"])
    out["w_abs"] = None if meas_w is None else out["w_pred"] - meas_w
    out["kv_err"] = _err(out["kv_pred"], out["kv_meas"])
    out["tok_err"] = _err(out["tok_pred"], out["tok_meas"])
    out["verdict_ok"] = (p["status"] in ("fits", "tight")) == started
    out["v019"] = (str(r.get("vllm_version") or "").startswith("0.19") and (r.get("gpu") or "").startswith("H100")
                   and r.get("dataset") == CSV.name)      # the overhead fit's rows (failed starts: 2026 file)
    return out


def run(csv: Path | None = None) -> list[dict]:
    res = []
    for row in load_rows(csv):
        case = make_case(row)
        if case is None:
            continue
        res.append(compare(case, predict(case)))
    return res


def _share(vals: list[bool]) -> str:
    return f"{sum(vals)}/{len(vals)} ({100 * sum(vals) / len(vals):.0f} %)" if vals else "n/a"


def summary(res: list[dict]) -> tuple[str, dict]:
    rows = [r for r in res if r["v019"]]
    w_ok = [abs(r["w_err"]) <= 1 or abs(r["w_abs"]) <= 0.05 for r in rows if r["w_err"] is not None]
    kv_ok = [abs(r["kv_err"]) <= 3 for r in rows if r["kv_err"] is not None]
    tok_ok = [abs(r["tok_err"]) <= 5 for r in rows if r["tok_err"] is not None]
    verd = [r["verdict_ok"] for r in rows]

    def worst(key):
        c = [r for r in rows if r[key] is not None]
        if not c:
            return "n/a"
        r = max(c, key=lambda r: abs(r[key]))
        return f"{r[key]:+.2f} % (row {r['row']}, {r['model']}, tp{r['tp']} pp{r['pp']})"

    stats = {"rows": len(rows), "weights": w_ok, "kv": kv_ok, "tokens": tok_ok, "verdict": verd}
    md = "\n".join([
        f"Generated by `scripts/validate_vllm_logs.py` from {len(rows)} vLLM v0.19 H100 start-up logs "
        f"(`tests/data/vllm_logs.csv`; {len(res)} rows run in total, all versions).",
        "",
        "| term | target | within target | worst row |",
        "|---|---|---|---|",
        f"| weights per GPU | 1 % or 0.05 GiB | {_share(w_ok)} | {worst('w_err')} |",
        f"| KV cache GiB | 3 % | {_share(kv_ok)} | {worst('kv_err')} |",
        f"| KV cache tokens | 5 % | {_share(tok_ok)} | {worst('tok_err')} |",
        f"| verdict (started vs fits) | all | {_share(verd)} | "
        + (", ".join(f"row {r['row']}" for r in rows if not r["verdict_ok"]) or "none") + " |",
    ])
    return md, stats


# what each failed start must be called (row -> words the reason must contain); vLLM's own error
FAILED_REASONS = {"F02": "one request", "F03": "one request", "F06": "while loading weights", "D01": "one request",
                  "N03F": "no memory left", "N07F": "no memory left",
                  "G01": "outside the budget", "G02": "outside the budget"}
# failed starts the model does not call no_fit (it calls them tight, with the outside-budget margin):
# gpt-oss-20b on one H100 at util 0.95 failed its sampler warm-up short by 0.23 GiB; the model leaves
# +0.22 GiB (inside the tight band).  Counted as a wrong verdict.  (G02, the same at TP 2, is no_fit.)
# (N03F, Qwen2.5-VL-7B at util 0.22 on 0.23.0, was the second: vLLM profiled one 114,688-token *video* item
# sized by max_model_len 128000 and its vision tower peaked ~15 GiB.  The video item and the tower's peak are
# priced per length since issue 13's video work: no_fit with "no memory left", KV -13.29 GiB vs -14.28 logged, the tower phase binding.)
KNOWN_MISSES = {"G01"}


def profile_summary(res: list[dict]) -> tuple[str, dict]:
    """One line per version profile: rows run, targets met, verdicts; and the stats per profile."""
    from reportgen.estimate.profiles import PROFILES

    lines = ["| vLLM profile | rows run (started / failed) | weights within 1 % or 0.05 GiB | "
             "KV tokens within 5 % | KV GiB within 3 % | verdicts right | worst KV-token row | note |",
             "|---|---|---|---|---|---|---|---|"]
    stats = {}
    for p in PROFILES:
        rows = [r for r in res if r["profile"] == p.label and not r["interference"]]
        started = [r for r in rows if r["started"]]
        w_ok = [abs(r["w_err"]) <= 1 or abs(r["w_abs"]) <= 0.05 for r in started if r["w_err"] is not None]
        tok_ok = [abs(r["tok_err"]) <= 5 for r in started if r["tok_err"] is not None]
        kv_ok = [abs(r["kv_err"]) <= 3 for r in started if r["kv_err"] is not None]
        verd = [verdict_right(r) for r in rows]
        c = [r for r in started if r["tok_err"] is not None]
        worst = "n/a"
        if c:
            r = max(c, key=lambda r: abs(r["tok_err"]))
            worst = f"{r['tok_err']:+.2f} % (row {r['row']}, {r['model'].split('/')[-1][:30]}, tp{r['tp']})"
        scored = len([r for r in started if r["tok_err"] is not None or r["kv_err"] is not None])
        note = "" if scored >= 3 else (f"only {scored} public start-up(s) with a KV figure we can run: "
                                       "too few to call this profile checked") if scored else (
            "no public start-up with a KV figure found: unchecked (what changed at this release is read from its "
            "source; the fitted terms are the neighbouring profiles')")
        stats[p.label] = {"rows": len(rows), "weights": w_ok, "tokens": tok_ok, "kv": kv_ok, "verdict": verd,
                          "scored": scored}
        lines.append(f"| {p.label} | {len(rows)} ({len(started)} / {len(rows) - len(started)}) | {_share(w_ok)} | "
                     f"{_share(tok_ok)} | {_share(kv_ok)} | {_share(verd)} | {worst} | {note} |")
    skipped = [r for r in res if r["interference"]]
    failed = [r for r in res if not r["started"] and not r["interference"]]
    fail_lines = [f"- row {r['row']} ({r['model'].split('/')[-1]}, {r['profile']}): {r['status']}"
                  f"{'' if verdict_right(r) else ' -- MISSED (vLLM failed)'}: {r['reason']}" for r in failed]
    md = "\n".join([
        f"Generated by `scripts/validate_vllm_logs.py` from every start-up row it can run "
        f"(`tests/data/vllm_logs.csv`, `tests/data/vllm_logs_2026.csv`: {len(res)} rows), grouped by the vLLM "
        "version profile the row's version maps to (`reportgen/estimate/profiles.py`).  Rows whose GPU was "
        f"shared with another process, or whose source leaves a deciding setting open, are listed but not "
        f"scored ({len(skipped)}: " + ", ".join(str(r["row"]) for r in skipped) + ").",
        "",
        *lines,
        "",
        f"Failed starts in the logs ({len(failed)}), as vLLM failed them and as the estimator calls them:",
        "",
        *fail_lines,
    ])
    return md, stats


def verdict_right(r: dict) -> bool:
    """Started rows must not be no_fit; failed starts must be no_fit with vLLM's own reason."""
    if r["started"]:
        return r["status"] in ("fits", "tight")
    words = FAILED_REASONS.get(str(r["row"]))
    return r["status"] == "no_fit" and (words is None or words in (r["reason"] or ""))


def per_row_table(res: list[dict]) -> str:
    def f(v, nd=2):
        return "" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))

    lines = ["| row | model | tp | pp | w pred | w meas | w err % | act pred | act meas | nt pred | nt meas "
             "| graph pred | graph meas | KV pred | KV meas | KV err % | tokens pred | tokens meas | tok err % | status |",
             "|" + "---|" * 20]
    for r in res:
        name = r["model"] + (" *" if r["proxy"] else "")
        lines.append("| " + " | ".join([
            str(r["row"]), name, str(r["tp"]), str(r["pp"]), f(r["w_pred"]), f(r["w_meas"]), f(r["w_err"]),
            f(r["act_pred"]), f(r["act_meas"]), f(r["nt_pred"]), f(r["nt_meas"]), f(r["g_pred"]), f(r["g_meas"]),
            f(r["kv_pred"]), f(r["kv_meas"]), f(r["kv_err"]), f(r["tok_pred"]), f(r["tok_meas"]),
            f(r["tok_err"]), r["status"] + ("" if r["verdict_ok"] else " (!)")]) + " |")
    return "\n".join(lines)


def write_readme(md: str) -> None:
    text = README.read_text() if README.exists() else ""
    block = f"{START}\n{md}\n{END}"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(text)


def overhead_section() -> list[str]:
    """The calibrated terms: their forms (overheads.py docstring) and residuals on the logs."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import calibrate_overheads as cal
    from reportgen.estimate import overheads as oh

    lines = ["## The calibrated terms", "",
             "Forms and constants live in `reportgen/estimate/overheads.py`; "
             "`scripts/calibrate_overheads.py` re-fits them on the same rows (one row per distinct "
             "configuration) and fails when the shipped constants drift from the fit.", "",
             "```", (oh.__doc__ or "").strip(), "```", "",
             "| term | configurations | RMS error (GiB) | worst error (GiB) |", "|---|---|---|---|"]
    for term, (n, rms, worst) in cal.residual_summary().items():
        lines.append(f"| {term} | {n} | {rms:.3f} | {worst:.3f} |")
    return lines + [""]


def profile_section(res: list[dict]) -> list[str]:
    """The per-profile fit (calibrate_overheads.py --profiles), Model Runner V2's graph ratio and the failed
    starts."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import calibrate_overheads as cal
    from reportgen.estimate import overheads as oh
    from reportgen.estimate.profiles import PROFILES

    lines = ["## The version profiles and their fit", "",
             "Each profile is a row of `reportgen/estimate/profiles.py` (fields, history and cited vLLM "
             "commits / PRs in its docstring).  `scripts/calibrate_overheads.py --profiles` re-fits the "
             "numeric fields on the rows of each range and fails on drift; a field with fewer than 3 rows "
             "is reported, not trusted.", "",
             "| profile | graphs in budget | estimate / captured | dense estimate | GDN transient x FLA set | "
             "sampler extra B/logit | non-torch 1 GPU | non-torch group | evidence |", "|---|---|---|---|---|---|---|---|---|"]
    for p in PROFILES:
        lines.append(f"| {p.label} | {'yes' if p.graphs_in_budget else 'no'} | {p.graph_estimate_scale:g} | "
                     f"{'yes' if p.dense_graph_estimate else 'no (0)'} | {p.gdn_transient_scale:g} | "
                     f"{p.sampler_extra_bytes:g} | {p.nt_single:g} | {p.nt_comm_base:g} + {p.nt_comm_per_rank:g} g "
                     f"(no NVLS: {p.nt_single:g} + {p.nt_comm_per_rank:g} g) | "
                     f"{p.evidence} |")
    lines += ["", "| profile | term | fitted | shipped | rows |", "|---|---|---|---|---|"]
    for name, fit in cal.fit_profiles(res).items():
        for k, (v, shipped, n) in fit.items():
            lines.append(f"| {name} | {k} | {v:g} | {shipped:g} | {n}{' (< 3)' if n < 3 else ''} |")
    rows = cal.mrv2_graph_rows(res)
    ratio, n = cal.fit_mrv2_graph_ratio(res)
    lines += ["", "Model Runner V2's captured graph memory against the graph model (fitted on Model Runner V1 "
              "captures), on the started rows that log it (`overheads.MRV2_GRAPH_RATIO`: the median, "
              f"{ratio:g} on {n} rows; shipped {oh.MRV2_GRAPH_RATIO:g}).  The model times the ratio is the "
              "captured figure every MRV2 cell uses; its error per row:", "",
              "| row | logged GiB | V1 model GiB | ratio | model x shipped ratio - logged (GiB) |", "|---|---|---|---|---|"]
    for row, g, m in rows:
        lines.append(f"| {row} | {g:.2f} | {m:.2f} | {g / m:.2f} | {m * oh.MRV2_GRAPH_RATIO - g:+.2f} |")
    return lines + [""]


def encoder_section() -> list[str]:
    """The multimodal rows and the encoder-profile fit (scripts/calibrate_encoder.py)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import calibrate_encoder

    return calibrate_encoder.markdown()


def write_accuracy_md(md: str, res: list[dict]) -> None:
    proxies = sorted({(r["model"], r["proxy"]) for r in res if r["proxy"]})
    ACCURACY_MD.parent.mkdir(exist_ok=True)
    ACCURACY_MD.write_text("\n".join([
        "# Estimator accuracy against real vLLM start-ups",
        "",
        "Generated by `scripts/validate_vllm_logs.py`; do not edit by hand -- regenerate (this file and the",
        "README's table) with `PYTHONPATH=. HF_HUB_OFFLINE=1 python scripts/validate_vllm_logs.py`.  Errors are",
        "(predicted − measured) / measured.  PP rows compare the first stage (vLLM logs rank 0);",
        "tokens are the engine-wide \"GPU KV cache size\".  The overhead model and its fit are",
        "described in `reportgen/estimate/overheads.py` and re-run by `scripts/calibrate_overheads.py`.",
        "",
        "## Per vLLM version profile",
        "",
        md,
        "",
        "## The v0.19 H100 full-breakdown rows (the overhead fit)",
        "",
        summary(res)[0],
        "",
        *profile_section(res),
        *overhead_section(),
        *encoder_section(),
        "## Every row",
        "",
        "`*` = run through a proxy config (same architecture):",
        "",
        *[f"- {m}: {why}" for m, why in proxies],
        "",
        per_row_table(res),
        "",
        *([HYBRID_MD.read_text().rstrip("\n"), ""] if HYBRID_MD.exists() else []),
        *([SPEC_MD.read_text().rstrip("\n"), ""] if SPEC_MD.exists() else []),
    ]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--csv", type=Path, default=None, help="one CSV (default: both start-up log files)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch README.md / docs")
    a = ap.parse_args(argv)
    res = run(a.csv)
    print(per_row_table(res))
    md, _ = profile_summary(res)
    print()
    print(md)
    if not a.no_write:
        write_readme(md)
        write_accuracy_md(md, res)
        print(f"\nwrote {README.relative_to(ROOT)} (between markers) and {ACCURACY_MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
