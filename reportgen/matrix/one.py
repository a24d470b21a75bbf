"""The one-cell question: ``reportgen estimate`` for one model on one GPU at one layout.

Why a module of its own: it is the matrix's only caller that builds its own ``Matrix`` (a 1-cell job from the
command's flags) -- it then goes through exactly the same code as a job (``batches.evaluate_matrix``).
"""

from __future__ import annotations

from typing import Any

from reportgen.arch.spec import ModelSpec
from reportgen.job import Matrix
from reportgen.matrix.batches import evaluate_matrix
from reportgen.matrix.inputs import GpuLike, ModelEntry


def estimate_one(spec: ModelSpec, gpu_or_memory_gib: Any, *, model: str | None = None,
                 tp: int = 1, pp: int = 1, dp: int = 1, ep: bool = False,
                 weights_as: str = "checkpoint", kv_cache_dtype: str = "auto",
                 max_model_len: int = 8192, concurrency: int = 1, gpu_memory_utilization: float | None = None,
                 max_num_batched_tokens: int | None = None, max_num_seqs: int | None = None,
                 block_size: int | None = None, vllm_version: str | None = None, gpus_per_node: int | None = None,
                 max_nodes: int | None = None, allow_cross_node_tp: bool = False,
                 allow_long_max_model_len: bool | None = None, dtype: str = "auto",
                 quantization: str | None = None, enforce_eager: bool = False,
                 enable_prefix_caching: bool | None = None, kv_cache_memory_bytes: int | None = None,
                 weight_dtype: str | None = None, flashinfer_sampler: bool | None = None,
                 speculative_config: dict | str | None = None, draft_spec: ModelSpec | None = None,
                 indexer_kv_dtype: str = "bf16", disable_custom_all_reduce: bool = False, moe_backend: str = "auto",
                 interconnect: str | None = None, enable_extensible_kv_cache: bool | None = None,
                 expandable_segments: bool = False,
                 memory_profiler_estimate_cudagraphs: bool | None = None,
                 max_cudagraph_capture_size: int | None = None, cudagraph_capture_sizes: list[int] | None = None,
                 cudagraph_mode: str | None = None) -> dict:
    """One model, one GPU, one layout: the JSON fields of ``reportgen estimate`` (a 1-cell matrix).

    ``gpu_or_memory_gib``: a catalog ``GpuSku`` or a plain number (usable GiB, for GPUs
    not in the catalog).  ``max_nodes`` None: as many nodes as the layout needs (a one-off
    question about a layout is not a question about the fleet); TP still stays in one node
    unless ``allow_cross_node_tp``.  A ``max_model_len`` above the model's derived maximum is
    ``invalid_layout`` (vLLM refuses to start) unless ``allow_long_max_model_len`` (None: the
    ``VLLM_ALLOW_LONG_MAX_MODEL_LEN`` environment variable).  ``dtype`` ... ``kv_cache_memory_bytes``
    are vLLM's engine flags of those names (``Matrix``); ``weight_dtype`` is the pre-split name of
    ``weights_as``; ``gpu_memory_utilization`` / ``block_size`` / ``enable_extensible_kv_cache`` /
    ``memory_profiler_estimate_cudagraphs`` (the environment variable) / ``max_cudagraph_capture_size`` /
    ``cudagraph_capture_sizes`` / ``cudagraph_mode`` None: vLLM's default for the version.  ``interconnect``: for a plain number, the GPUs' link (a catalog ``interconnect``
    value; None = not known, the fitted NVSwitch terms).
    """
    from reportgen.job import DEFAULT_VLLM_VERSION

    if isinstance(gpu_or_memory_gib, (int, float)):
        mem = float(gpu_or_memory_gib)
        gpu = GpuLike(id=f"custom-{mem:g}gib", name=f"custom GPU ({mem:g} GiB)", usable_memory_gib=mem,
                      gpus_per_node=gpus_per_node or 8, interconnect=interconnect or "")
    else:
        gpu = gpu_or_memory_gib
    if max_nodes is None:
        per_node = gpus_per_node or getattr(gpu, "gpus_per_node", None) or 8
        max_nodes = max(1, -(-(tp * pp * dp) // per_node))
    if weight_dtype is not None:
        weights_as = weight_dtype
    mx = Matrix(tp=[tp], pp=[pp], dp=[dp], ep=[ep], weights_as=[weights_as],
                kv_cache_dtype=[kv_cache_dtype], max_model_len=[max_model_len], concurrency=[concurrency],
                gpu_memory_utilization=None if gpu_memory_utilization is None else [gpu_memory_utilization],
                enable_extensible_kv_cache=enable_extensible_kv_cache,
                max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                block_size=block_size, vllm_version=vllm_version or DEFAULT_VLLM_VERSION,
                gpus_per_node=gpus_per_node, max_nodes=max_nodes, allow_cross_node_tp=allow_cross_node_tp,
                dtype=dtype, quantization=quantization, enforce_eager=enforce_eager,
                enable_prefix_caching=enable_prefix_caching, kv_cache_memory_bytes=kv_cache_memory_bytes,
                flashinfer_sampler=flashinfer_sampler, speculative_config=speculative_config,
                indexer_kv_dtype=indexer_kv_dtype, disable_custom_all_reduce=disable_custom_all_reduce,
                moe_backend=moe_backend, expandable_segments=expandable_segments,
                memory_profiler_estimate_cudagraphs=memory_profiler_estimate_cudagraphs,
                max_cudagraph_capture_size=max_cudagraph_capture_size,
                cudagraph_capture_sizes=list(cudagraph_capture_sizes) if cudagraph_capture_sizes else None,
                cudagraph_mode=cudagraph_mode)
    mx.draft_spec = draft_spec      # --speculative-config method draft_model: the draft's spec (EngineOptions)
    if allow_long_max_model_len is not None:
        mx.allow_long_max_model_len = allow_long_max_model_len   # read by allow_long_max_model_len()
    df = evaluate_matrix([ModelEntry(model or spec.model_type, spec)], [gpu], mx)
    return df.row(0, named=True)
