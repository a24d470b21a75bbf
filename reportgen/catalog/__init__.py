"""GPU SKU catalog: a data file (gpus.csv beside this module) plus its loader.

Memory is what CUDA reports to PyTorch/vLLM (``torch.cuda.mem_get_info`` total,
logged by vLLM as ``total_gpu_memory``), not the marketing number: that is what
``gpu_memory_utilization`` multiplies.  Where a vLLM log gave it we use it
(H100 79.19 GiB); elsewhere nvidia-smi's total minus the observed driver
reservation (see the ``memory_source`` column).  Users add or override SKUs with
their own CSV of the same columns (only sku_id, name and usable_memory_gib are
required).
"""

from __future__ import annotations

import csv
import difflib
import io
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

CATALOG_FILE = "gpus.csv"
REQUIRED = ("sku_id", "name", "usable_memory_gib")


class UnknownGpu(KeyError):
    """An SKU id or alias the catalog does not know; the message lists close matches."""

    def __str__(self) -> str:  # KeyError quotes its arg; we want the plain sentence
        return str(self.args[0])


# vendors whose GPUs vLLM runs in-tree on the CUDA / ROCm paths reportgen follows; any other accelerator (Intel
# Gaudi, Google TPU ...) runs through a vLLM platform plugin: Gaudi's budget is priced as vllm-gaudi sizes it
# (overheads.HPU_GRAPH_RESERVED, exprs.util_pass), the others' is not
CUDA_LIKE_VENDORS = ("nvidia", "amd")

# What the plugin for a vendor does differently, read from its source (docs/decisions.md, "Gaudi / TPU plugins: how
# they size the KV cache"):
# - vllm-gaudi (vllm-project/vllm-gaudi 091bbadd, vllm_gaudi/v1/worker/hpu_worker.py:399-441; the same formula in
#   every tag v0.10.0 - v0.27.0rc0): KV = free HBM after loading x gpu_memory_utilization x (1 - VLLM_GRAPH_RESERVED_MEM
#   [0.1; 0 with enforce_eager]) - one block; its profile_run returns at once (hpu_model_runner.py:6339-6341), so no
#   activation or graph estimate is subtracted; block_size 128 unless given (platform.py:155-156).
# - tpu-inference (vllm-project/tpu-inference b8692ff0, tpu_inference/worker/tpu_worker.py:511-569): KV = sum of the
#   devices' bytes_limit x gpu_memory_utilization - their bytes_in_use after loading; the page pads head_dim to a
#   multiple of 128 (64 excepted; utils.py:231-237) and 2 x KV heads to the dtype's packing
#   (kernels/ragged_paged_attention/v3/kernel.py:261-275); the page size (tokens) comes from max_model_len and
#   max_num_seqs (layers/vllm/backends/flash_attn.py:111-143, platforms/tpu_platform.py:366-387).
_PLUGIN_TERMS = {  # vendor -> (how its plugin sizes the KV cache, which of reportgen's CUDA terms still hold)
    "intel": ("a platform plugin (vllm-gaudi) that sizes the KV cache as the HBM free after loading the weights "
              "x gpu_memory_utilization x (1 - VLLM_GRAPH_RESERVED_MEM, 0.1 by default), with no profile-run "
              "activation or graph estimate, in 128-token blocks",
              "weights and KV bytes a token hold"),
    "google": ("a platform plugin (tpu-inference) that sizes the KV cache as the HBM limit x gpu_memory_utilization "
               "- the HBM in use after loading the weights, with no profile-run activation or graph estimate, pads "
               "head_dim to a multiple of 128 (64 excepted) and sizes its page from max_model_len and max_num_seqs",
               "weights hold, KV bytes a token only where the plugin pads nothing"),
}


def platform_note(vendor: str | None) -> str:
    """'' for an NVIDIA / AMD GPU (or one given without a vendor); otherwise the sentence the report prints beside
    the GPU.  Intel (Gaudi): priced as the vllm-gaudi plugin sizes the KV cache, and what of it is not priced.  Google
    (TPU): its cells are priced as CUDA vLLM sizes memory, which is not what its plugin does; the sentence names the
    plugin's own budget terms (``_PLUGIN_TERMS``).  Any other vendor: only that the plugin's accounting was not read."""
    v = (vendor or "").strip()
    if not v or v.lower() in CUDA_LIKE_VENDORS:
        return ""
    if v.lower() not in _PLUGIN_TERMS:
        return (f"{v} accelerator: vLLM serves it through a platform plugin whose memory accounting reportgen does "
                "not read; its cells are priced as CUDA vLLM sizes memory (weights and KV bytes hold, the budget "
                "terms are CUDA's)")
    if v.lower() == "intel":       # priced as the plugin sizes it (exprs.util_pass, overheads.HPU_GRAPH_RESERVED)
        return (f"{v} accelerator: vLLM serves it through {_PLUGIN_TERMS['intel'][0]}; its cells are priced that way "
                "(the plugin as read at vllm-gaudi 091bbadd, its v0.10.0 - v0.27.0rc0 releases: the plugin for vLLM "
                "0.28+ was not read), with vLLM's small-GPU scheduler defaults (the plugin reports no device "
                "memory); not priced: the 128-token default block (tokens are counted in the job's block size) and "
                "the plugin's extra reductions for hybrid models")
    terms, held = _PLUGIN_TERMS[v.lower()]
    return (f"{v} accelerator: vLLM serves it through {terms}; reportgen does not price that yet: its cells are "
            f"priced as CUDA vLLM sizes memory ({held}, the budget terms are CUDA's)")


@dataclass(frozen=True)
class GpuSku:
    id: str
    name: str
    vendor: str
    usable_memory_gib: float          # what vLLM sees as total_gpu_memory
    memory_gb_marketed: float | None
    memory_mib_reported: float | None
    gpus_per_node: int
    # how the GPUs of a node are linked (``INTERCONNECTS``; "" = not given): decides vLLM's custom
    # all-reduce for TP > 2 and NCCL's NVLink SHARP buffers (estimate/overheads.comm_terms)
    interconnect: str
    bandwidth_tbps: float | None
    bf16_tflops: float | None
    fp8_tflops: float | None
    fp8_native: bool
    price_usd_hr: float | None        # per GPU-hour, volatile
    aliases: tuple[str, ...]
    memory_source: str
    price_source: str
    # CUDA compute capability (major, minor), e.g. (9, 0) for H100; None = not an NVIDIA CUDA GPU / not given.
    # vLLM picks kernels by it (the MXFP4 MoE backend: estimate/quant/layouts.mxfp4_moe_backend)
    compute_capability: tuple[int, int] | None = None

    @property
    def large_gpu(self) -> bool:
        """vLLM's default scheduler limits depend on the device (engine/arg_utils.py ``_set_default_max_num_seqs_and_
        batched_tokens_args``: ``device_memory >= 70 GiB and "a100" not in device_name``): every A100 gets the
        small-GPU defaults (2048 batched tokens / 256 sequences for the API server), as rows 52 / 53 / N03F log."""
        return self.usable_memory_gib >= 70 and "a100" not in f"{self.id} {self.name}".lower()


def _f(v: str | None) -> float | None:
    v = (v or "").strip()
    return float(v) if v else None


class Catalog:
    """SKUs by id, with case-insensitive aliases."""

    def __init__(self, skus: list[GpuSku], version: str):
        self.version = version
        self.skus: dict[str, GpuSku] = {}
        self._alias: dict[str, str] = {}
        self._origin: dict[str, str] = {}
        for s in skus:
            self.add(s)

    def add(self, sku: GpuSku, origin: str = "") -> None:
        # an override by id keeps the aliases the SKU already had (they still name the same SKU)
        self.skus[sku.id] = sku
        self._origin[sku.id] = origin or sku.id
        for a in (sku.id, *sku.aliases):
            self._alias[_norm(a)] = sku.id

    def merge(self, rows: list[tuple[GpuSku, str]]) -> None:
        """Add one file's rows; an id or alias that would resolve to a different SKU is an error
        naming both rows (overriding a SKU by its own id is how a catalog file is meant to work)."""
        for sku, origin in rows:
            for a in (sku.id, *sku.aliases):
                owner = self._alias.get(_norm(a))
                if owner is not None and owner != sku.id:
                    raise ValueError(f"{origin}: {'sku_id' if a == sku.id else 'alias'} {a!r} already names "
                                     f"{owner} ({self._origin.get(owner, owner)}); an id or alias may name one SKU "
                                     "only: remove it from one row (override a SKU by repeating its own sku_id)")
            self.add(sku, origin)

    def get(self, key: str) -> GpuSku:
        sku_id = self._alias.get(_norm(key))
        if sku_id is None:
            close = difflib.get_close_matches(_norm(key), list(self._alias), n=5, cutoff=0.5)
            names = list(dict.fromkeys(self._alias[c] for c in close))   # best match first
            hint = f"; did you mean: {', '.join(names)}?" if names else ""
            raise UnknownGpu(
                f"unknown GPU SKU {key!r}{hint} Allowed: {', '.join(sorted(self.skus))} "
                "(or their aliases; `reportgen gpus` lists them)")
        return self.skus[sku_id]

    def __iter__(self):
        return iter(self.skus.values())

    def __len__(self) -> int:
        return len(self.skus)


def _norm(s: str) -> str:
    return s.strip().lower().replace("_", "-").replace(" ", "-")


def _number(r: dict, key: str, where: str, *, lo: float = 0.0, hi: float = math.inf) -> float | None:
    """An optional finite number in [lo, hi] (empty -> None); ValueError naming the row otherwise."""
    raw = (r.get(key) or "").strip()
    if not raw:
        return None
    try:
        v = float(raw)
    except ValueError:
        raise ValueError(f"{where}: {key} must be a number, got {raw[:40]!r}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{where}: {key} {raw[:40]!r} is not allowed; allowed: a finite number from {lo:g}"
                         + (f" to {hi:g}" if math.isfinite(hi) else " up"))
    return v


def _gpus_per_node(r: dict, where: str) -> int:
    raw = (r.get("gpus_per_node") or "").strip()
    if not raw:
        return 8
    if not raw.isdigit() or not 1 <= int(raw) <= 1024:
        raise ValueError(f"{where}: gpus_per_node {raw[:40]!r} is not allowed; allowed: a whole number from 1 to 1024")
    return int(raw)


# catalog ``interconnect`` values (the rule each one gets: estimate/overheads.comm_terms)
INTERCONNECTS = ("nvswitch_nvls", "nvswitch", "nvlink_mesh", "nvlink_bridge", "pcie", "xgmi", "other")


def _interconnect(r: dict, where: str) -> str:
    raw = (r.get("interconnect") or "").strip().lower()
    if raw and raw not in INTERCONNECTS:
        raise ValueError(f"{where}: interconnect {raw[:40]!r} is not allowed; allowed: {', '.join(INTERCONNECTS)} "
                         "(or empty: not known)")
    return raw


def _capability(r: dict, where: str) -> tuple[int, int] | None:
    """``compute_capability`` as "major.minor" (e.g. "12.0"); empty -> None."""
    raw = (r.get("compute_capability") or "").strip()
    if not raw:
        return None
    major, dot, minor = raw.partition(".")
    if not (major.isdigit() and dot and minor.isdigit() and len(minor) == 1):
        raise ValueError(f"{where}: compute_capability {raw[:40]!r} is not allowed; allowed: major.minor such as "
                         "8.0, 9.0, 12.0 (or empty: not an NVIDIA CUDA GPU)")
    return int(major), int(minor)


def _parse(text: str, origin: str) -> list[tuple[GpuSku, str]]:
    """Rows of one catalog file, each with where it came from ("file line N") for messages.

    Every value is validated (issue 14): memory finite in (0, 10000), gpus_per_node a positive
    whole number, prices and other figures finite and >= 0; a duplicate sku_id in one file is an
    error naming both rows."""
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as e:
        raise ValueError(f"{origin}: not a readable CSV file ({e})") from None
    out: list[tuple[GpuSku, str]] = []
    seen: dict[str, str] = {}
    for i, r in enumerate(rows, start=2):
        where = f"{origin}: line {i}"
        missing = [k for k in REQUIRED if not (r.get(k) or "").strip()]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        mem = _number(r, "usable_memory_gib", where)
        if not 0 < mem < 10_000:
            raise ValueError(f"{where}: usable_memory_gib {mem} out of range (0, 10000)")
        sku_id = r["sku_id"].strip()
        if sku_id in seen:
            raise ValueError(f"duplicate sku_id {sku_id!r}: {seen[sku_id]} and {where}; keep one row")
        seen[sku_id] = where
        out.append((GpuSku(
            id=sku_id,
            name=r["name"].strip(),
            vendor=(r.get("vendor") or "").strip(),
            usable_memory_gib=mem,
            memory_gb_marketed=_number(r, "memory_gb_marketed", where),
            memory_mib_reported=_number(r, "memory_mib_reported", where),
            gpus_per_node=_gpus_per_node(r, where),
            interconnect=_interconnect(r, where),
            bandwidth_tbps=_number(r, "bandwidth_tbps", where),
            bf16_tflops=_number(r, "bf16_dense_tflops", where),
            fp8_tflops=_number(r, "fp8_dense_tflops", where),
            fp8_native=(r.get("fp8_native") or "").strip().lower() == "yes",
            price_usd_hr=_number(r, "price_usd_hr", where),
            aliases=tuple(a.strip() for a in (r.get("aliases") or "").split("|") if a.strip()),
            memory_source=(r.get("memory_source") or "").strip(),
            price_source=(r.get("price_source") or "").strip(),
            compute_capability=_capability(r, where),
        ), f"{where} ({sku_id})"))
    return out


def load_catalog(user_files: list[str | Path] = ()) -> Catalog:
    """The bundled catalog, then each user file adding or overriding SKUs by id."""
    text = resources.files(__package__).joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    cat = Catalog([], version=_version(text))
    cat.merge(_parse(text, CATALOG_FILE))
    from reportgen.safe_read import CATALOG_MAX_BYTES, read_text_file

    for f in user_files:
        p = Path(f)
        text = read_text_file(p, "catalog", CATALOG_MAX_BYTES)   # /dev/zero, FIFOs, binaries refused
        cat.merge(_parse(text, str(p)))
        cat.version += f"+{p.name}"
    return cat


def _version(text: str) -> str:
    import hashlib

    return "bundled-" + hashlib.sha256(text.encode()).hexdigest()[:12]
