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

Container lines (``_container``): ``[sudo] docker|podman|nerdctl|nvidia-docker run [OPTIONS] IMAGE [ARG...]``
(also ``docker container run`` and the runtime's own options before ``run``).  The runtime's options up to the image
are skipped with pflag's rules (``--opt value``, ``--opt=value``, ``-p 8000:8000``, ``-p8000:8000``, ``-it``,
``-itp 8000:8000``, ``--`` before the image); which of them take a value is an explicit list (``_RUN_VALUE_OPTS``,
``_RUN_BOOL_OPTS``), and an option in neither is refused, since a wrong guess would read the image as its value.
``-e NAME=value`` / ``--env NAME=value`` / ``--env=NAME=value`` are the environment the rules below read; ``-e NAME``
passes the host's value, known only when the line assigns ``NAME=value`` before ``docker`` (a host assignment
without ``-e`` stays outside the container, and podman's ``--env-host`` passes them all); ``--env-file`` is noted
as unread.  vLLM's images (``vllm/vllm-openai``, ``-rocm``, ``-xpu``, with any registry or mirror path before
them) run vLLM's server, so the arguments after the image are the engine flags: ENTRYPOINT ["vllm", "serve"] from
0.11.1 (vllm 0.11.1 sdist docker/Dockerfile:500) -- a positional model or ``--model`` -- and ``python3 -m
vllm.entrypoints.openai.api_server`` up to 0.11.0 (0.11.0 docker/Dockerfile:542), which never reads a positional
model (only ``vllm serve`` copies ``model_tag`` to ``--model``: 0.11.0 vllm/entrypoints/cli/serve.py:47-48), so such
a line is refused; the ROCm image has that entrypoint from 0.14.0 (0.14.0 docker/Dockerfile.rocm:389).  A tag
naming a release (``v0.27.1``, ``0.19.1``, ``v0.26.0-cu129``) is ``VllmCommand.image_version``, which
``reportgen estimate`` prices unless ``--vllm-version`` is given; ``latest``, ``nightly``, a model build's tag or a
digest name none.  With ``--entrypoint`` or another image the command after the image must be ``vllm serve ...``,
``python -m vllm.entrypoints...`` or a shell's ``-c`` script starting exactly one of them (its ``export NAME=value``
read).  The CPU image (``vllm/vllm-openai-cpu``) is refused: no GPU.  ``--gpus`` and ``CUDA_VISIBLE_DEVICES`` pick
GPUs, not their memory: noted.  Compose files are not read.

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


class VllmArgsError(ValueError):
    """A command line or value reportgen cannot turn into an estimate; the message names the flag."""


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


# ------------------------------------------------------ container lines ---
# `docker run [OPTIONS] IMAGE [ARG...]` (also podman, nerdctl, nvidia-docker, `docker container run`, `sudo ...`).
# The CLIs parse options with pflag and stop at the first positional (the image), so which options take a value
# decides where the image is: both sets are explicit, and an option in neither is refused, never guessed.
CONTAINER_RUNTIMES = ("docker", "podman", "nerdctl", "nvidia-docker")
_RUN_VALUE_OPTS = frozenset((
    # docker run --help (Docker 27)
    "add-host annotation attach blkio-weight blkio-weight-device cap-add cap-drop cgroup-parent cgroupns cidfile "
    "cpu-count cpu-percent cpu-period cpu-quota cpu-rt-period cpu-rt-runtime cpu-shares cpus cpuset-cpus "
    "cpuset-mems detach-keys device device-cgroup-rule device-read-bps device-read-iops device-write-bps "
    "device-write-iops dns dns-option dns-search domainname entrypoint env env-file expose gpus group-add "
    "health-cmd health-interval health-retries health-start-interval health-start-period health-timeout hostname "
    "io-maxbandwidth io-maxiops ip ip6 ipc isolation kernel-memory label label-file link link-local-ip log-driver "
    "log-opt mac-address memory memory-reservation memory-swap memory-swappiness mount name network "
    "network-alias oom-score-adj pid pids-limit platform publish pull restart runtime security-opt shm-size "
    "stop-signal stop-timeout storage-opt sysctl tmpfs ulimit user userns uts volume volume-driver volumes-from "
    "workdir "
    # podman run's own
    "arch authfile cert-dir cgroup-conf cgroups chrootdirs conmon-pidfile creds decryption-key env-merge gidmap "
    "group-entry health-log-destination health-max-log-count health-max-log-size health-on-failure "
    "health-startup-cmd health-startup-interval health-startup-retries health-startup-success "
    "health-startup-timeout hooks-dir hostuser image-volume init-path os passwd-entry personality pod pod-id-file "
    "preserve-fd preserve-fds rdt-class requires retry retry-delay sdnotify seccomp-policy secret shm-size-systemd "
    "subgidname subuidname systemd timeout tz uidmap umask unsetenv variant").split())
_RUN_BOOL_OPTS = frozenset((
    "detach interactive tty rm privileged init publish-all read-only sig-proxy oom-kill-disable no-healthcheck "
    "quiet disable-content-trust use-api-socket help "
    "env-host http-proxy no-hosts passwd read-only-tmpfs replace rmi rootfs tls-verify").split())
_RUN_ALIASES = {"net": "network", "net-alias": "network-alias", "dns-opt": "dns-option"}
_RUN_SHORT_VALUE = {"a": "attach", "c": "cpu-shares", "e": "env", "h": "hostname", "l": "label", "m": "memory",
                    "p": "publish", "u": "user", "v": "volume", "w": "workdir"}
_RUN_SHORT_BOOL = {"d": "detach", "i": "interactive", "t": "tty", "P": "publish-all", "q": "quiet"}
# options of the runtime itself, between `docker` and `run`
_GLOBAL_VALUE_OPTS = frozenset("context host config log-level tlscacert tlscert tlskey url connection identity root "
                               "runroot cgroup-manager storage-driver storage-opt runtime tmpdir namespace "
                               "address".split())
_GLOBAL_BOOL_OPTS = frozenset("debug tls tlsverify remote syslog".split())
_GLOBAL_SHORT = {"c": True, "H": True, "l": True, "n": True, "D": False, "r": False}   # letter -> takes a value
# sudo's options before the command (value-taking: -u USER, -g GROUP, -C N, -h HOST, -p PROMPT)
_SUDO_VALUE = frozenset("-u -g -C -h -p -U -r -t -T -D".split())
_SUDO_BOOL = frozenset("-E -H -n -S -k -b -P -A".split())
# vLLM's images -> what their ENTRYPOINT runs (the tag's release decides, below); the CPU image prices no GPU
VLLM_IMAGES = {"vllm-openai": "CUDA", "vllm-openai-rocm": "ROCm", "vllm-openai-xpu": "XPU"}
# ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"] up to 0.11.0 (vllm 0.11.0 sdist
# docker/Dockerfile:542, Dockerfile.xpu:72), ENTRYPOINT ["vllm", "serve"] from 0.11.1 (0.11.1 docker/Dockerfile:500,
# Dockerfile.xpu:78); Dockerfile.rocm has CMD ["/bin/bash"] and no entrypoint until 0.14.0 adds the vllm-openai
# stage (0.14.0 docker/Dockerfile.rocm:389 ENTRYPOINT ["vllm", "serve"])
_API_SERVER_UNTIL = (0, 11, 0)
_ROCM_SERVE_FROM = (0, 14, 0)
_SHELLS = ("sh", "bash", "dash", "zsh", "ash")


@dataclass
class _Launch:
    """What a container line says besides the engine flags: the image, its release, notes, and whether vLLM's
    api_server entrypoint (which never reads a positional model) runs the flags."""

    image: str | None = None
    image_version: str | None = None
    notes: list = field(default_factory=list)
    api_server_entrypoint: bool = False


def _name(tok: str) -> str:
    return tok.rsplit("/", 1)[-1]


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    """``[registry[:port]/]path[:tag][@digest]`` -> (path without the tag, tag, digest)."""
    name, _, digest = image.partition("@")
    head, _, last = name.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
    else:
        tag = None
    return (f"{head}/{last}" if head else last), tag, digest or None


def image_release(tag: str | None) -> str | None:
    """The vLLM release an image tag names ("v0.27.1", "0.19.1", "v0.26.0-cu129", "v0.31.0-ubuntu2404",
    "v0.11.1rc3"), without the leading v and the -suffix; None for "latest", "nightly", "nightly-<sha>",
    "latest-cu129", a model build ("gemma4-0505-cu129") or no tag."""
    m = re.fullmatch(r"v?(\d+\.\d+(?:\.\d+){0,2}(?:(?:rc|\.dev|\.post)\d+)?)(?:[-_+][A-Za-z0-9._+-]*)?", tag or "")
    return m.group(1) if m else None


def _release_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def _strip_sudo(tokens: list[str]) -> list[str]:
    tokens = tokens[1:]
    while tokens and tokens[0].startswith("-"):
        opt = tokens.pop(0)
        if opt == "--":
            break
        if opt in _SUDO_VALUE:
            if not tokens:
                raise VllmArgsError(f"sudo {opt} expects a value")
            tokens.pop(0)
        elif opt not in _SUDO_BOOL and not opt.startswith("--preserve-env") and not opt.startswith("--user="):
            raise VllmArgsError(f"unknown sudo option {opt}: remove it (reportgen reads the command sudo runs)")
    return tokens


def _run_options(tokens: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """pflag's reading of ``run``'s options: [(long name, value)] up to the image, and the rest (image first)."""
    opts: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--":
            return opts, tokens[i + 1:]
        if not tok.startswith("-") or tok == "-":
            break
        i += 1
        if tok.startswith("--"):
            name, eq, inline = tok[2:].partition("=")
            name = _RUN_ALIASES.get(name, name)
            if name in _RUN_BOOL_OPTS:
                opts.append((name, inline if eq else "true"))
            elif name in _RUN_VALUE_OPTS:
                if not eq and i >= len(tokens):
                    raise VllmArgsError(f"container option --{name} expects a value")
                opts.append((name, inline if eq else tokens[i]))
                i += 0 if eq else 1
            else:
                raise VllmArgsError(f"unknown container option --{name}: reportgen does not know whether it takes "
                                    "a value (a wrong guess would read the image name wrongly); remove it")
            continue
        j = 1
        while j < len(tok):                  # -it, -dit, -p8000:8000, -e=NAME=value, -itp 8000:8000
            c = tok[j]
            if c in _RUN_SHORT_BOOL:
                opts.append((_RUN_SHORT_BOOL[c], "true"))
                j += 1
                continue
            if c in _RUN_SHORT_VALUE:
                rest = tok[j + 1:]
                if rest:
                    value = rest[1:] if rest.startswith("=") else rest
                elif i < len(tokens):
                    value, i = tokens[i], i + 1
                else:
                    raise VllmArgsError(f"container option -{c} expects a value")
                opts.append((_RUN_SHORT_VALUE[c], value))
                break
            raise VllmArgsError(f"unknown container option -{c} (in {tok}): reportgen does not know whether it "
                                "takes a value (a wrong guess would read the image name wrongly); remove it")
    return opts, tokens[i:]


def _container(tokens: list[str], host_env: dict) -> tuple[list[str], dict, _Launch]:
    """``docker run [OPTIONS] IMAGE [ARG...]`` -> (engine tokens, the container's environment, what else it says)."""
    runtime = _name(tokens[0])
    rest = tokens[1:]
    while rest and rest[0].startswith("-"):                       # docker --context X run / podman --remote run
        opt = rest.pop(0)
        name, eq, _ = opt.lstrip("-").partition("=")
        if opt.startswith("--") and name in _GLOBAL_BOOL_OPTS or (not opt.startswith("--") and
                                                                 _GLOBAL_SHORT.get(name) is False):
            continue
        if opt.startswith("--") and name in _GLOBAL_VALUE_OPTS or (not opt.startswith("--") and
                                                                  _GLOBAL_SHORT.get(name[:1]) is True):
            if not eq and (opt.startswith("--") or len(name) == 1):
                if not rest:
                    raise VllmArgsError(f"{runtime} {opt} expects a value")
                rest.pop(0)
            continue
        raise VllmArgsError(f"unknown {runtime} option {opt} before the subcommand: remove it")
    if rest[:2] == ["container", "run"]:
        rest = rest[1:]
    if not rest or rest[0] != "run":
        sub = rest[0] if rest else ""
        raise VllmArgsError(f"`{runtime} {sub}`".replace(" `", "`") + ": only a `run` line is read "
                            f"({runtime} run [OPTIONS] IMAGE [vLLM flags]); compose files are not")
    opts, rest = _run_options(rest[1:])
    if not rest:
        raise VllmArgsError(f"no image in the `{runtime} run` line")
    image, args = rest[0], rest[1:]
    launch = _Launch(image=image)
    env: dict = {}
    entrypoint = None
    shown: list[str] = []
    for name, value in opts:
        if name == "env":
            key, eq, val = value.partition("=")
            if eq:
                env[key] = val
            elif key in host_env:           # -e NAME: the value of NAME where the runtime runs
                env[key] = host_env[key]
            elif key in ENV_MODELLED or key in ALLOC_CONF_ENV:
                raise VllmArgsError(f"-e {key}: the container takes the host's {key}, which the line does not "
                                    f"show; write -e {key}=VALUE")
            else:
                launch.notes.append(f"environment {key}: the host's value (-e {key}), not in the line; "
                                    + ("not modelled by reportgen" if key.startswith("VLLM_")
                                       else "does not change per-GPU memory"))
        elif name == "env-host" and value.lower() != "false":    # podman: every host variable goes in
            env = {**host_env, **env}
        elif name == "env-file":
            launch.notes.append(f"--env-file {value}: the file is not read; a VLLM_* or PYTORCH_CUDA_ALLOC_CONF "
                                "setting in it is not reflected (paste it as -e NAME=VALUE)")
        elif name == "entrypoint":
            entrypoint = value
        elif name == "gpus":
            launch.notes.append(f"--gpus {value}: which GPUs the container sees; per-GPU memory does not change "
                                "(the layout is -tp / -pp / -dp)")
        else:
            shown.append(f"--{name}")
    if shown:
        launch.notes.append(f"{runtime} run {', '.join(dict.fromkeys(shown))}: container settings; they do not "
                            "change per-GPU memory")
    for key in host_env:
        if key not in env:
            launch.notes.append(f"{key} is set for `{runtime}`, not passed into the container (no -e {key}): "
                                "not read")
    path, tag, _ = _split_image(image)
    kind = VLLM_IMAGES.get(_name(path).lower())
    if _name(path).lower() == "vllm-openai-cpu":
        raise VllmArgsError(f"{image}: vLLM's CPU image (docker/Dockerfile.cpu) runs no GPU; there is no GPU "
                            "memory to estimate")
    release = image_release(tag) if kind else None
    launch.image_version = release
    if kind and path.lower().rsplit("/", 1)[0].rsplit("/", 1)[-1] != "vllm":
        launch.notes.append(f"image {image}: read as vLLM's vllm/{_name(path)} (a mirror or copy)")
    if kind and kind != "CUDA":
        launch.notes.append(f"image {image}: vLLM's {kind} image; the estimate prices the GPU given by --gpu")
    if entrypoint is not None:                               # the image's entrypoint replaced
        command = (_json_list(entrypoint) if entrypoint.startswith("[") else [entrypoint] if entrypoint else []) + args
    elif kind and not (kind == "ROCm" and release and _release_tuple(release) < _ROCM_SERVE_FROM):
        if _vllm_launcher(args) is not None:
            raise VllmArgsError(f"{image}'s entrypoint is already vLLM's server: the container would run it with "
                                f"`{' '.join(args[:2])} ...` as arguments; drop `{' '.join(args[:2])}` after the "
                                "image (or set --entrypoint)")
        if release and _release_tuple(release) <= _API_SERVER_UNTIL:
            launch.api_server_entrypoint = True
        return args, env, launch
    else:
        command = args
        if not command or command[0].startswith("-"):
            what = (f"vLLM's ROCm image before 0.14.0 has no server entrypoint (CMD /bin/bash)" if kind else
                    f"{image} is not one of vLLM's images ({', '.join('vllm/' + k for k in VLLM_IMAGES)})")
            raise VllmArgsError(f"{what} and no command follows {image}: its entrypoint is unknown; paste the "
                                "command the container runs (vllm serve MODEL ...)")
    engine, inner_env, notes = _container_command(command, image)
    launch.notes += notes
    return engine, {**env, **inner_env}, launch


def _json_list(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise VllmArgsError(f"--entrypoint {text}: not a JSON list") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise VllmArgsError(f"--entrypoint {text}: not a JSON list of strings")
    return value


def _container_command(command: list[str], image: str) -> tuple[list[str], dict, list[str]]:
    """The command a container runs (its entrypoint replaced, or an image without one): ``vllm serve ...``,
    ``python -m vllm.entrypoints...``, or a shell running one of them (``bash -lc 'vllm serve ...'``)."""
    command, env = _leading_env(command)
    if command and _name(command[0]) in _SHELLS:
        return _shell_script(command, env)
    engine = _vllm_launcher(command)
    if engine is None:
        raise VllmArgsError(f"`{' '.join(command[:3])}` in the container of {image}: not a vLLM server "
                            "(expected vllm serve ..., python -m vllm.entrypoints.openai.api_server ... or a shell "
                            "-c running one)")
    return engine, env, []


def _shell_script(command: list[str], env: dict) -> tuple[list[str], dict, list[str]]:
    """``sh -c 'SCRIPT'`` (also -lc, -ec, ...): the one vLLM server the script starts; ``export NAME=value`` and
    ``NAME=value`` before it set its environment; other commands are listed in a note."""
    shell, i, has_c = _name(command[0]), 1, False
    while i < len(command) and command[i].startswith("-"):
        has_c = has_c or (not command[i].startswith("--") and "c" in command[i])
        i += 1
    if not has_c or i >= len(command):
        raise VllmArgsError(f"`{' '.join(command[:3])}`: a shell without -c SCRIPT; paste the vllm serve line")
    lex = shlex.shlex(command[i], posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    words = list(lex)
    segments, cur = [], []
    for w in words:
        if w and set(w) <= set(";&|"):
            segments.append(cur)
            cur = []
        else:
            cur.append(w)
    segments.append(cur)
    found, notes = [], []
    for seg in filter(None, segments):
        if seg[0] == "exec":
            seg = seg[1:]
        if seg and seg[0] == "export":
            for assign in seg[1:]:
                k, eq, v = assign.partition("=")
                if eq:
                    env[k] = v
            continue
        seg_env = {}
        while seg and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", seg[0]):
            k, _, v = seg.pop(0).partition("=")
            seg_env[k] = v
        engine = _vllm_launcher(seg)
        if engine is None:
            if not seg_env or seg:
                notes.append(f"{shell} -c: `{' '.join(seg)[:60]}` is not vLLM's server; not read")
            else:
                env.update(seg_env)       # a bare assignment: the shell variable (read if exported)
            continue
        found.append((engine, seg_env))
    if len(found) != 1:
        raise VllmArgsError(f"the {shell} -c script starts {'no' if not found else len(found)} vLLM servers; "
                            "paste the one vllm serve line")
    engine, seg_env = found[0]
    return engine, {**env, **seg_env}, notes


def _vllm_launcher(tokens: list[str]) -> list[str] | None:
    """The engine flags after ``vllm serve`` / ``python -m vllm.entrypoints...``; None when the tokens start with
    neither.  ``python -m`` of another module is refused."""
    if len(tokens) >= 2 and _name(tokens[0]) == "vllm" and tokens[1] == "serve":
        return tokens[2:]
    if len(tokens) >= 3 and re.fullmatch(r"python[0-9.]*", _name(tokens[0])) and tokens[1] == "-m":
        if not tokens[2].startswith("vllm.entrypoints"):
            raise VllmArgsError(f"`{' '.join(tokens[:3])}` is not a vLLM server entry point "
                                "(expected vllm serve or python -m vllm.entrypoints.openai.api_server)")
        return tokens[3:]
    return None


def _finish_launch(cmd: VllmCommand, launch: _Launch | None, tokens: list[str]) -> None:
    """Container facts onto the parsed command: image, release, notes; vLLM's api_server drops a positional model."""
    if launch is None:
        return
    cmd.image, cmd.image_version = launch.image, launch.image_version
    cmd.notes[:0] = launch.notes
    if launch.api_server_entrypoint and not any(t == "--model" or t.startswith("--model=") for t in tokens):
        raise VllmArgsError(
            f"{launch.image}: this image's entrypoint is python3 -m vllm.entrypoints.openai.api_server (vLLM's "
            "docker/Dockerfile until 0.11.0), which never reads a positional model (only `vllm serve` sets --model "
            f"from it: vllm/entrypoints/cli/serve.py), so the container serves vLLM's default model, not "
            f"{cmd.model}; write --model {cmd.model}")


def _leading_env(tokens: list[str]) -> tuple[list[str], dict]:
    """``[env] NAME=value ... rest`` -> (rest, {NAME: value}): the shell's leading assignments."""
    env: dict = {}
    tokens = list(tokens)
    if tokens and tokens[0] == "env":
        tokens = tokens[1:]
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
        k, _, v = tokens.pop(0).partition("=")
        env[k] = v
    return tokens, env


def _strip_launcher(tokens: list[str]) -> tuple[list[str], dict, "_Launch | None"]:
    """Drop ``[env] NAME=value ... vllm serve`` / ``python -m vllm.entrypoints...``; keep the env.  A container
    line (``[sudo] docker|podman|nerdctl|nvidia-docker run ... IMAGE ...``) goes to ``_container``: its -e / --env
    variables are the environment, and the returned launch says what else it set."""
    tokens, env = _leading_env(tokens)
    if tokens and _name(tokens[0]) == "sudo":
        tokens = _strip_sudo(tokens)
    if tokens and _name(tokens[0]) in CONTAINER_RUNTIMES:
        return _container(tokens, env)
    engine = _vllm_launcher(tokens)
    if engine is not None:
        return engine, env, None
    if tokens and tokens[0] == "serve":
        return tokens[1:], env, None
    return tokens, env, None


def parse_vllm_command(text: str) -> VllmCommand:
    """Read a ``vllm serve MODEL --flag ...`` line (or the flags alone, or the api_server form)."""
    text = re.sub(r"\\\r?\n", " ", text)
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError as e:
        raise VllmArgsError(f"cannot split the command line: {e}") from None
    tokens, env, launch = _strip_launcher(tokens)
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
    _finish_launch(cmd, launch, tokens)
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
