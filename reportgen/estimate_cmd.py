"""`reportgen estimate MODEL`: one model, one layout, printed as a table or one JSON object.

Scripts (and our own accuracy checks) call this with --json, so its keys are a
contract: model, status, reason, params_total, params_text, params_active,
kv_bytes_per_token (integer bytes per token over all KV-holding layers at TP 1
in the KV dtype, before any sliding-window cap), then the per-GPU budget terms,
then ``engine`` (vLLM's --dtype, --quantization, --block-size, --enforce-eager,
--enable-prefix-caching, --kv-cache-memory-bytes as used) and, with
``--from-vllm-args``, ``vllm_args_notes`` (one line per flag accepted without effect).

Engine options follow ``vllm serve`` names and meanings (``reportgen.vllm_args``);
``--weights-as`` is the one what-if (not a vLLM flag).
"""

from __future__ import annotations

import json
import sys

from reportgen.job import KV_DTYPES, WEIGHTS_AS, ModelRef, normalise_dtype

DEFAULT_GPU = "H100"


def _ref(text: str) -> ModelRef:
    from pathlib import Path

    if Path(text).exists():
        # sources treat only path-shaped ids as local; a bare existing name means the folder here
        return ModelRef(text if text.startswith(("/", ".", "~")) or text.endswith(".json") else "./" + text)
    mid, _, rev = text.partition("@")
    return ModelRef(mid, rev or None)


def kv_bytes_per_token(spec, weights_as: str = "checkpoint", kv_cache_dtype: str = "auto", dtype: str = "auto",
                       indexer_kv_dtype: str = "bf16") -> int:
    """All KV-holding layers, one token, TP 1, in the KV dtype vLLM would use (``auto`` follows the
    serving dtype: bf16 for a float32 checkpoint, fp8 when a ModelOpt checkpoint says its KV is fp8)."""
    from reportgen.estimate.kvcache import kv_bytes_per_token as per_token
    from reportgen.estimate.tables import PLAIN_ACT, serving_dtype

    return int(per_token(spec, kv_cache_dtype, PLAIN_ACT[serving_dtype(spec, weights_as, dtype)], 1, indexer_kv_dtype))


def kv_cache_dtype_used(spec, weights_as: str = "checkpoint", kv_cache_dtype: str = "auto",
                        dtype: str = "auto") -> str:
    """The KV dtype vLLM allocates (``auto`` resolved: serving dtype or the checkpoint's fp8 KV)."""
    from reportgen.estimate.quant import kv_cache_dtype_used as used
    from reportgen.estimate.tables import serving_dtype

    return used(kv_cache_dtype, serving_dtype(spec, weights_as, dtype), spec)


def arch_fields(model: str, spec, weights_as: str = "checkpoint", kv_cache_dtype: str = "auto",
                dtype: str = "auto", indexer_kv_dtype: str = "bf16") -> dict:
    out = {"model": model, "status": "ok", "reason": "", "model_type": spec.model_type,
           "family": spec.family, "dtype": spec.dtype}
    if spec.unsupported_reason:
        out.update(status="unsupported", reason=spec.unsupported_reason)
        if spec.tensors:    # weights modelled, KV refused (registry.WEIGHTS_ONLY): exact counts, no KV figure
            out.update(params_total=spec.params_total, params_active=spec.params_active,
                       params_by_component=spec.params_by_component())
        return out
    out.update(
        params_total=spec.params_total,
        params_text=spec.params_text,
        params_active=spec.params_active,
        params_mtp=spec.mtp_params,
        params_by_component=spec.params_by_component(),
        kv_bytes_per_token=kv_bytes_per_token(spec, weights_as, kv_cache_dtype, dtype, indexer_kv_dtype),
        kv_cache_dtype_used=kv_cache_dtype_used(spec, weights_as, kv_cache_dtype, dtype),
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
    if spec.notes:      # what the architecture layer chose and says (a trimmed tower, per-layer top-k, MTP skipped)
        out["model_notes"] = list(spec.notes)
    if spec.unloaded_params:   # parameters transformers has and vLLM does not load (llava, longcat_flash)
        out["params_not_loaded"] = spec.unloaded_params
    return out


def check_ranges(settings: dict, concurrency: int, UsageError) -> None:
    """The same bounds a job file enforces (job.py), so `estimate` refuses what `run` refuses."""
    from reportgen.job import _LIST_INT_AXES, _SCALAR_INT

    bounds = {**{k: _LIST_INT_AXES[k] for k in ("tp", "pp", "dp", "max_model_len")},
              **{k: _SCALAR_INT[k] for k in ("max_num_batched_tokens", "max_num_seqs")}}
    values = {**settings, "concurrency": concurrency}
    bounds["concurrency"] = _LIST_INT_AXES["concurrency"]
    for name, (lo, hi) in bounds.items():
        value = values.get(name)
        if value is not None and not lo <= value <= hi:
            raise UsageError(f"--{name.replace('_', '-')} {value} is out of range; allowed: {lo} to {hi}")


# the engine options of `reportgen estimate` (vLLM's names) and their defaults when not given
ENGINE_DEFAULTS = {"tp": 1, "pp": 1, "dp": 1, "ep": False, "dtype": "auto", "quantization": None,
                   "kv_cache_dtype": "auto", "block_size": None, "max_model_len": None,
                   "gpu_memory_utilization": None, "kv_cache_memory_bytes": None, "max_num_batched_tokens": None,
                   "enable_extensible_kv_cache": None,
                   "max_num_seqs": None, "enable_prefix_caching": None, "enforce_eager": False,
                   "speculative_config": None, "disable_custom_all_reduce": False, "moe_backend": "auto",
                   "max_cudagraph_capture_size": None, "cudagraph_capture_sizes": None}


def engine_settings(args, UsageError) -> tuple[str, dict, list[str]]:
    """(model text, engine settings, notes) from the structured options or a pasted vLLM line.

    With ``--from-vllm-args`` the line decides every engine setting (vLLM's defaults for what it
    leaves out); giving one of them again as a reportgen option is a usage error, never a silent
    choice between the two.
    """
    from reportgen.vllm_args import (ESTIMATE_KEYS, VllmArgsError, _engine_value, human_readable_int, model_dtype,
                                     parse_vllm_command, quantization_method)

    settings = dict(ENGINE_DEFAULTS)
    notes: list[str] = []
    if args.from_vllm_args is not None:
        try:
            cmd = parse_vllm_command(args.from_vllm_args)
        except VllmArgsError as e:
            raise UsageError(f"--from-vllm-args: {e}") from None
        given = [k for k in ENGINE_DEFAULTS if getattr(args, k, None) is not None]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} given both as an option and through "
                             "--from-vllm-args; put it in the vLLM command line only")
        model = cmd.model
        rev = cmd.engine.pop("revision", None)
        if rev:
            model = f"{model}@{rev}"
        if args.model and args.model != model:
            raise UsageError(f"MODEL {args.model!r} and the vLLM command line's model {model!r} differ; give one")
        for dest, value in cmd.engine.items():
            settings[ESTIMATE_KEYS[dest]] = value
        notes = cmd.notes
        args._vllm_image = (cmd.image, cmd.image_version)    # a docker / podman line: its image's release
    else:
        if not args.model:
            raise UsageError("MODEL is required (or paste a vLLM command line with --from-vllm-args)")
        model = args.model
        for k in ENGINE_DEFAULTS:
            if getattr(args, k, None) is not None:
                settings[k] = getattr(args, k)
        try:
            settings["dtype"] = model_dtype(settings["dtype"])
        except VllmArgsError as e:
            raise UsageError(f"--dtype: {e}") from None
        try:
            settings["quantization"] = quantization_method(settings["quantization"])
        except VllmArgsError as e:
            raise UsageError(f"--quantization: {e}") from None
        try:
            settings["moe_backend"] = _engine_value("moe_backend", settings["moe_backend"])
        except VllmArgsError as e:
            raise UsageError(f"--moe-backend: {e}") from None
        if settings["speculative_config"] is not None:
            try:
                settings["speculative_config"] = _engine_value("speculative_config", settings["speculative_config"])
            except VllmArgsError as e:
                raise UsageError(f"--speculative-config: {e}") from None
        for k in ("max_model_len", "max_num_batched_tokens", "kv_cache_memory_bytes"):
            if settings[k] is not None:
                try:
                    settings[k] = human_readable_int(settings[k])
                except VllmArgsError as e:
                    raise UsageError(f"--{k.replace('_', '-')}: {e}") from None
    if settings["moe_backend"] == "cutlass":
        notes.append("--moe-backend cutlass: on NVFP4 routed experts (the checkpoint as shipped) the activation "
                     "prices vLLM's CUTLASS MoE call -- row copies and the weighted product, freed per call, as a "
                     "peak beside the dense forward, and its workspaces; other experts keep the fitted terms")
    elif settings["moe_backend"] != "auto":
        notes.append(f"--moe-backend {settings['moe_backend']}: accepted where vLLM runs it (a GPU or experts' "
                     "quantization it cannot run is invalid_layout with vLLM's exception); the MoE terms are the "
                     "fitted ones (only cutlass on NVFP4 experts is priced differently)")
    settings["weights_as"] = _weights_as(args.weights_as, UsageError)
    if settings["quantization"] and settings["weights_as"] != "checkpoint":
        raise UsageError(f"--weights-as {settings['weights_as']} (a what-if re-quantization) cannot be combined "
                         f"with --quantization {settings['quantization']} (the checkpoint as vLLM loads it)")
    settings["kv_cache_dtype"] = normalise_dtype(str(settings["kv_cache_dtype"]))
    if settings["kv_cache_dtype"] not in KV_DTYPES:
        raise UsageError(f"--kv-cache-dtype {settings['kv_cache_dtype']!r} is not allowed; allowed: {', '.join(KV_DTYPES)}")
    for name in ("tp", "pp", "dp", "block_size", "max_num_seqs", "max_model_len", "max_num_batched_tokens",
                 "kv_cache_memory_bytes"):
        if settings[name] is not None and settings[name] < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if settings["gpu_memory_utilization"] is not None and not 0 < settings["gpu_memory_utilization"] <= 1:
        raise UsageError("--gpu-memory-utilization must be in (0, 1]")
    return model, settings, notes


def _weights_as(value, UsageError) -> str:
    if value is None:
        return "checkpoint"
    key = normalise_dtype(value)
    key = "checkpoint" if key == "auto" else key
    if key not in WEIGHTS_AS:
        raise UsageError(f"--weights-as {value!r} is not allowed; allowed: {', '.join(WEIGHTS_AS)}")
    return key


def estimate_command(args, UsageError) -> int:
    from reportgen.arch import build_spec
    from reportgen.arch.errors import ConfigError
    from reportgen.sources import SourceError, resolve_all

    model_text, eng, notes = engine_settings(args, UsageError)
    args._vllm_notes = notes
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    check_ranges(eng, args.concurrency, UsageError)
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

    ref = _ref(model_text)
    (res,) = resolve_all([ref], offline=True if args.offline else None)
    if isinstance(res, SourceError):
        return _fail(args, {"model": model_text, "status": "error", "reason": f"{res.kind}: {res.message}",
                            "error_kind": res.kind})
    try:
        spec = build_spec(res.config, model_id=ref.id, extra=res.extra)
    except ConfigError as e:
        return _fail(args, {"model": model_text, "status": "error", "reason": f"malformed_config: {e}",
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
        out = arch_fields(model_text, spec, eng["weights_as"], eng["kv_cache_dtype"], eng["dtype"],
                          eng.get("indexer_kv_dtype") or "bf16")
    except ValueError as e:           # a KV dtype this architecture cannot use (fp8_ds_mla on GQA)
        raise UsageError(f"--kv-cache-dtype: {e}") from None
    out.update(config_source=res.source, revision=res.revision, **weights_info)
    from reportgen.estimate.served import release_values, spec_for_version
    from reportgen.job import DEFAULT_VLLM_VERSION

    version = vllm_version_for(args, notes, UsageError)
    if spec.unsupported_reason:
        # a config every release read fails to load: vLLM's error first, then the family's (served.spec_for_version)
        out["reason"] = spec_for_version(spec, version or DEFAULT_VLLM_VERSION).unsupported_reason
        return _fail(args, out)
    if eng["ep"] and not spec.num_experts:
        eng["ep"] = False           # vLLM ignores expert parallel on a dense model; the matrix rule is for jobs
        notes = notes + ["--enable-expert-parallel: no effect on a dense model (vLLM ignores it)"]

    from reportgen.matrix import estimate_one

    # the default --max-model-len: the derived maximum of the job's release (it changed for yarn in 0.30 --
    # arch/rope.py "Per release"), as the matrix's length rule reads it; a vLLM command without one gets vLLM's
    # default (the same, but a longrope config's original_max_position_embeddings from 0.11.1)
    vspec = release_values(spec, version or DEFAULT_VLLM_VERSION)
    limit = vspec.max_model_len_limit or vspec.max_position_embeddings or 32768
    default_len = (vspec.max_model_len_default or limit) if args.from_vllm_args is not None else min(limit, 32768)
    settings = dict(tp=eng["tp"], pp=eng["pp"], dp=eng["dp"], ep=eng["ep"], weights_as=eng["weights_as"],
                    kv_cache_dtype=eng["kv_cache_dtype"], max_model_len=eng["max_model_len"] or default_len,
                    concurrency=args.concurrency, gpu_memory_utilization=eng["gpu_memory_utilization"],
                    max_num_batched_tokens=eng["max_num_batched_tokens"], max_num_seqs=eng["max_num_seqs"],
                    block_size=eng["block_size"], dtype=eng["dtype"], quantization=eng["quantization"],
                    enforce_eager=eng["enforce_eager"], enable_prefix_caching=eng["enable_prefix_caching"],
                    kv_cache_memory_bytes=eng["kv_cache_memory_bytes"],
                    speculative_config=eng["speculative_config"],
                    disable_custom_all_reduce=bool(eng["disable_custom_all_reduce"]), moe_backend=eng["moe_backend"],
                    enable_extensible_kv_cache=eng["enable_extensible_kv_cache"])
    if eng["enable_extensible_kv_cache"]:
        from reportgen.job import Matrix, extensible_kv_cache_problem
        problem = extensible_kv_cache_problem(Matrix(vllm_version=version or DEFAULT_VLLM_VERSION,
                                                     kv_cache_memory_bytes=eng["kv_cache_memory_bytes"]))
        if problem:
            raise UsageError(f"--enable-extensible-kv-cache: {problem}")
    if eng["speculative_config"]:
        settings["draft_spec"] = draft_spec_for(eng["speculative_config"], offline=True if args.offline else None,
                                                headers=args.weights == "checkpoint")
    if eng.get("allow_long_max_model_len") is not None:
        settings["allow_long_max_model_len"] = eng["allow_long_max_model_len"]
    if eng.get("flashinfer_sampler") is not None:
        settings["flashinfer_sampler"] = eng["flashinfer_sampler"]
    capture = {k: eng.get(k) for k in ("max_cudagraph_capture_size", "cudagraph_capture_sizes", "cudagraph_mode")
               if eng.get(k) is not None}
    if capture:             # the CUDA-graph capture set (estimate/capture_sizes.py), checked as a job's would be
        from reportgen.job import Matrix, capture_settings_problem
        if capture.get("cudagraph_capture_sizes"):
            capture["cudagraph_capture_sizes"] = sorted(set(capture["cudagraph_capture_sizes"]))
            if min(capture["cudagraph_capture_sizes"]) < 1:
                raise UsageError("--cudagraph-capture-sizes: sizes must be at least 1")
        if (capture.get("max_cudagraph_capture_size") or 1) < 1:
            raise UsageError("--max-cudagraph-capture-size must be at least 1")
        problem = capture_settings_problem(Matrix(vllm_version=version or DEFAULT_VLLM_VERSION, **capture))
        if problem:
            raise UsageError(problem)
        settings.update(capture)
    if eng.get("memory_profiler_estimate_cudagraphs") is not None:
        # vLLM ignores an environment variable it does not read: the line still starts (a note, not an error)
        from reportgen.job import estimate_cudagraphs_problem
        if estimate_cudagraphs_problem(version or DEFAULT_VLLM_VERSION):
            notes.append(f"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS: not read by vLLM {version} (it arrives in "
                         "0.18.0; graphs are captured outside the budget there): ignored")
            eng["memory_profiler_estimate_cudagraphs"] = None
        else:
            settings["memory_profiler_estimate_cudagraphs"] = eng["memory_profiler_estimate_cudagraphs"]
    if eng.get("expandable_segments"):
        settings["expandable_segments"] = True
    if eng.get("indexer_kv_dtype"):      # --attention-config '{"indexer_kv_dtype": ...}' (MiniMax-M3)
        settings["indexer_kv_dtype"] = eng["indexer_kv_dtype"]
    if version is not None:
        settings["vllm_version"] = version
    budget = estimate_one(spec, gpu if gpu is not None else args.gpu_memory_gib, **settings)
    nv_note = nvfp4_moe_note(spec, gpu, eng, budget.get("vllm_version"))
    if nv_note:             # a field of its own: the same with --from-vllm-args and the structured options
        budget["moe_backend_note"] = nv_note
    from reportgen.estimate.profiles import profile_for
    profile, note = profile_for(budget.get("vllm_version"))
    budget["vllm_profile"] = profile.label
    if note:
        budget["vllm_profile_note"] = note
    from reportgen.catalog import platform_note
    if gpu is not None and platform_note(getattr(gpu, "vendor", None)):
        budget["platform_note"] = platform_note(gpu.vendor)
    # the architecture fields above are the contract; the budget adds, never overwrites
    if "kv_bytes_per_token" in budget:
        budget["kv_bytes_per_token_rank"] = budget.pop("kv_bytes_per_token")
    out["status"], out["reason"] = budget.pop("status", "ok"), budget.pop("reason", "") or ""
    out.update({k: v for k, v in budget.items() if k not in out})
    # the engine flags that are not result columns (`dtype` above is the checkpoint's config dtype)
    out["engine"] = {k: eng[k] for k in ("dtype", "quantization", "block_size", "enable_extensible_kv_cache",
                                         "enforce_eager",
                                         "enable_prefix_caching", "kv_cache_memory_bytes", "speculative_config",
                                         "disable_custom_all_reduce", "moe_backend")}
    out["engine"]["expandable_segments"] = bool(eng.get("expandable_segments"))   # from PYTORCH_CUDA_ALLOC_CONF
    for key in ("max_cudagraph_capture_size", "cudagraph_capture_sizes", "cudagraph_mode"):   # the capture set, if set
        if eng.get(key) is not None:
            out["engine"][key] = eng[key]
    # the engine flags above as given (None: vLLM's default); what the release then does with the KV cache:
    from reportgen.job import Matrix, extensible_kv_cache
    used = Matrix(vllm_version=budget.get("vllm_version") or DEFAULT_VLLM_VERSION,
                  kv_cache_memory_bytes=eng["kv_cache_memory_bytes"],
                  enable_extensible_kv_cache=eng["enable_extensible_kv_cache"],
                  memory_profiler_estimate_cudagraphs=eng.get("memory_profiler_estimate_cudagraphs"))
    out["engine"]["extensible_kv_cache_used"] = extensible_kv_cache(used)
    if used.memory_profiler_estimate_cudagraphs is not None:    # from VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS
        out["engine"]["memory_profiler_estimate_cudagraphs"] = used.memory_profiler_estimate_cudagraphs
        if used.estimate_cudagraphs_used is None:
            notes.append("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS: no effect on the KV cache here -- the extensible "
                         "KV cache measures the captured graphs after warm-up (vLLM 0.34 gpu_worker.py: 'the disabled "
                         "estimate loses nothing there')")
    if args.from_vllm_args is not None:
        out["vllm_args_notes"] = notes
    elif notes:
        out["notes"] = notes
    _print(args, out)
    return 0 if out.get("status") not in ("error",) else 1


def vllm_version_for(args, notes: list, UsageError) -> str | None:
    """The vLLM release to price: ``--vllm-version``, else the release a pasted container line's image tag names
    (``vllm/vllm-openai:v0.27.1`` -> 0.27.1), else None (the newest release read).  An explicit --vllm-version wins
    over the tag, with a note when they differ; an image whose tag names no release (latest, nightly, a digest)
    gets a note that the newest profile prices it.  Notes are appended to ``notes``."""
    from reportgen.estimate.profiles import parse_version
    from reportgen.job import DEFAULT_VLLM_VERSION, JobError, parse_vllm_version

    image, tagged = getattr(args, "_vllm_image", None) or (None, None)
    try:
        given = parse_vllm_version(args.vllm_version, "--vllm-version") if args.vllm_version else None
    except JobError as e:
        raise UsageError(str(e)) from None
    if tagged is not None:
        try:
            tagged = parse_vllm_version(tagged, f"the image tag of {image}")
        except JobError as e:
            if given is None:
                raise UsageError(f"--from-vllm-args: {e}") from None
            tagged = tagged + " (before 0.10: no profile)"
    if given is not None:
        if tagged is not None and parse_version(tagged) != parse_version(given):
            notes.append(f"--vllm-version {given} given; the image {image} is vLLM {tagged}: estimated for {given}")
        return given
    if tagged is not None:
        notes.append(f"vLLM {tagged}: the release the image tag names ({image})")
        return tagged
    if image is not None:
        notes.append(f"image {image} names no vLLM release: estimated for vLLM {DEFAULT_VLLM_VERSION}, the newest "
                     "profile; give --vllm-version for the release the image holds")
    return None


def nvfp4_moe_note(spec, gpu, eng: dict, version) -> str | None:
    """What the estimate assumed for NVFP4 routed experts served as shipped: the MoE backend vLLM runs them with
    on this GPU (``tables.nvfp4_backend_for``; docs/decisions.md "NVFP4 MoE backend per GPU"), or that it is not
    known; None for every other model."""
    from reportgen.estimate.profiles import parse_version
    from reportgen.estimate.tables import experts_nvfp4, moe_backend_refusal_for, nvfp4_backend_for, scheme_for

    if eng["weights_as"] not in ("checkpoint", "auto") or not spec.num_experts or not spec.quantization_config:
        return None
    try:
        lay = experts_nvfp4(spec, scheme_for(spec, eng["weights_as"], eng["dtype"] or "auto", eng["quantization"]))
    except Exception:       # the scheme's own refusal is in the result's reason
        return None
    if lay is None:
        return None
    cc = getattr(gpu, "compute_capability", None)
    if moe_backend_refusal_for(spec, (cc, parse_version(version)), eng["moe_backend"] or "auto", lay):
        return (f"NVFP4 MoE experts: vLLM refuses --moe-backend {eng['moe_backend']} on SM {cc[0]}.{cc[1]} (the "
                "result's reason): nothing is priced")
    backend = nvfp4_backend_for(spec, (cc, parse_version(version)), eng["moe_backend"] or "auto",
                                not lay.input_scale)
    if backend is None:
        return ("NVFP4 MoE experts: the GPU's MoE backend is not known (no compute capability, or a vLLM version "
                "whose choice was not read): the checkpoint's expert bytes and the fitted MoE terms")
    how = ("--moe-backend " + eng["moe_backend"] if (eng["moe_backend"] or "auto") != "auto" else
           f"vLLM's auto choice on SM {cc[0]}.{cc[1]} (FlashInfer assumed installed, as in vLLM's official image; "
           "without it SM 10.x / 12.x take VLLM_CUTLASS)")
    what = ("the checkpoint's expert bytes (the repack's size was not read)" if backend == "nvfp4_marlin" else
            "its per-rank expert layout (swizzled block scales, padding) is priced")
    tail = ("; its MoE call's row copies too" if backend == "nvfp4_cutlass" else
            "; the MoE activation terms are the fitted ones")
    return f"NVFP4 MoE experts: {backend.removeprefix('nvfp4_')} backend ({how}): {what}{tail}"


def draft_spec_for(speculative_config, offline=None, snapshot_dir=None, headers: bool = False):
    """The draft's ``draft_spec`` for ``--speculative-config`` methods draft_model / eagle / eagle3 (None
    otherwise, or when it cannot be resolved / parsed: the cells then say so).  The draft's config comes
    through the same sources as the target's (local path, hub, cache, bundled snapshot); ``headers``
    (``--weights checkpoint``): an EAGLE head also gets its checkpoint's tensor names, which decide whether
    vLLM can share the target's embedding / lm_head (specdecode._eagle)."""
    from reportgen.estimate.specdecode import DRAFT_CHECKPOINT_METHODS, draft_from_config, parse_speculative_config

    sd = parse_speculative_config(speculative_config)
    if sd is None or sd.method not in DRAFT_CHECKPOINT_METHODS or not sd.model:
        return None
    from reportgen.arch.errors import ConfigError
    from reportgen.sources import SourceError, resolve_all

    ref = _ref(sd.model if not sd.raw.get("revision") else f"{sd.model}@{sd.raw['revision']}")
    kw = {"offline": offline}
    if snapshot_dir is not None:
        kw["snapshot_dir"] = snapshot_dir
    (res,) = resolve_all([ref], **kw)
    if isinstance(res, SourceError):
        return None
    names = None
    if headers and sd.method != "draft_model":
        from reportgen.sources import checkpoint_weight_bytes

        try:
            names = set((checkpoint_weight_bytes(ref, offline=offline).get("tensors") or {}))
        except SourceError:
            names = None          # no listing (e.g. a pytorch_model.bin head): the upper bound is priced
    try:
        return draft_from_config(sd, res.config, ref.id, extra=res.extra, checkpoint_names=names)
    except ConfigError:
        return None


def _fail(args, out: dict) -> int:
    if getattr(args, "from_vllm_args", None) is not None and "vllm_args_notes" not in out:
        out["vllm_args_notes"] = getattr(args, "_vllm_notes", [])
    _print(args, out)
    return 1


def _print(args, out: dict) -> None:
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return
    width = max(len(k) for k in out)
    for k, v in out.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={str(b).lower()}" if isinstance(b, bool) else f"{a}={b:,}" if isinstance(b, int)
                          else f"{a}={b}" for a, b in v.items() if b is not None and b is not False and b != 0)
        elif isinstance(v, list):
            v = "\n".join([v[0]] + [" " * (width + 2) + str(x) for x in v[1:]]) if v else "-"
        elif isinstance(v, float):
            v = f"{v:,.3f}"
        elif isinstance(v, int) and not isinstance(v, bool):
            v = f"{v:,}"
        print(f"{k:<{width}}  {v}", file=sys.stdout)
