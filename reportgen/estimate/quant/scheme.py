"""A weight storage scheme: which layout each tensor of a ModelSpec is stored in.

Why rules + exclusions instead of one layout: no real scheme quantizes every
tensor.  Embeddings, lm_head, norms, biases and MoE routers stay at the model
dtype in every vLLM quantization method we model (vLLM builds them without a
quantized method), checkpoints add their own ignore lists, some schemes only
touch some tensors (MXFP4: routed experts only; compressed-tensors: the
``targets`` of each config group), and a few let lm_head be quantized (GPTQ
``lm_head: true``).  A Scheme is therefore an ordered list of (selector,
layout) rules over the *eligible* tensors, a NameMatcher of exclusions, and
the model dtype for everything else.

Eligible = ``tensor.quantizable`` (the arch layer's "Linear weight") with a
2-D or higher shape, and not an embedding, norm or router; lm_head only when
the scheme says so.  ``shape[-2:]`` is ``(out, in)``; leading dims and
``count`` (experts) multiply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Callable

from reportgen.arch.spec import Component, Tensor

from .layouts import (Bf16MoeBackend, Mxfp4, Mxfp4MoeBackend, Nvfp4, Nvfp4MoeBackend, Plain, bf16_expert_rank_shape,
                      mxfp4_expert_bias_rank_bytes, mxfp4_expert_rank_parts, nvfp4_expert_rank_parts)
from .names import NameMatcher, module_name

Selector = Callable[[Tensor], bool]

_NEVER = {Component.EMBEDDING, Component.NORM, Component.ROUTER}


class UnsupportedQuantization(ValueError):
    """A quantization method, format or dtype we do not model (never silently treated as bf16)."""


DTYPE_BYTES = {
    "float32": 4, "fp32": 4, "float": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
}


def dtype_bytes(dtype: str) -> int:
    key = str(dtype).lower().removeprefix("torch.")
    if key not in DTYPE_BYTES:
        raise UnsupportedQuantization(
            f"unknown model dtype {dtype!r}; allowed: {', '.join(sorted(DTYPE_BYTES))}")
    return DTYPE_BYTES[key]


def is_lm_head(t: Tensor) -> bool:
    return t.component is Component.LM_HEAD or t.name.split(".")[0] == "lm_head"


def any_linear(t: Tensor) -> bool:
    return True


def routed_experts(t: Tensor) -> bool:
    return t.component is Component.ROUTED_EXPERTS


@dataclass(frozen=True)
class Rule:
    selects: Selector
    layout: object          # a layouts.* dataclass with .parts(out, in)
    label: str = ""
    names: tuple[str, ...] = ()   # the module names ``selects`` matches by, if any (() = by class / component)


@dataclass(frozen=True)
class Scheme:
    """Weight bytes for every tensor of a model, under one storage scheme.

    ``name`` is the short label shown in the report's weight-dtype axis;
    ``origin`` is "checkpoint" (served as shipped) or "what-if" (a
    hypothetical quantization of the model); ``method`` the config's
    quant_method.  ``kv_cache_dtype_default`` is the KV dtype the checkpoint
    was calibrated for (e.g. "fp8" when ModelOpt says kv_cache_quant_algo FP8),
    None when it says nothing.
    """

    name: str
    model_dtype_bytes: int = 2
    rules: tuple[Rule, ...] = ()
    exclude: NameMatcher = field(default_factory=lambda: NameMatcher(()))
    origin: str = "checkpoint"
    method: str = ""
    quantize_lm_head: bool = False
    kv_cache_dtype_default: str | None = None
    description: str = ""
    # the MoE backend whose per-rank expert layout ``expert_rank_bytes`` follows: MXFP4 (layouts.MXFP4_MOE_PADDING),
    # NVFP4 (layouts.NVFP4_MOE_BACKENDS) or, for unquantized experts, FlashInfer TRT-LLM on SM 10.x
    # (layouts.BF16_MOE_BACKENDS)
    moe_padding: Mxfp4MoeBackend | Nvfp4MoeBackend | Bf16MoeBackend | None = None

    def eligible(self, t: Tensor) -> bool:
        if len(t.shape) < 2 or t.component in _NEVER:
            return False
        if is_lm_head(t):
            return self.quantize_lm_head
        return t.quantizable and not t.name.endswith(".bias")

    def layout_for(self, t: Tensor):
        """The layout ``t`` is stored in (Plain at the model dtype when not quantized)."""
        if self.rules and self.eligible(t) and not self.exclude.matches(t.name):
            for rule in self.rules:
                if rule.selects(t):
                    return rule.layout
        return Plain(self.model_dtype_bytes)

    def breakdown(self, t: Tensor) -> dict[str, int]:
        """Bytes per stored part ("weight", "scale", "zero_point", "g_idx", ...), all copies."""
        if t.dtype_bytes:   # a dtype the model code fixes (Tensor.dtype_bytes)
            return {"weight": t.numel * t.dtype_bytes}
        if len(t.shape) < 2:
            return {"weight": t.numel * self.model_dtype_bytes}
        *lead, out, in_ = t.shape
        copies = t.count * prod(lead)
        return {k: v * copies for k, v in self.layout_for(t).parts(out, in_).items()}

    def load_copy_bytes(self, t: Tensor) -> int:
        """Bytes vLLM derives from ``t`` while loading and keeps beside it (counted in "Model loading took").

        MLA's ``kv_b_proj``, when quantized: vLLM ``model_executor/layers/attention/mla_attention.py``
        @90b0a26e ``MLAAttention.process_weights_after_loading`` -> ``impl.process_weights_after_loading``
        ("we currently do not have quantized bmm's which are needed for `W_UV` and `W_UK_T`, we just store
        fp16/bf16 copies"): ``get_and_maybe_dequant_weights(self.kv_b_proj, out_dtype=act_dtype)``
        (``quantization/utils/quant_utils.py`` @4de0dd6d: for an unquantized layer ``weight.to(out_dtype)``,
        the same tensor; otherwise ``scaled_dequantize`` (fp8) or ``quant_method.apply(layer, eye)`` -- a new
        ``(out, in)`` tensor at the model dtype), then ``W_UK`` / ``W_UV`` are views of it kept on the impl.
        One model-dtype copy of the rank's ``kv_b_proj`` (column-parallel like the weight) stays allocated.
        Not a stored part (``tensor_bytes`` / ``breakdown`` are the checkpoint's bytes): ``estimate.weights``
        adds it to the tensor's per-rank weight bytes.
        """
        if (t.component is Component.ATTENTION and module_name(t.name).split(".")[-1] == "kv_b_proj"
                and len(t.shape) >= 2 and not isinstance(self.layout_for(t), Plain)):
            return t.numel * self.model_dtype_bytes
        return 0

    def tensor_bytes(self, t: Tensor) -> int:
        """Bytes of the whole unsharded tensor (all ``count`` copies), scales and zeros included."""
        return sum(self.breakdown(t).values())

    def expert_rank_bytes(self, t: Tensor, moe_tp: int = 1, experts_on_rank: int | None = None) -> float:
        """Bytes of routed-expert tensor ``t`` on one rank: ``experts_on_rank`` experts, each split ``moe_tp`` ways.

        Why not just ``tensor_bytes / count / moe_tp``: vLLM's MXFP4 MoE backends
        pad the per-rank intermediate size (and the hidden size) before
        allocating, and the Triton backend then swizzles the weights and scales
        into padded tiles, keeps the loaded scales and casts the biases to
        float32 (``layouts.Mxfp4MoeBackend``), so gpt-oss holds ~8-14 %
        more expert bytes than its checkpoint slice.  The expert biases follow
        vLLM's shapes too: gate_up's is split (and padded) like the matrix,
        down's is whole on every rank.  For every other layout this *is* the
        proportional share -- except NVFP4 experts in the layout of the NVFP4 MoE backend vLLM runs them with
        on the GPU (``layouts.Nvfp4MoeBackend``: block scales in 128 x 4 tiles, a non-gated intermediate padded
        to them on the CUTLASS kernels, TRT-LLM's hidden / intermediate alignment) -- and unquantized experts under
        FlashInfer TRT-LLM on SM 10.x (``layouts.Bf16MoeBackend``: the rank's intermediate rounded up to 128).
        ``experts_on_rank`` defaults to all ``count`` experts (no EP).
        """
        n = t.count if experts_on_rank is None else experts_on_rank
        backend = self.moe_padding
        if backend and t.component is Component.ROUTED_EXPERTS and t.shape:
            last = module_name(t.name).split(".")[-1]
            down, fused = "down" in last or last == "w2", "gate_up" in last or last == "w13"
            layout = self.layout_for(t)
            if isinstance(backend, Bf16MoeBackend):
                if isinstance(layout, Plain) and len(t.shape) >= 2:
                    *lead, out, in_ = t.shape
                    rows, cols = bf16_expert_rank_shape(out, in_, moe_tp, down, fused, backend)
                    return rows * cols * (t.dtype_bytes or layout.element_bytes) * n * prod(lead)
                return self.tensor_bytes(t) * n / t.count / moe_tp
            if isinstance(backend, Nvfp4MoeBackend):
                if isinstance(layout, Nvfp4) and len(t.shape) >= 2:
                    *lead, out, in_ = t.shape
                    parts = nvfp4_expert_rank_parts(out, in_, moe_tp, down=down, fused_gate_up=fused,
                                                    backend=backend, group=layout.group_size)
                    scalars = {k: v for k, v in layout.parts(out, in_).items() if k not in parts}  # global / input
                    return (sum(parts.values()) + sum(scalars.values())) * n * prod(lead)
                return self.tensor_bytes(t) * n / t.count / moe_tp
            if isinstance(layout, Mxfp4) and len(t.shape) >= 2:
                *lead, out, in_ = t.shape
                parts = mxfp4_expert_rank_parts(out, in_, moe_tp, down=down, fused_gate_up=fused,
                                                padding=backend)
                return sum(parts.values()) * n * prod(lead)
            if len(t.shape) == 1 and t.name.endswith(".bias") and self._mxfp4_experts():
                return n * mxfp4_expert_bias_rank_bytes(t.shape[0], moe_tp, down=down, fused_gate_up=fused,
                                                        padding=backend,
                                                        model_dtype_bytes=self.model_dtype_bytes)
        return self.tensor_bytes(t) * n / t.count / moe_tp

    def _mxfp4_experts(self) -> bool:
        return any(isinstance(r.layout, Mxfp4) for r in self.rules)

    def is_quantized(self, t: Tensor) -> bool:
        return not isinstance(self.layout_for(t), Plain)

    def describe(self) -> str:
        """One line for the report: what is stored how, and what stays unquantized."""
        return self.description or self.name


def scale_label(nbytes: int) -> str:
    return {1: "fp8", 2: "16-bit", 4: "fp32"}.get(nbytes, f"{nbytes}-byte")


def unquantized_note(mb: int, skip=()) -> str:
    """The describe() tail: what stays at the model dtype."""
    n = len(skip or ())
    return ("; embeddings, lm_head, norms, routers" + (f", {n} ignore-list entries" if n else "")
            + f" at {mb} B")
