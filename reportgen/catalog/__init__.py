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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

CATALOG_FILE = "gpus.csv"
REQUIRED = ("sku_id", "name", "usable_memory_gib")


class UnknownGpu(KeyError):
    """An SKU id or alias the catalog does not know; the message lists close matches."""

    def __str__(self) -> str:  # KeyError quotes its arg; we want the plain sentence
        return str(self.args[0])


@dataclass(frozen=True)
class GpuSku:
    id: str
    name: str
    vendor: str
    usable_memory_gib: float          # what vLLM sees as total_gpu_memory
    memory_gb_marketed: float | None
    memory_mib_reported: float | None
    gpus_per_node: int
    bandwidth_tbps: float | None
    bf16_tflops: float | None
    fp8_tflops: float | None
    fp8_native: bool
    price_usd_hr: float | None        # per GPU-hour, volatile
    aliases: tuple[str, ...]
    memory_source: str
    price_source: str

    @property
    def large_gpu(self) -> bool:
        """vLLM's default scheduler limits depend on device size (engine/arg_utils.py)."""
        return self.usable_memory_gib >= 70


def _f(v: str | None) -> float | None:
    v = (v or "").strip()
    return float(v) if v else None


class Catalog:
    """SKUs by id, with case-insensitive aliases."""

    def __init__(self, skus: list[GpuSku], version: str):
        self.version = version
        self.skus: dict[str, GpuSku] = {}
        self._alias: dict[str, str] = {}
        for s in skus:
            self.add(s)

    def add(self, sku: GpuSku) -> None:
        self.skus[sku.id] = sku
        for a in (sku.id, *sku.aliases):
            self._alias[_norm(a)] = sku.id

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


def _parse(text: str, origin: str) -> list[GpuSku]:
    rows = list(csv.DictReader(io.StringIO(text)))
    out = []
    for i, r in enumerate(rows, start=2):
        missing = [k for k in REQUIRED if not (r.get(k) or "").strip()]
        if missing:
            raise ValueError(f"{origin}: line {i}: missing {', '.join(missing)}")
        try:
            mem = float(r["usable_memory_gib"])
        except ValueError:
            raise ValueError(f"{origin}: line {i}: usable_memory_gib must be a number, got {r['usable_memory_gib']!r}")
        if not 0 < mem < 10_000:
            raise ValueError(f"{origin}: line {i}: usable_memory_gib {mem} out of range (0, 10000)")
        out.append(GpuSku(
            id=r["sku_id"].strip(),
            name=r["name"].strip(),
            vendor=(r.get("vendor") or "").strip(),
            usable_memory_gib=mem,
            memory_gb_marketed=_f(r.get("memory_gb_marketed")),
            memory_mib_reported=_f(r.get("memory_mib_reported")),
            gpus_per_node=int(_f(r.get("gpus_per_node")) or 8),
            bandwidth_tbps=_f(r.get("bandwidth_tbps")),
            bf16_tflops=_f(r.get("bf16_dense_tflops")),
            fp8_tflops=_f(r.get("fp8_dense_tflops")),
            fp8_native=(r.get("fp8_native") or "").strip().lower() == "yes",
            price_usd_hr=_f(r.get("price_usd_hr")),
            aliases=tuple(a.strip() for a in (r.get("aliases") or "").split("|") if a.strip()),
            memory_source=(r.get("memory_source") or "").strip(),
            price_source=(r.get("price_source") or "").strip(),
        ))
    return out


def load_catalog(user_files: list[str | Path] = ()) -> Catalog:
    """The bundled catalog, then each user file adding or overriding SKUs by id."""
    text = resources.files(__package__).joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    cat = Catalog(_parse(text, CATALOG_FILE), version=_version(text))
    for f in user_files:
        p = Path(f)
        for sku in _parse(p.read_text(encoding="utf-8"), str(p)):
            cat.add(sku)
        cat.version += f"+{p.name}"
    return cat


def _version(text: str) -> str:
    import hashlib

    return "bundled-" + hashlib.sha256(text.encode()).hexdigest()[:12]
