"""`reportgen estimate MODEL`: one model, one layout, printed as a table or one JSON object.

Scripts (and our own accuracy checks) call this with --json, so its keys are a
contract: model, status, reason, params_total, params_text, params_active,
kv_bytes_per_token (integer bytes per token over all KV-holding layers at TP 1
in the KV dtype, before any sliding-window cap), then the per-GPU budget terms.
"""

from __future__ import annotations

import json
import sys

from reportgen.job import KV_DTYPES, WEIGHT_DTYPES, ModelRef, normalise_dtype

DEFAULT_GPU = "H100"


def _ref(text: str) -> ModelRef:
    from pathlib import Path

    if Path(text).exists():
        # sources treat only path-shaped ids as local; a bare existing name means the folder here
        return ModelRef(text if text.startswith(("/", ".", "~")) or text.endswith(".json") else "./" + text)
    mid, _, rev = text.partition("@")
    return ModelRef(mid, rev or None)


def kv_bytes_per_token(spec, weight_dtype: str = "checkpoint", kv_cache_dtype: str = "auto") -> int:
    """All KV-holding layers, one token, TP 1, in the KV dtype vLLM would use (``auto`` follows the
    serving dtype: bf16 for a float32 checkpoint, fp8 when a ModelOpt checkpoint says its KV is fp8)."""
    from reportgen.estimate.kvcache import kv_element_bytes, layer_token_bytes
    from reportgen.estimate.tables import PLAIN_ACT, serving_dtype

    elem = kv_element_bytes(kv_cache_dtype, PLAIN_ACT[serving_dtype(spec, weight_dtype)], spec)
    return int(sum(layer_token_bytes(l, kv_cache_dtype, elem, 1) for l in spec.layers_kv))


def arch_fields(model: str, spec, weight_dtype: str = "checkpoint", kv_cache_dtype: str = "auto") -> dict:
    out = {"model": model, "status": "ok", "reason": "", "model_type": spec.model_type,
           "family": spec.family, "dtype": spec.dtype}
    if spec.unsupported_reason:
        out.update(status="unsupported", reason=spec.unsupported_reason)
        return out
    out.update(
        params_total=spec.params_total,
        params_text=spec.params_text,
        params_active=spec.params_active,
        params_mtp=spec.mtp_params,
        params_by_component=spec.params_by_component(),
        kv_bytes_per_token=kv_bytes_per_token(spec, weight_dtype, kv_cache_dtype),
        num_layers=spec.num_layers,
        num_attention_heads=spec.num_attention_heads,
        num_kv_heads=spec.num_kv_heads,
        head_dim=spec.head_dim,
        num_experts=spec.num_experts,
        experts_per_token=spec.experts_per_token,
        is_mla=spec.is_mla,
        multimodal=spec.multimodal,
        attention_kinds=sorted({l.kind.value for l in spec.layers_kv}),
    )
    if spec.multimodal:
        from reportgen.arch.vision_parts import vision_split

        split = vision_split(spec)
        out.update(params_vision_tower=split["tower"], params_projector=split["projector"])
        if spec.unloaded_params:
            out["params_not_loaded"] = spec.unloaded_params
        if spec.notes:
            out["notes"] = "; ".join(spec.notes)      # e.g. a trimmed checkpoint's class-default tower
    return out


def estimate_command(args, UsageError) -> int:
    from reportgen.arch import build_spec
    from reportgen.arch.errors import ConfigError
    from reportgen.sources import SourceError, resolve_all

    args.dtype, args.kv_cache_dtype = normalise_dtype(args.dtype), normalise_dtype(args.kv_cache_dtype)
    if args.dtype not in WEIGHT_DTYPES:
        raise UsageError(f"--dtype {args.dtype!r} is not allowed; allowed: {', '.join(WEIGHT_DTYPES)}")
    if args.kv_cache_dtype not in KV_DTYPES:
        raise UsageError(f"--kv-cache-dtype {args.kv_cache_dtype!r} is not allowed; allowed: {', '.join(KV_DTYPES)}")
    for name in ("tp", "pp", "dp", "concurrency"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.gpu_memory_utilization <= 1:
        raise UsageError("--gpu-memory-utilization must be in (0, 1]")
    if args.gpu_memory_gib is not None and not 0 < args.gpu_memory_gib < 10_000:
        raise UsageError("--gpu-memory-gib must be a positive number of GiB")
    gpu = None
    if args.gpu or args.gpu_memory_gib is None:
        from reportgen.catalog import UnknownGpu, load_catalog

        try:
            gpu = load_catalog(args.catalog).get(args.gpu or DEFAULT_GPU)
        except UnknownGpu as e:
            raise UsageError(f"--gpu: {e}") from None
        except (OSError, ValueError) as e:
            raise UsageError(f"--catalog: {e}") from None

    ref = _ref(args.model)
    (res,) = resolve_all([ref], offline=True if args.offline else None)
    if isinstance(res, SourceError):
        return _fail(args, {"model": args.model, "status": "error", "reason": f"{res.kind}: {res.message}",
                            "error_kind": res.kind})
    try:
        spec = build_spec(res.config, model_id=ref.id, extra=res.extra)
    except ConfigError as e:
        return _fail(args, {"model": args.model, "status": "error", "reason": f"malformed_config: {e}",
                            "error_kind": "malformed_config"})
    if getattr(args, "limit_mm_per_prompt", None) is not None:
        from reportgen.estimate.encoder import apply_limits, parse_limits

        try:
            spec = apply_limits(spec, parse_limits(args.limit_mm_per_prompt))
        except ValueError as e:
            raise UsageError(f"--{e}".replace("limit_mm_per_prompt", "limit-mm-per-prompt", 1)) from None
    if args.weights == "checkpoint":
        from reportgen.estimate.quant import attach_checkpoint_headers
        from reportgen.sources import checkpoint_weight_bytes

        try:
            report = attach_checkpoint_headers(spec, checkpoint_weight_bytes(ref, offline=True if args.offline else None))
            weights_info = {"weights_source": "safetensors", "weights_header_bytes": report.get("header_bytes"),
                            "weights_unmatched_bytes": report.get("unmatched_bytes")}
        except SourceError as e:
            weights_info = {"weights_source": "config",
                            "weights_note": f"checkpoint headers unavailable ({e.kind}: {e.message})"}
    else:
        weights_info = {}
    try:
        out = arch_fields(args.model, spec, args.dtype.lower(), args.kv_cache_dtype.lower())
    except ValueError as e:           # a KV dtype this architecture cannot use (fp8_ds_mla on GQA)
        raise UsageError(f"--kv-cache-dtype: {e}") from None
    out.update(config_source=res.source, revision=res.revision, **weights_info)
    if spec.unsupported_reason:
        return _fail(args, out)

    from reportgen.matrix import estimate_one

    settings = dict(tp=args.tp, pp=args.pp, dp=args.dp, ep=args.ep, weight_dtype=args.dtype.lower(),
                    kv_cache_dtype=args.kv_cache_dtype.lower(),
                    max_model_len=args.max_model_len or min(spec.max_model_len_limit or spec.max_position_embeddings or 32768, 32768),
                    concurrency=args.concurrency, gpu_memory_utilization=args.gpu_memory_utilization,
                    max_num_batched_tokens=args.max_num_batched_tokens, max_num_seqs=args.max_num_seqs)
    if args.vllm_version:
        from reportgen.job import JobError, parse_vllm_version

        try:
            settings["vllm_version"] = parse_vllm_version(args.vllm_version, "--vllm-version")
        except JobError as e:
            raise UsageError(str(e)) from None
    budget = estimate_one(spec, gpu if gpu is not None else args.gpu_memory_gib, **settings)
    # the architecture fields above are the contract; the budget adds, never overwrites
    if "kv_bytes_per_token" in budget:
        budget["kv_bytes_per_token_rank"] = budget.pop("kv_bytes_per_token")
    out["status"], out["reason"] = budget.pop("status", "ok"), budget.pop("reason", "") or ""
    out.update({k: v for k, v in budget.items() if k not in out})
    _print(args, out)
    return 0 if out.get("status") not in ("error",) else 1


def _fail(args, out: dict) -> int:
    _print(args, out)
    return 1


def _print(args, out: dict) -> None:
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return
    width = max(len(k) for k in out)
    for k, v in out.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b:,}" if isinstance(b, int) else f"{a}={b}" for a, b in v.items() if b)
        elif isinstance(v, float):
            v = f"{v:,.3f}"
        elif isinstance(v, int) and not isinstance(v, bool):
            v = f"{v:,}"
        print(f"{k:<{width}}  {v}", file=sys.stdout)
