"""vLLM's engine flags: names, meanings, and a pasted `vllm serve ...` command line.

Why a module of its own: users know their deployment as the exact `vllm serve` line they run,
so reportgen must read that line with vLLM's meanings -- and must say so loudly when the line
holds a flag that changes GPU memory in a way we do not model, rather than estimate a different
deployment.  The estimate CLI, the job file and this parser share the value rules below.

Sources (vLLM, read with the project's read_file tool):

- ``vllm/engine/arg_utils.py`` @ 99d7eb5d6a512cfcc5a2b104f24ebf2d6cda772b: ``EngineArgs`` field names
  (our job keys are these snake_case names), the CLI spellings and short aliases (``-tp``, ``-pp``,
  ``-dp``, ``-dcp``, ``-q``, ``-O``), ``BooleanOptionalAction`` for bool fields (``--x`` /
  ``--no-x``), ``human_readable_int`` for ``--max-model-len``, ``--max-num-batched-tokens`` and
  ``--kv-cache-memory-bytes`` ("1k" = 1,000, "1K" = 1,024; no decimals with a binary suffix).
- ``vllm/config/cache.py`` @ 002f10e0cfa1373a19a0d2756598a34b700d20e5: ``kv_cache_memory_bytes`` is
  "Size of KV Cache per GPU in bytes ... ignores gpu_memory_utilization"; ``kv_cache_size_tokens`` /
  ``kv_cache_max_concurrency`` are "Per-DP-engine" figures (so vLLM's log is per DP replica);
  ``gpu_memory_utilization`` defaults to 0.92 (0.9 before 0.20.0); ``block_size`` None means 16.  vLLM 0.34.0 (sdist
  config/cache.py:185, :216-227, :395-406): block size 64, ``--enable-extensible-kv-cache`` (on by default) and
  utilization 1.0 with it; unset values stay None here and the job's release decides (``job.resolved_utilizations``).
- ``vllm/config/model.py`` (ModelDType): ``--dtype`` is one of auto, half, float16, bfloat16, float,
  float32 -- the model / activation dtype.  ``--quantization`` names a method; on an unquantized
  checkpoint ``fp8`` quantizes the Linear weights at load (per-tensor scales), on a quantized
  checkpoint it must name the checkpoint's own method (vLLM raises otherwise).
- ``vllm/config/kernel.py`` @ 00634b8acf93e413a1c380288665a543b98be7ea: ``KernelConfig.moe_backend``
  (``--moe-backend``), a ``MoEBackend`` literal (``MOE_BACKENDS``) normalised by ``value.lower().replace("-",
  "_")``, default "auto".  Priced only as "cutlass" on NVFP4 experts (estimate/tables.cutlass_nvfp4_moe_coeffs);
  a value vLLM's MoE oracle refuses for the GPU / the experts' quantization is ``invalid_layout``
  (estimate/quant/layouts.moe_backend_refusal).

Container lines (``docker run`` / ``podman run`` ... IMAGE ...) and the other launchers before the engine flags:
``vllm_launch.py``.

Command-line syntax follows vLLM's ``FlexibleArgumentParser``: ``--flag value`` and ``--flag=value``,
underscores in flag names mean dashes (``--max_model_len``), ``--no-<flag>`` for booleans, a model as
the first positional argument of ``vllm serve`` or as ``--model``.  Leading ``NAME=value``
environment assignments are read (``VLLM_ALLOW_LONG_MAX_MODEL_LEN``, ``VLLM_USE_FLASHINFER_SAMPLER``,
``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS``, ``PYTORCH_CUDA_ALLOC_CONF``) or reported as not modelled.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from reportgen.vllm_launch import VllmArgsError, finish_launch, strip_launcher

# --------------------------------------------------------------- values ---

MODEL_DTYPE_CHOICES = ("auto", "half", "float16", "bfloat16", "float", "float32")
_MODEL_DTYPE_CANON = {"auto": "auto", "half": "fp16", "float16": "fp16", "fp16": "fp16", "bfloat16": "bf16",
                      "bf16": "bf16", "float": "fp32", "float32": "fp32", "fp32": "fp32"}

# vLLM's QUANTIZATION_METHODS names we recognise; which of them we can cost is decided in
# reportgen.estimate.quant.online (online fp8) and the checkpoint's own method (pre-quantized)
QUANTIZATION_METHODS = (
    "awq", "awq_marlin", "gptq", "gptq_marlin", "gptq_marlin_24", "gptq_bitblas", "bitblas", "fp8",
    "ptpc_fp8", "fbgemm_fp8", "modelopt", "modelopt_fp4", "modelopt_mixed", "compressed-tensors",
    "bitsandbytes", "gguf", "hqq", "experts_int8", "ipex", "quark", "moe_wna16", "torchao", "auto-round",
    "autoround", "rtn", "inc", "mxfp4", "petit_nvfp4", "fp_quant", "deepspeedfp", "tpu_int8",
)

# vLLM's ``MoEBackend`` literal (vllm/config/kernel.py @00634b8a)
MOE_BACKENDS = ("auto", "triton", "deep_gemm", "deep_gemm_mega_moe", "cutlass", "flashinfer_trtllm",
                "flashinfer_cutlass", "flashinfer_cutedsl", "marlin", "aiter", "emulation")


def model_dtype(value) -> str:
    """vLLM ``--dtype`` -> our short name (auto, bf16, fp16, fp32).  Quantized names are refused:
    ``--dtype`` never re-types weights into a quantized format (that is ``--quantization`` or the
    what-if ``weights_as``)."""
    key = str(value).strip().lower().removeprefix("torch.")
    if key in _MODEL_DTYPE_CANON:
        return _MODEL_DTYPE_CANON[key]
    hint = ""
    if key in ("fp8", "int8", "int4", "checkpoint"):
        hint = (f"; --dtype is vLLM's model/activation dtype -- for a what-if re-quantization use "
                f"weights_as / --weights-as {key}" + (", for vLLM's online fp8 --quantization fp8"
                                                      if key == "fp8" else ""))
    raise VllmArgsError(f"{value!r} is not a vLLM dtype; allowed: {', '.join(MODEL_DTYPE_CHOICES)}{hint}")


def quantization_method(value) -> str | None:
    """vLLM ``--quantization`` (None / "None" / "" = none)."""
    if value is None or str(value).strip() in ("", "None", "none"):
        return None
    key = str(value).strip().lower()
    if key not in QUANTIZATION_METHODS:
        raise VllmArgsError(f"{value!r} is not a vLLM quantization method; known: {', '.join(QUANTIZATION_METHODS)}")
    return key


def moe_backend(value) -> str:
    """vLLM ``--moe-backend`` (None / "" = "auto"), normalised as ``KernelConfig._normalize_moe_backend``."""
    if value is None or str(value).strip() in ("", "None"):
        return "auto"
    key = str(value).strip().lower().replace("-", "_")
    if key not in MOE_BACKENDS:
        raise VllmArgsError(f"{value!r} is not a vLLM MoE backend; allowed: {', '.join(MOE_BACKENDS)}")
    return key


def human_readable_int(value) -> int:
    """vLLM's ``human_readable_int``: "25.6k" = 25,600, "8G" = 8 x 2**30, "8g" = 8e9, or a plain int."""
    if isinstance(value, bool):
        raise VllmArgsError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", text)
    if m:
        number, suffix = m.groups()
        if suffix.islower():
            return int(float(number) * {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}[suffix])
        if "." in number:
            raise VllmArgsError(f"{text!r}: decimals are not allowed with binary suffixes like {suffix} "
                                f"(did you mean {number}{suffix.lower()}?)")
        return int(number) * {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[suffix]
    try:
        return int(text)
    except ValueError:
        raise VllmArgsError(f"{text!r} is not a whole number (vLLM also accepts 8G = 8 GiB, 25.6k = 25,600)") from None


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower()
    if key in ("1", "true", "yes", "on"):
        return True
    if key in ("0", "false", "no", "off"):
        return False
    raise VllmArgsError(f"{value!r} is not true or false")


# ----------------------------------------------------------- flag table ---

@dataclass(frozen=True)
class Flag:
    """One vLLM CLI flag: the EngineArgs name it sets, how it takes a value, what it does to memory.

    ``effect``: "modelled" (reportgen uses it), "none" (no effect on GPU memory: accepted with a
    note), "unmodelled" (changes GPU memory in a way reportgen does not model: refused unless its
    value is vLLM's default, ``default``).
    """

    dest: str
    kind: str            # "value" (one token), "bool" (BooleanOptionalAction), "multi" (nargs="+")
    effect: str
    why: str = ""
    default: object = None


def _table() -> dict[str, Flag]:
    t: dict[str, Flag] = {}

    def add(names, kind, effect, why="", default=None):
        for n in names.split():
            t[n] = Flag(n.replace("-", "_"), kind, effect, why, default)

    add("model dtype quantization kv-cache-dtype block-size max-model-len max-num-seqs max-num-batched-tokens "
        "tensor-parallel-size pipeline-parallel-size data-parallel-size gpu-memory-utilization "
        "kv-cache-memory-bytes revision speculative-config attention-config moe-backend", "value", "modelled")
    add("enable-prefix-caching enforce-eager enable-expert-parallel disable-custom-all-reduce "
        "enable-extensible-kv-cache", "bool", "modelled")
    # no effect on GPU memory (frontend, tokenizer, logging, scheduling policy, load plumbing)
    add("tokenizer tokenizer-mode tokenizer-revision seed download-dir config-format hf-config-path "
        "code-revision allowed-local-media-path max-logprobs logprobs-mode host port uds api-key "
        "chat-template chat-template-content-format response-role tool-call-parser tool-parser-plugin "
        "reasoning-parser uvicorn-log-level ssl-keyfile ssl-certfile ssl-ca-certs ssl-cert-reqs root-path "
        "max-log-len api-server-count distributed-executor-backend data-parallel-rank "
        "data-parallel-start-rank data-parallel-size-local data-parallel-address data-parallel-rpc-port "
        "data-parallel-backend scheduling-policy max-num-partial-prefills max-long-partial-prefills "
        "long-prefill-token-threshold prefix-caching-hash-algo generation-config override-generation-config "
        "swap-space mm-processor-cache-gb mm-processor-cache-type mm-shm-cache-max-object-size-mb "
        "otlp-traces-endpoint show-hidden-metrics-for-version worker-cls worker-extension-cls "
        "max-parallel-loading-workers safetensors-load-strategy pt-load-map-location model-loader-extra-config "
        "structured-outputs-config guided-decoding-backend model-impl kv-events-config media-io-kwargs "
        "mm-processor-kwargs logits-processor-pattern io-processor-plugin "
        "kv-offloading-backend scheduler-cls lora-dtype max-cpu-loras lora-extra-vocab-size "
        "collect-detailed-traces num-lookahead-slots", "value", "none")
    add("served-model-name allowed-origins allowed-methods allowed-headers middleware ignore-patterns "
        "allowed-media-domains logits-processors lora-modules default-mm-loras",
        "multi", "none")
    add("trust-remote-code disable-log-stats disable-log-requests enable-log-requests enable-auto-tool-choice "
        "disable-uvicorn-access-log allow-credentials return-tokens-as-token-ids "
        "disable-frontend-multiprocessing enable-request-id-headers enable-prompt-tokens-details "
        "enable-server-load-tracking enable-force-include-usage enable-tokenizer-info-endpoint "
        "disable-fastapi-docs headless data-parallel-hybrid-lb enable-chunked-prefill async-scheduling "
        "disable-cascade-attn enable-sleep-mode aggregate-engine-logging enable-mm-embeds "
        "interleave-mm-strings calculate-kv-scales enable-prompt-embeds skip-tokenizer-init "
        "use-tqdm-on-load disable-chunked-mm-input enable-log-outputs ray-workers-use-nsight "
        "disable-nccl-for-dp-synchronization fully-sharded-loras", "bool", "none")
    # change GPU memory in ways not modelled: refused unless at vLLM's default
    add("cpu-offload-gb", "value", "unmodelled", "CPU weight offload moves weights off the GPU", 0)
    add("num-gpu-blocks-override", "value", "unmodelled", "overrides the profiled KV block count")
    add("decode-context-parallel-size dcp-kv-cache-interleave-size", "value", "unmodelled",
        "decode context parallel shards the KV cache across TP ranks", 1)
    # the capture range (vLLM 0.11.1+ EngineArgs; estimate/capture_sizes.py) and the compilation config's graph keys
    add("cudagraph-capture-sizes", "multi", "modelled")
    add("max-cudagraph-capture-size compilation-config", "value", "modelled")
    # 0.10's scheduler list and V0's capture length mean other things by release: not modelled
    add("cuda-graph-sizes", "multi", "unmodelled", "the 0.10 / 0.11 capture-size list changes graph memory")
    add("max-seq-len-to-capture", "value", "unmodelled", "the CUDA-graph capture range changes graph memory")
    add("kv-transfer-config kv-offloading-size", "value", "unmodelled",
        "KV transfer / offloading connectors allocate their own buffers")
    add("hf-overrides rope-scaling rope-theta", "value", "unmodelled",
        "config overrides change the architecture or the rotary caches")
    add("mamba-cache-dtype mamba-ssm-cache-dtype", "value", "unmodelled",
        "the Mamba state dtype changes hybrid-model state pages", "auto")
    add("mamba-block-size mamba-cache-mode attn-group-size kv-cache-dtype-skip-layers", "value", "unmodelled",
        "hybrid / per-layer KV layout overrides change KV pages")
    add("limit-mm-per-prompt mm-encoder-tp-mode mm-encoder-attn-backend", "value", "unmodelled",
        "multimodal limits change the encoder profiling peak and weights")
    add("eplb-config num-redundant-experts", "value", "unmodelled", "redundant experts add expert weights")
    add("all2all-backend", "value", "unmodelled", "DeepEP / NIXL all-to-all backends allocate large buffers")
    add("enable-lora", "bool", "unmodelled", "LoRA adapters add weights and buffers", False)
    add("max-loras max-lora-rank", "value", "unmodelled", "LoRA adapters add weights and buffers (with --enable-lora)")
    add("enable-eplb", "bool", "unmodelled", "EPLB adds redundant experts", False)
    add("enable-dbo", "bool", "unmodelled", "dual-batch overlap changes activation buffers", False)
    add("kv-sharing-fast-prefill", "bool", "unmodelled", "KV sharing changes the KV layout", False)
    add("disable-hybrid-kv-cache-manager", "bool", "unmodelled",
        "without the hybrid KV manager sliding-window layers cache the full length", False)
    add("disable-sliding-window", "bool", "unmodelled",
        "sliding-window layers then cache the full length (and the max length is capped)", False)
    add("override-attention-dtype", "value", "unmodelled", "attention dtype override changes KV / activations")
    add("load-format", "value", "unmodelled", "bitsandbytes / gguf loading changes the weight format", "auto")
    add("runner convert task", "value", "unmodelled", "pooling / converted runners hold no KV cache", "auto")
    add("config", "value", "unmodelled", "a YAML config file holds flags reportgen cannot see: paste them inline")
    add("additional-config", "value", "unmodelled", "platform-specific additional config")
    return t


FLAGS: dict[str, Flag] = _table()
SHORT = {"-tp": "tensor-parallel-size", "-pp": "pipeline-parallel-size", "-dp": "data-parallel-size",
         "-dcp": "decode-context-parallel-size", "-q": "quantization", "-O": "compilation-config",
         "-dpn": "data-parallel-rank", "-dpr": "data-parallel-start-rank", "-dpl": "data-parallel-size-local",
         "-dpa": "data-parallel-address", "-dpp": "data-parallel-rpc-port", "-dpb": "data-parallel-backend"}
# --kv-cache-memory: vLLM's own log suggests this spelling ("Replace gpu_memory_utilization config with
# --kv-cache-memory=N"); argparse's prefix matching accepts it for --kv-cache-memory-bytes
ALIASES = {"kv-cache-memory": "kv-cache-memory-bytes", "max-model-length": "max-model-len"}
# load formats that do not change the weights' GPU bytes
_PLAIN_LOAD_FORMATS = ("auto", "pt", "safetensors", "npcache", "dummy", "tensorizer", "runai_streamer",
                       "sharded_state", "fastsafetensors", "mistral", "runai_streamer_sharded")
# environment read from a pasted line; VLLM_USE_FLASHINFER_SAMPLER picks vLLM 0.10-0.16's profile-run sampler
ENV_MODELLED = {"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "allow_long_max_model_len",
                "VLLM_USE_FLASHINFER_SAMPLER": "flashinfer_sampler",
                "VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS": "memory_profiler_estimate_cudagraphs"}
# variables vLLM reads as ``bool(int(value))`` (envs.py; VLLM_USE_FLASHINFER_SAMPLER so in every sdist 0.10.0-0.34.0,
# e.g. 0.10.0 envs.py:421-423): "true" makes vLLM fail at start-up, so it is refused here too.
# VLLM_ALLOW_LONG_MAX_MODEL_LEN takes "1" / "true" (0.34.0 envs.py:1177-1180)
ENV_INT_BOOL = ("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "VLLM_USE_FLASHINFER_SAMPLER")
# PyTorch's allocator settings (PYTORCH_ALLOC_CONF is the newer name of the same variable): only
# expandable_segments changes what reportgen prices (the weights' allocator blocks)
ALLOC_CONF_ENV = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")


def expandable_segments_in(value: str) -> bool:
    """Whether an allocator-config string (``key:value`` pairs joined by commas, PyTorch's format) turns
    ``expandable_segments`` on."""
    for part in value.split(","):
        key, _, val = part.strip().partition(":")
        if key.strip() == "expandable_segments":
            return val.strip().lower() in ("true", "1")
    return False


# --------------------------------------------------------------- parsing ---

@dataclass
class VllmCommand:
    """What a pasted command line says: the model, the engine settings (EngineArgs names), notes."""

    model: str | None = None
    engine: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    image: str | None = None            # a container line's image (docker / podman run)
    image_version: str | None = None    # the vLLM release its tag names ("0.27.1"), None for latest / nightly


def parse_vllm_command(text: str) -> VllmCommand:
    """Read a ``vllm serve MODEL --flag ...`` line (or the flags alone, or the api_server form)."""
    text = re.sub(r"\\\r?\n", " ", text)
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError as e:
        raise VllmArgsError(f"cannot split the command line: {e}") from None
    tokens, env, launch = strip_launcher(tokens)
    cmd = VllmCommand(env=env)
    for name, value in env.items():
        if name in ENV_INT_BOOL:
            try:
                cmd.engine[ENV_MODELLED[name]] = int(value.strip()) != 0
            except ValueError:
                raise VllmArgsError(f"environment {name}={value!r}: vLLM reads it as bool(int(value)), so this value "
                                    "stops vLLM at start-up; use 0 or 1") from None
        elif name in ENV_MODELLED:
            cmd.engine[ENV_MODELLED[name]] = value.strip().lower() in ("1", "true")
        elif name in ALLOC_CONF_ENV:
            cmd.engine["expandable_segments"] = expandable_segments_in(value)
            other = [p.strip() for p in value.split(",") if p.strip() and not p.strip().startswith("expandable_segments")]
            if other:
                cmd.notes.append(f"environment {name}: {', '.join(other)} not modelled by reportgen (only "
                                 "expandable_segments changes the priced weights)")
        elif name.startswith("VLLM_"):
            cmd.notes.append(f"environment {name}={value}: not modelled by reportgen (if it changes memory, "
                             "the estimate does not reflect it)")
        else:
            cmd.notes.append(f"environment {name}: does not change per-GPU memory")
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if not tok.startswith("-") or tok == "-":
            if cmd.model is None:
                cmd.model = tok
                continue
            raise VllmArgsError(f"unexpected argument {tok!r} (a second model?)")
        if re.fullmatch(r"-O\d", tok):
            raise VllmArgsError(f"{tok}: the compilation optimisation level changes CUDA-graph memory, which "
                                "reportgen does not model per level; remove it to estimate vLLM's default")
        name, eq, inline = tok.partition("=")
        if name in SHORT:
            name = "--" + SHORT[name]
        if not name.startswith("--"):
            raise VllmArgsError(f"unknown vLLM flag {name!r}")
        flag_name = name[2:].replace("_", "-")
        if "." in flag_name:     # --compilation-config.cudagraph_mode FULL: a JSON sub-key
            base = flag_name.split(".", 1)[0]
            flag = FLAGS.get(base)
            value = inline if eq else (tokens[i] if i < len(tokens) else None)
            if not eq:
                i += 1
            if flag is None:
                raise VllmArgsError(f"unknown vLLM flag --{base} (in {tok})")
            if base == "speculative-config":      # --speculative-config.method mtp: one key of the JSON
                if value is None:
                    raise VllmArgsError(f"--{flag_name} expects a value")
                sub = flag_name.split(".", 1)[1].replace("-", "_")
                cur = cmd.engine.get("speculative_config") or {}
                try:
                    parsed = json.loads(value)
                except json.JSONDecodeError:
                    parsed = value
                cmd.engine["speculative_config"] = {**cur, sub: parsed}   # validated once the line is read
                continue
            if base == "compilation-config":       # --compilation-config.cudagraph_mode NONE: one key of the JSON
                if value is None:
                    raise VllmArgsError(f"--{flag_name} expects a value")
                sub = flag_name.split(".", 1)[1].replace("-", "_")
                try:
                    parsed = json.loads(value)
                except json.JSONDecodeError:
                    parsed = value
                _apply(cmd, base, flag, {sub: parsed}, f"--{flag_name}")
                continue
            _apply(cmd, base, flag, {"set": flag_name}, f"--{flag_name}")
            continue
        negated = False
        flag_name = ALIASES.get(flag_name, flag_name)
        flag = FLAGS.get(flag_name)
        if flag is None and flag_name.startswith("no-") and FLAGS.get(flag_name[3:], Flag("", "", "")).kind == "bool":
            flag_name, negated = flag_name[3:], True
            flag = FLAGS[flag_name]
        if flag is None:
            raise VllmArgsError(f"unknown vLLM flag --{flag_name}: reportgen does not know whether it changes "
                                "GPU memory, so it will not guess; remove it, or check the spelling")
        if flag.kind == "bool":
            if eq:
                value = _bool(inline)
            else:
                value = not negated
            if negated and eq:
                raise VllmArgsError(f"--no-{flag_name} takes no value")
        elif flag.kind == "multi":
            if eq:
                value = [inline]
            else:
                value = []
                while i < len(tokens) and not tokens[i].startswith("-"):
                    value.append(tokens[i])
                    i += 1
                if not value:
                    raise VllmArgsError(f"--{flag_name} expects at least one value")
        else:
            if eq:
                value = inline
            else:
                if i >= len(tokens):
                    raise VllmArgsError(f"--{flag_name} expects a value")
                value = tokens[i]
                i += 1
        _apply(cmd, flag_name, flag, value, f"--{flag_name}")
    if cmd.model is None:
        raise VllmArgsError("no model in the command line (vllm serve MODEL ... or --model MODEL)")
    if isinstance(cmd.engine.get("speculative_config"), dict):
        try:
            cmd.engine["speculative_config"] = _engine_value("speculative_config", cmd.engine["speculative_config"])
        except VllmArgsError as e:
            raise VllmArgsError(f"--speculative-config: {e}") from None
    finish_launch(cmd, launch, tokens)
    return cmd


def _is_default(flag: Flag, value) -> bool:
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return True
    if flag.default is None:
        return False
    if isinstance(flag.default, bool):
        return value is flag.default
    try:
        return float(value) == float(flag.default)
    except (TypeError, ValueError):
        return str(value).strip().lower() == str(flag.default)


def _apply(cmd: VllmCommand, name: str, flag: Flag, value, label: str) -> None:
    if flag.effect == "none":
        cmd.notes.append(f"{label}: accepted; does not change GPU memory")
        return
    if flag.effect == "unmodelled":
        if name == "load-format" and str(value).lower() in _PLAIN_LOAD_FORMATS:
            cmd.notes.append(f"{label} {value}: accepted; does not change GPU memory")
            return
        if name in ("runner", "convert", "task") and str(value).lower() in ("auto", "generate", "none"):
            cmd.notes.append(f"{label} {value}: accepted; the generate runner is what reportgen models")
            return
        if _is_default(flag, value):
            cmd.notes.append(f"{label} {value}: vLLM's default; accepted")
            return
        raise VllmArgsError(f"{label} {value if not isinstance(value, dict) else ''}".rstrip()
                            + f": changes GPU memory in a way reportgen does not model ({flag.why}); "
                            "remove it to estimate the deployment without it")
    if flag.dest == "model":
        if cmd.model not in (None, value):
            raise VllmArgsError(f"two models: {cmd.model!r} and --model {value!r}")
        cmd.model = value
        return
    try:
        if flag.dest == "compilation_config":
            for key, val in _compilation_config(value).items():
                cmd.engine[key] = val
            return
        cmd.engine[flag.dest] = _engine_value(flag.dest, value)
    except VllmArgsError as e:
        raise VllmArgsError(f"{label}: {e}") from None


def _engine_value(dest: str, value):
    """Parse one modelled value into the type the job / estimate uses."""
    if dest in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "max_num_seqs",
                "block_size"):
        try:
            return int(str(value))
        except ValueError:
            raise VllmArgsError(f"{value!r} is not a whole number") from None
    if dest in ("max_model_len", "max_num_batched_tokens", "kv_cache_memory_bytes"):
        if str(value).strip() in ("None", ""):
            return None
        return human_readable_int(value)
    if dest == "gpu_memory_utilization":
        try:
            return float(value)
        except ValueError:
            raise VllmArgsError(f"{value!r} is not a number") from None
    if dest == "dtype":
        return model_dtype(value)
    if dest == "quantization":
        return quantization_method(value)
    if dest == "kv_cache_dtype":
        return str(value).strip().lower()
    if dest == "moe_backend":
        return moe_backend(value)
    if dest in ("enable_prefix_caching", "enforce_eager", "enable_expert_parallel", "disable_custom_all_reduce",
                "enable_extensible_kv_cache"):
        return _bool(value)
    if dest == "speculative_config":
        from reportgen.estimate.specdecode import SpecConfigError, parse_speculative_config
        try:
            sd = parse_speculative_config(value)
        except SpecConfigError as e:
            raise VllmArgsError(str(e)) from None
        return dict(sd.raw) if sd is not None else None
    if dest == "attention_config":
        return _attention_config(value)
    if dest == "max_cudagraph_capture_size":
        try:
            n = int(str(value))
        except ValueError:
            raise VllmArgsError(f"{value!r} is not a whole number") from None
        if n < 1:
            raise VllmArgsError(f"{n} is below 1 (vLLM asserts a maximum of at least 1)")
        return n
    if dest == "cudagraph_capture_sizes":
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:            # nargs="+" tokens, each may also be "1,2,4" (vLLM's list parsing)
            for part in str(item).replace("[", " ").replace("]", " ").replace(",", " ").split():
                try:
                    out.append(int(part))
                except ValueError:
                    raise VllmArgsError(f"{part!r} is not a whole number") from None
        if not out or min(out) < 1:
            raise VllmArgsError("expects capture sizes of at least 1 (vLLM asserts at least one element)")
        return sorted(set(out))
    if dest == "cudagraph_mode":
        return str(value).strip().upper()
    return value   # model, revision


# compilation_config keys reportgen prices (the CUDA-graph capture set); any other key is refused, not ignored
COMPILATION_KEYS = ("cudagraph_capture_sizes", "max_cudagraph_capture_size", "cudagraph_mode")


def _compilation_config(value) -> dict:
    """``--compilation-config`` (vLLM ``CompilationConfig`` as JSON, or one key of it) -> engine settings: the capture
    sizes, the capture maximum and the graph mode (validated per release by ``job.capture_settings_problem``)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise VllmArgsError(f"{value!r} is not a JSON object (an optimisation level changes CUDA-graph memory, "
                                "which reportgen does not model per level)") from None
    if not isinstance(value, dict):
        raise VllmArgsError(f"{value!r}: an optimisation level changes CUDA-graph memory, which reportgen does not "
                            "model per level; give a JSON object of "
                            + ", ".join(COMPILATION_KEYS))
    other = sorted(set(value) - set(COMPILATION_KEYS))
    if other:
        raise VllmArgsError(f"{', '.join(other)}: compilation settings reportgen does not model (only "
                            f"{', '.join(COMPILATION_KEYS)}: the CUDA-graph capture set)")
    return {k: _engine_value(k, v) for k, v in value.items() if v is not None}


def _attention_config(value) -> str:
    """``--attention-config`` (vLLM ``AttentionConfig`` as JSON) -> ``indexer_kv_dtype``, the one key modelled
    (MiniMax-M3's index cache, estimate/kvcache.py); any other key is refused, not ignored."""
    from reportgen.estimate.kvcache import INDEXER_KV_BYTES

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise VllmArgsError(f"{value!r} is not a JSON object") from None
    if not isinstance(value, dict):
        raise VllmArgsError(f"{value!r} is not a JSON object")
    other = sorted(set(value) - {"indexer_kv_dtype"})
    if other:
        raise VllmArgsError(f"{', '.join(other)}: attention settings reportgen does not model (only indexer_kv_dtype)")
    dtype = str(value.get("indexer_kv_dtype", "bf16")).strip().lower()
    if dtype not in INDEXER_KV_BYTES:
        raise VllmArgsError(f"indexer_kv_dtype {dtype!r}: allowed {', '.join(INDEXER_KV_BYTES)} (vLLM's MiniMax-M3 "
                            "indexer cache raises for others)")
    return dtype


# EngineArgs name -> the `reportgen estimate` option (and job key) it sets
ESTIMATE_KEYS = {
    "tensor_parallel_size": "tp", "pipeline_parallel_size": "pp", "data_parallel_size": "dp",
    "enable_expert_parallel": "ep", "dtype": "dtype", "quantization": "quantization",
    "kv_cache_dtype": "kv_cache_dtype", "block_size": "block_size", "max_model_len": "max_model_len",
    "max_num_seqs": "max_num_seqs", "max_num_batched_tokens": "max_num_batched_tokens",
    "gpu_memory_utilization": "gpu_memory_utilization", "kv_cache_memory_bytes": "kv_cache_memory_bytes",
    "enable_prefix_caching": "enable_prefix_caching", "enforce_eager": "enforce_eager",
    "allow_long_max_model_len": "allow_long_max_model_len", "flashinfer_sampler": "flashinfer_sampler",
    "speculative_config": "speculative_config", "attention_config": "indexer_kv_dtype",
    "disable_custom_all_reduce": "disable_custom_all_reduce", "moe_backend": "moe_backend",
    "enable_extensible_kv_cache": "enable_extensible_kv_cache", "expandable_segments": "expandable_segments",
    "memory_profiler_estimate_cudagraphs": "memory_profiler_estimate_cudagraphs",
    "max_cudagraph_capture_size": "max_cudagraph_capture_size", "cudagraph_capture_sizes": "cudagraph_capture_sizes",
    "cudagraph_mode": "cudagraph_mode",
}


__all__ = ["FLAGS", "Flag", "VllmArgsError", "VllmCommand", "ESTIMATE_KEYS", "QUANTIZATION_METHODS",
           "MODEL_DTYPE_CHOICES", "MOE_BACKENDS", "human_readable_int", "moe_backend", "model_dtype", "parse_vllm_command", "quantization_method"]
