"""Which vLLM releases serve an architecture through the Transformers modeling backend.

Why: vLLM keeps moving architectures from their native model files to its Transformers backend
(registry.py _TRANSFORMERS_SUPPORTED_MODELS: ("transformers", "TransformersForCausalLM") or
"TransformersMoEForCausalLM").  From that release on vLLM instantiates the transformers class itself and
swaps its layers (model_executor/models/transformers/base.py recursive_replace), so a family priced
from the native file is right for the releases before the move and must be re-read for the ones after.

BACKEND_FROM: architecture -> (first release whose registry maps it to the backend, backend class),
generated from the release sdists by scripts/tf_backend_releases.py (--check keeps it honest).  An
architecture never leaves the backend once moved (the script fails if one did).  Releases compare by
(major, minor), as served.py does.

What changes for the families reportgen prices from the native file (starcoder2, olmo2, olmo3, hunyuan_v1_*,
phi, glm, seed_oss, gemma, olmoe, stablelm, arcee), read from vllm 0.25.0 - 0.34.0 sdists
model_executor/models/transformers/ and transformers 5.25's base_model_tp_plan:

* per-rank weight shards: the same.  q/k/v fuse into QKVParallelLinear (fusers/qkv.py, 0.31.0
  l.176-183) whose output projection "must be rowwise" (l.201-208); gated MLPs fuse into
  MergedColumnParallelLinear with a rowwise down projection (fusers/glu.py l.177-191); the remaining
  nn.Linear follow the plan (utils.py l.130-136: colwise / rowwise / *_gather_output column /
  *_split_input row, anything unlisted replicated) -- for these classes that is the native layout
  (starcoder2 / phi c_fc|fc1 colwise, c_proj|fc2 rowwise; glm gate_up colwise_gather_output, down
  rowwise_split_input: the same bytes a rank).  Norms, routers stay full width on every rank
  (TPAwareRMSNorm gathers a TP-sharded input to normalise it with the full weight, fusers/rms_norm.py
  l.107-140), as natively (olmo2's whole-projection q/k norms included).  MoE (TransformersMoEForCausalLM,
  moe.py): experts become FusedMoE sharded / expert-parallel as natively, shared MLPs GLU-fused.
* rotary: none of vLLM's get_rope cos_sin_cache (max_position x rotary_dim in the model dtype).  The
  transformers *RotaryEmbedding keeps two fp32 buffers inv_freq / original_inv_freq of
  ceil(rotary_dim / 2) (transformers_backend.py): backend_rope_caches.
* KV: one Attention per layer with get_num_kv_heads and the per-layer / model-level sliding window
  (base.py 0.31.0 l.578-676 _create_attention_instances), the native geometry.  TP: as natively, except
  stablelm (its attention views the fused QKV split with the full head counts: tp > 1 fails there,
  families/stablelm.py).  PP: supported (SupportsPP, the class's
  base_model_pp_plan or the inferred split).  Quantized checkpoints: linear / FusedMoE quant methods as
  natively, MXFP4 refused (base.py l.160-167) -- none of these families ship MXFP4.

A family whose backend build differs in more than the rotary buffers stores the differences in
ModelSpec.backend_changes (fields replaced on the backend releases); one built as the backend
(families/transformers_backend.py) stores the native releases' in ModelSpec.native_changes.  A config
only the backend builds (hunyuan, olmo2 / olmo3 / olmoe, glm, seed_oss, arcee, starcoder2, stablelm: fields
the native file reads or lacks) is built as transformers builds it and carries served_from = the backend release.
"""

from __future__ import annotations

from dataclasses import replace

from reportgen.arch.spec import ModelSpec
from reportgen.estimate.profiles import parse_version as _minor    # (major, minor, patch) as users write versions

BACKEND_FROM: dict[str, tuple[str, str]] = {
    "ArceeForCausalLM": ("0.32.0", "TransformersForCausalLM"),   # vllm 0.32.0 sdist registry.py:711
    "CwmForCausalLM": ("0.32.0", "TransformersForCausalLM"),   # vllm 0.32.0 sdist registry.py:712
    "FlexOlmoForCausalLM": ("0.29.0", "TransformersMoEForCausalLM"),   # vllm 0.29.0 sdist registry.py:685
    "GPTBigCodeForCausalLM": ("0.25.0", "TransformersForCausalLM"),   # vllm 0.25.0 sdist registry.py:643
    "GPTNeoXForCausalLM": ("0.32.0", "TransformersForCausalLM"),   # vllm 0.32.0 sdist registry.py:716
    "GemmaForCausalLM": ("0.34.0", "TransformersForCausalLM"),   # vllm 0.34.0 sdist registry.py:787
    "GlmForCausalLM": ("0.32.0", "TransformersForCausalLM"),   # vllm 0.32.0 sdist registry.py:714
    "HunYuanDenseV1ForCausalLM": ("0.29.0", "TransformersForCausalLM"),   # vllm 0.29.0 sdist registry.py:687
    "HunYuanMoEV1ForCausalLM": ("0.29.0", "TransformersMoEForCausalLM"),   # vllm 0.29.0 sdist registry.py:688
    "Jais2ForCausalLM": ("0.32.0", "TransformersForCausalLM"),   # vllm 0.32.0 sdist registry.py:719
    "Kolibri1ForCausalLM": ("0.33.0", "TransformersMoEForCausalLM"),   # vllm 0.33.0 sdist registry.py:758
    "MellumForCausalLM": ("0.32.0", "TransformersMoEForCausalLM"),   # vllm 0.32.0 sdist registry.py:720
    "NanbeigeForCausalLM": ("0.30.0", "TransformersForCausalLM"),   # vllm 0.30.0 sdist registry.py:716
    "Olmo2ForCausalLM": ("0.26.0", "TransformersForCausalLM"),   # vllm 0.26.0 sdist registry.py:660
    "Olmo3ForCausalLM": ("0.29.0", "TransformersForCausalLM"),   # vllm 0.29.0 sdist registry.py:691
    "OlmoForCausalLM": ("0.26.0", "TransformersForCausalLM"),   # vllm 0.26.0 sdist registry.py:659
    "OlmoeForCausalLM": ("0.34.0", "TransformersMoEForCausalLM"),   # vllm 0.34.0 sdist registry.py:800
    "PhiForCausalLM": ("0.32.0", "TransformersForCausalLM"),   # vllm 0.32.0 sdist registry.py:725
    "SeedOssForCausalLM": ("0.32.0", "TransformersForCausalLM"),   # vllm 0.32.0 sdist registry.py:726
    "SmolLM3ForCausalLM": ("0.10.1", "TransformersForCausalLM"),   # vllm 0.10.1 sdist registry.py:276
    "StableLmForCausalLM": ("0.34.0", "TransformersForCausalLM"),   # vllm 0.34.0 sdist registry.py:804
    "Starcoder2ForCausalLM": ("0.25.0", "TransformersForCausalLM"),   # vllm 0.25.0 sdist registry.py:645
    "VaultGemmaForCausalLM": ("0.27.0", "TransformersForCausalLM"),   # vllm 0.27.0 sdist registry.py:676
}


def backend_from(architectures) -> tuple[int, int] | None:
    """The first release (major, minor, patch) serving one of architectures through the Transformers backend
    (the earliest when several are listed: vLLM resolves the first it knows); None: never."""
    firsts = [_minor(BACKEND_FROM[a][0]) for a in architectures or () if isinstance(a, str) and a in BACKEND_FROM]
    return min(firsts) if firsts else None


def served_by_backend(spec: ModelSpec, version) -> bool | None:
    """True: version serves spec through the Transformers backend; False: natively; None: not in the
    table or the version unknown."""
    first, v = backend_from(spec.architectures), _minor(version)
    if first is None or v is None:
        return None
    return v >= first


def backend_rope_caches(caches) -> tuple | None:
    """The transformers rotary module's buffers in place of vLLM's get_rope caches: per distinct
    rotary width, inv_freq + original_inv_freq (2 rows of ceil(rotary_dim / 2) fp32)."""
    if caches is None:
        return None
    return tuple(dict.fromkeys((2, (int(c[1]) + 1) // 2, 4) for c in caches))


def spec_for_release(spec: ModelSpec, version) -> ModelSpec:
    """spec as vLLM version builds it: the backend's rotary buffers and backend_changes on a
    release that serves the architecture through the Transformers backend, native_changes on an older
    one; spec itself otherwise."""
    on_backend = served_by_backend(spec, version)
    if on_backend is None:
        return spec
    if on_backend:
        changes = dict(spec.backend_changes)
        if not spec.backend_built:
            changes.setdefault("rope_caches", backend_rope_caches(spec.rope_caches))
            changes.setdefault("rope_length_mode", "")
    else:
        changes = dict(spec.native_changes)
    return replace(spec, **changes) if changes else spec
