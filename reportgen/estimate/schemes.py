"""Which storage scheme and which MoE kernel backend a model is priced with, per ``weights_as`` / ``--dtype`` /
``--quantization`` / ``--moe-backend`` and GPU.

Why a module of its own: these choices are read by the layout rows (``tables.ModelTables``), the single-model
estimate (``estimate_cmd``) and the section report, and none of them depends on the layout or on the memory
model -- only on the spec, the engine flags and the GPU's (capability, vLLM version).  Split out of
``tables.py`` unchanged; ``tables`` re-exports every name.
"""

from __future__ import annotations

from reportgen.arch.spec import Component, ModelSpec

from .quant.layouts import BF16_MOE_BACKENDS, NVFP4_MOE_BACKENDS

PLAIN_ACT = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}

_DTYPE_NAME = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def serving_dtype(spec: ModelSpec, weights_as: str, dtype: str = "auto") -> str:
    """The dtype vLLM computes in: ``dtype`` (vLLM ``--dtype``) when it is not ``auto``; else a plain
    what-if ``weights_as`` (bf16 / fp16 / fp32: "as if shipped in that dtype"); else the checkpoint's,
    except that float32 checkpoints are served in 16-bit (vLLM's auto-dtype rule: bfloat16 for
    Gemma-2/3 and most models on Ampere+; the log of google/gemma-2-9b-it, a float32 config, shows
    bf16 weights)."""
    d = _DTYPE_NAME.get(str(dtype).lower(), None) if dtype else None
    if d is None and str(dtype).lower() in ("bfloat16", "float16", "float32"):
        d = str(dtype).lower()
    if d is not None:
        return d
    key = weights_as.lower()
    if key in PLAIN_ACT:
        return {4: "float32"}.get(PLAIN_ACT[key], "float16" if "f16" in key or key == "float16" else "bfloat16")
    s = spec.dtype.lower()
    if PLAIN_ACT.get(s, 2) == 4 and key in ("checkpoint", "auto"):
        return "bfloat16"
    return s


def act_bytes_for(weights_as: str, spec_or_dtype, dtype: str = "auto") -> int:
    """Activation/serving dtype bytes (see ``serving_dtype``)."""
    if isinstance(spec_or_dtype, str):
        key = (_DTYPE_NAME.get(str(dtype).lower(), "") if dtype and dtype != "auto" else "") or weights_as.lower()
        return PLAIN_ACT[key] if key in PLAIN_ACT else PLAIN_ACT.get(spec_or_dtype.lower(), 2)
    return PLAIN_ACT.get(serving_dtype(spec_or_dtype, weights_as, dtype), 2)


def scheme_for(spec: ModelSpec, weights_as: str, dtype: str = "auto", quantization: str | None = None,
               mxfp4_backend: str | None = None):
    """The storage scheme costed for one ``weights_as`` value under the engine's ``--dtype`` and
    ``--quantization`` (the quant package owns the bytes).

    - ``weights_as`` checkpoint: the checkpoint as vLLM loads it.  A pre-quantized checkpoint keeps
      its quantized tensors whatever ``dtype`` says (``dtype`` only sets the unquantized tensors:
      embeddings, norms, lm_head); ``quantization`` must then be the checkpoint's own method.  An
      unquantized checkpoint is stored at the serving dtype, or quantized at load by an online
      ``quantization`` (fp8).
    - any other ``weights_as``: the what-if re-quantization of the model (never combined with
      ``quantization``).

    ``mxfp4_backend``: the MXFP4 MoE backend whose expert layout an MXFP4 checkpoint is priced in
    (``mxfp4_backend_for`` of the GPU; None = ``layouts.DEFAULT_MXFP4_BACKEND``, Triton).
    """
    from dataclasses import replace

    from . import quant
    from .quant.online import check_checkpoint_method, online_scheme

    serve = serving_dtype(spec, weights_as, dtype)
    key = weights_as.lower()
    if key not in ("checkpoint", "auto"):
        if quantization:
            raise quant.UnsupportedQuantization(
                f"weights_as {weights_as} is a what-if re-quantization; it cannot be combined with "
                f"--quantization {quantization}")
        if key in PLAIN_ACT:
            return quant.whatif_scheme(serve)
        return quant.whatif_scheme(key, serve)
    qc = spec.quantization_config
    if quantization and not qc:
        return online_scheme(quantization, serve)
    named = getattr(spec, "quantization_by_name", None)
    if not qc and named and not getattr(spec, "checkpoint_tensors", None):
        raise quant.UnsupportedQuantization(
            f"the model id says {named} but the config carries no quantization layout (no quantization_config "
            f"in config.json, no hf_quant_config.json beside it): which layers are quantized is unknown, and "
            f"pricing them all at {spec.dtype} would overstate the weights up to 3-4x; put the checkpoint's "
            f"ModelOpt hf_quant_config.json beside its config.json, read its safetensors headers (--weights "
            f"checkpoint, online) or ask a what-if weight dtype (--weights-as fp8 / int4 / ..., job weights_as)")
    if quantization:
        check_checkpoint_method(qc, quantization)
    if not qc and mxfp4_backend in BF16_MOE_BACKENDS:
        # unquantized experts under FlashInfer TRT-LLM (SM 10.x, tables.ModelTables.mxfp4_variant): the plain
        # scheme with their per-rank layout (quant.layouts.unquantized_moe_backend)
        cast = PLAIN_ACT.get(spec.dtype.lower(), 2) != PLAIN_ACT.get(serve, 2)
        base = quant.whatif_scheme(serve, spec.dtype) if cast else quant.checkpoint_scheme(spec)
        if isinstance(base, quant.Scheme):
            return replace(base, moe_padding=BF16_MOE_BACKENDS[mxfp4_backend],
                           description=base.description + "; routed experts padded to the per-rank intermediate "
                           "of vLLM's FlashInfer TRT-LLM bf16 MoE kernel (a multiple of 128)")
        return base
    if not qc and PLAIN_ACT.get(spec.dtype.lower(), 2) != PLAIN_ACT.get(serve, 2):
        return quant.whatif_scheme(serve, spec.dtype)        # vLLM casts the weights to the serving dtype
    scheme = quant.checkpoint_scheme(spec, mxfp4_backend or mxfp4_backend_for(spec, None))
    if qc and isinstance(scheme, quant.Scheme) and scheme.model_dtype_bytes != PLAIN_ACT.get(serve, 2):
        scheme = replace(scheme, model_dtype_bytes=PLAIN_ACT.get(serve, 2))   # unquantized tensors only
    return scheme


def mxfp4_backend_for(spec: ModelSpec, mxfp4_gpu: tuple | None) -> str:
    """The MXFP4 MoE backend vLLM picks for ``spec``'s experts on ``mxfp4_gpu`` = (compute capability,
    vLLM (major, minor)) of one GPU (``quant.layouts.mxfp4_moe_backend``, ``matrix.mxfp4_gpus``); None or
    a capability of None (a GPU given by its memory only, AMD, TPU, a catalog row without the column): the
    H100 (Triton) default.  DeepSeek-V4's experts (``expert_dtype`` fp4) are W4A8 (fp8 activations)."""
    from .quant.layouts import DEFAULT_MXFP4_BACKEND, mxfp4_moe_backend

    if mxfp4_gpu is None:
        return DEFAULT_MXFP4_BACKEND
    cc, version = mxfp4_gpu
    w4a8 = (spec.quantization_config or {}).get("expert_dtype") == "fp4"
    return mxfp4_moe_backend(cc, version, w4a8)


# MoE model types whose routed experts use a gated activation other than SiLU (vLLM ``MoEActivation``): FlashInfer's
# CUTLASS MoE does not take it, so vLLM's auto NVFP4 choice passes to its own CUTLASS kernel there
# (layouts.nvfp4_moe_backend); gemma4: ``Gemma4MLP`` / its MoE accept gelu_pytorch_tanh only (families/gemma4.py)
GATED_MOE_ACTIVATIONS = {"gemma4": "gelu_tanh"}


def moe_activation(spec: ModelSpec) -> str:
    """vLLM's ``MoEActivation`` name of the routed experts: relu2_no_mul when the experts have an up projection
    and no gate (nemotron_h's relu2, non-gated), else the model type's gated activation (SiLU by default)."""
    names = {t.name.rsplit(".", 2)[-2] for t in spec.tensors if t.component is Component.ROUTED_EXPERTS}
    if names and not any("gate" in n or n in ("w13", "w1", "w3") for n in names):
        return "relu2_no_mul"
    return GATED_MOE_ACTIVATIONS.get(getattr(spec, "model_type", None) or "", "silu")


def nvfp4_backend_for(spec: ModelSpec, gpu: tuple | None, moe_backend: str = "auto", w4a16: bool = False
                      ) -> str | None:
    """The NVFP4 MoE backend (``quant.layouts.NVFP4_MOE_BACKENDS`` key) vLLM runs ``spec``'s NVFP4 experts with
    on ``gpu`` = (compute capability, vLLM (major, minor)): the user's ``--moe-backend`` when it names one,
    else vLLM's auto choice for the GPU (``layouts.nvfp4_moe_backend``); None = not known (no capability,
    a version not read): the checkpoint's bytes and the fitted terms."""
    from .quant.layouts import NVFP4_BACKEND_OF_FLAG, nvfp4_moe_backend

    if moe_backend != "auto":
        return NVFP4_BACKEND_OF_FLAG.get(moe_backend)
    if gpu is None:
        return None
    cc, version = gpu
    return nvfp4_moe_backend(cc, version, moe_activation(spec), w4a16)


def unquantized_moe_backend_for(spec: ModelSpec, gpu: tuple | None, moe_backend: str = "auto") -> str | None:
    """The ``quant.layouts.BF16_MOE_BACKENDS`` key whose per-rank layout ``spec``'s unquantized routed experts take
    on ``gpu`` = (compute capability, vLLM (major, minor)) (``quant.layouts.unquantized_moe_backend``: FlashInfer
    TRT-LLM on SM 10.x), or None: the checkpoint's shapes (another GPU or release, a routing the family module did
    not work out -- ``ModelSpec.moe_routing`` --, no GPU known)."""
    from .quant.layouts import unquantized_moe_backend

    if gpu is None or not getattr(spec, "moe_routing", ""):
        return None
    cc, version = gpu
    return unquantized_moe_backend(cc, version, spec.moe_routing, moe_activation(spec), moe_backend)


def moe_backend_refusal_for(spec: ModelSpec, gpu: tuple | None, moe_backend: str, nvfp4=None, mxfp4: bool = False
                            ) -> str | None:
    """vLLM's refusal of the user's explicit ``--moe-backend`` for ``spec``'s routed experts as shipped on ``gpu`` =
    (compute capability, vLLM (major, minor)) (``quant.layouts.moe_backend_refusal``): ``nvfp4`` = the experts' NVFP4
    layout (``experts_nvfp4``) or None, ``mxfp4``: the experts are MXFP4 (gpt-oss; DeepSeek-V4's W4A8 experts take
    another path, not decided).  None = vLLM starts, or not decidable (no capability: AMD, a GPU given by its
    memory)."""
    from .quant.layouts import moe_backend_refusal

    if moe_backend == "auto" or gpu is None or gpu[0] is None:
        return None
    cc, version = gpu
    if mxfp4:
        if (spec.quantization_config or {}).get("expert_dtype") == "fp4":
            return None
        return moe_backend_refusal(moe_backend, "mxfp4", cc, version)
    if nvfp4 is not None:
        return moe_backend_refusal(moe_backend, "nvfp4", cc, version, moe_activation(spec), not nvfp4.input_scale)
    return None


# vLLM's own CUTLASS MoE kernel on NVFP4 experts (``CutlassExpertsFp4``, the log's "Using 'VLLM_CUTLASS' NvFp4 MoE
# backend"): ``--moe-backend cutlass`` (``KernelConfig.moe_backend``, vllm/config/kernel.py @00634b8a) or vLLM's
# auto choice where FlashInfer's kernels do not take the experts (``nvfp4_backend_for``)
CUTLASS_NVFP4_BACKEND = "nvfp4_cutlass"
NVFP4_BACKEND_NAMES = frozenset(NVFP4_MOE_BACKENDS)


def experts_nvfp4(spec: ModelSpec, scheme):
    """The NVFP4 layout ``scheme`` (weights as shipped: origin checkpoint) stores the routed experts in, or None."""
    from .quant.layouts import Nvfp4
    if scheme is None or getattr(scheme, "origin", "") != "checkpoint":
        return None
    return next((lay for t in spec.tensors if t.component is Component.ROUTED_EXPERTS and len(t.shape) >= 2
                 and isinstance(lay := scheme.layout_for(t), Nvfp4)), None)
