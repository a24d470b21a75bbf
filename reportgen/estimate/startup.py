"""Start-up memory of a rank outside the profile-run activation: non-torch (NCCL, CUDA context) memory, the
custom all-reduce buffers, the CUDA context held before the budget is measured, and CUDA-graph capture.

Why a module of its own: these terms depend on the layout (TP / PP / DP), MoE-ness and the version profile only,
never on the weights, the KV cache or the batched tokens; the forms and fitted constants live in
``overheads.py``.  Split out of ``tables.py`` unchanged; ``tables`` re-exports every name.
"""

from __future__ import annotations

from . import overheads as oh
from . import profiles as vp
from .layout import Layout


def non_torch_gib(lay: Layout, is_moe: bool, profile: vp.VllmProfile | None = None, nvls: bool = True) -> float:
    """Non-torch memory of one rank; ``profile`` None = the 0.19 fit in overheads.py; ``nvls`` False =
    GPUs without NVLink SHARP (overheads.comm_terms)."""
    if profile is not None:
        return vp.non_torch_gib(profile, lay.tp, lay.pp, lay.dp, is_moe, oh.NT_PP_ONLY, nvls)
    group = lay.tp * (lay.dp if is_moe else 1)
    if group > 1:
        return (oh.NT_COMM_BASE if nvls else oh.NT_SINGLE) + oh.NT_COMM_PER_RANK * group
    return oh.NT_PP_ONLY if lay.pp > 1 else oh.NT_SINGLE


def custom_ar_gib(lay: Layout, disabled: bool = False, nvlink_group: int = 1 << 20) -> float:
    """vLLM's custom all-reduce buffers on a rank (overheads.CUSTOM_AR_GIB): built for a TP group of
    2, 4, 6 or 8 unless ``--disable-custom-all-reduce``, and above TP 2 only on GPUs all NVLink-linked
    (``nvlink_group``: overheads.comm_terms)."""
    on = (not disabled and lay.tp in oh.CUSTOM_AR_SIZES and (lay.tp == 2 or lay.tp <= nvlink_group))
    return oh.CUSTOM_AR_GIB if on else 0.0


def context_gib(lay: Layout, is_moe: bool, custom_ar_disabled: bool = False) -> float:
    """Memory a rank holds when vLLM takes its start-up snapshot (CUDA context; with a communication
    group also NCCL / custom all-reduce set-up): outside the budget (overheads.CONTEXT_GIB).  The
    fitted CONTEXT_COMM_GIB holds the custom all-reduce buffers (H100 TP 2 / 4); a TP group without
    them (the flag, or a TP size vLLM does not build it for) holds that much less.  The GPU's part of
    the rule (TP > 2 on GPUs not all NVLink-linked) is applied per GPU (exprs.gpu_pass, ``ca``)."""
    if lay.tp * (lay.dp if is_moe else 1) == 1:
        return oh.CONTEXT_GIB
    return oh.CONTEXT_COMM_GIB - oh.CUSTOM_AR_GIB + custom_ar_gib(lay, custom_ar_disabled)


def graph_gib(layers_on_stage: int, tp: int, hidden: int, is_moe: bool, cuda_graphs: bool = True) -> float:
    """CUDA-graph memory of one stage (form and constants in overheads.py); 0 when the engine
    captures no graphs (vLLM ``--enforce-eager``: ``compile_or_warm_up_model`` skips
    ``capture_model``)."""
    if not cuda_graphs:
        return 0.0
    return (oh.G_BASE + layers_on_stage * (oh.G_PER_LAYER + oh.G_PER_LAYER_WIDTH * hidden / 4096 / tp)
            + (oh.G_MOE if is_moe else 0.0))
