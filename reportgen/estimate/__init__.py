"""The estimator: per-rank weights, KV blocks, vLLM's overhead terms and budget.

Modules (one concern each): ``profiles`` (vLLM version profiles; with
``capture_sizes``, ``model_runner``), ``layout`` (PP split, expert split), ``weights``
(bytes per rank), ``kvcache`` (pages, groups, blocks per request), ``overheads``
(the calibrated activation / non-torch / CUDA-graph model), ``tables`` (per-model
precompute of stage slots), ``exprs`` (the per-cell polars expressions; with
``request_blocks``, ``verdicts``, ``compressed_lens``, ``encoder_lens``),
``quant`` (storage schemes, owned separately), ``seed_api`` (the seed's
``estimate_memory``).  Nothing heavy is imported here.
"""
