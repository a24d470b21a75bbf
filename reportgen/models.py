"""Models for a run: resolve each config once (sources), build its architecture spec (arch),
optionally map checkpoint headers onto it, and keep every failure as data.

This is the sources -> architecture step of the batch.  Nothing here raises for a
bad model: each one becomes a ``ModelOutcome`` with an error kind and a one-line
message, so one bad id never sinks the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reportgen.job import ModelRef
from reportgen.progress import Progress, log


@dataclass
class ModelOutcome:
    """What happened to one model before the matrix: a spec, or an error row."""

    ref: ModelRef
    entry: object | None = None          # reportgen.matrix.ModelEntry
    error_kind: str | None = None
    error_message: str | None = None
    info: dict = field(default_factory=dict)


def load_models(refs: list[ModelRef], *, snapshot_dir: str | None = None, quiet: bool = False,
                offline: bool | None = None, weights: str = "config", hub_timeout: float = 10.0,
                hub_retries: int = 3, deadline: float | None = None) -> list[ModelOutcome]:
    """Resolve configs (parallel, each once) and build architecture specs.

    ``weights="checkpoint"``: also read each hub model's safetensors headers so as-shipped
    cells are costed at true stored bytes (see ``attach_headers``).  ``deadline``: a
    ``time.monotonic()`` instant after which no model is waited for (error rows instead)."""
    from reportgen.arch import build_spec
    from reportgen.arch.errors import ConfigError
    from reportgen.matrix import ModelEntry
    from reportgen.sources import SourceError, resolve_all

    outcomes: list[ModelOutcome] = []
    with Progress("resolving models", len(refs), quiet) as bar:
        resolved = resolve_all(refs, snapshot_dir=snapshot_dir, offline=offline, timeout=hub_timeout,
                               retries=hub_retries, deadline=deadline,
                               progress=lambda done, total, ref: bar.advance(1, str(ref)))
    for ref, res in zip(refs, resolved):
        out = ModelOutcome(ref)
        outcomes.append(out)
        if isinstance(res, SourceError):
            out.error_kind, out.error_message = res.kind, res.message
            continue
        out.info = {"config_source": res.source, "revision": res.revision}
        try:
            spec = build_spec(res.config, model_id=ref.id, extra=res.extra)
        except ConfigError as e:
            out.error_kind, out.error_message = "malformed_config", str(e)
            continue
        except Exception as e:  # noqa: BLE001 - one bad config must not sink the batch
            out.error_kind, out.error_message = "error", f"{type(e).__name__}: {e}"
            continue
        out.entry = ModelEntry(model=ref.id, revision=res.revision or ref.revision,
                               config_source=res.source, spec=spec, kv_cache_dtype=ref.kv_cache_dtype)
        if spec.unsupported_reason:
            out.error_kind, out.error_message = "unsupported_architecture", spec.unsupported_reason
    import time

    if weights == "checkpoint" and deadline is not None and time.monotonic() >= deadline:
        for o in outcomes:
            if o.entry is not None:
                o.info["weights_source"] = "config"
                o.info["weights_note"] = "job deadline reached before checkpoint headers were read; config-derived"
    elif weights == "checkpoint":
        attach_headers([o for o in outcomes if o.entry is not None and not o.entry.spec.unsupported_reason],
                       offline=offline or bool(snapshot_dir), quiet=quiet, hub_timeout=hub_timeout,
                       hub_retries=hub_retries, deadline=deadline)
    return outcomes


def apply_mm_limits(outcomes: list[ModelOutcome], limits: dict | None) -> None:
    """``--limit-mm-per-prompt``: every modality at 0 serves multimodal models text only (encoder.py)."""
    from reportgen.estimate.encoder import apply_limits

    for o in outcomes:
        if o.entry is not None and not o.entry.spec.unsupported_reason:
            o.entry.spec = apply_limits(o.entry.spec, limits)


def attach_headers(outcomes: list[ModelOutcome], *, offline: bool | None, quiet: bool, workers: int = 8,
                   hub_timeout: float = 10.0, hub_retries: int = 3, deadline: float | None = None) -> None:
    """Checkpoint-true weights: fetch safetensors headers (parallel), map them onto each spec.

    A model whose headers cannot be read (offline, local path, gated...) keeps its
    config-derived weights; the reason is logged and recorded in the manifest.  Each model's
    reads are bounded in wall-clock time like its config's (sources.resolve.bounded_map), with
    ten times the config budget because a sharded checkpoint needs one range request per shard.
    """
    from reportgen.estimate.quant import attach_checkpoint_headers
    from reportgen.sources import SourceError, checkpoint_weight_bytes
    from reportgen.sources.resolve import bounded_map, model_budget

    def fetch(i: int):
        o = outcomes[i]
        if offline:
            return SourceError(o.ref, "network", "offline: checkpoint headers need the hub")
        try:
            return checkpoint_weight_bytes(o.ref, timeout=hub_timeout, retries=hub_retries)
        except SourceError as e:
            return e

    budget = 10 * model_budget(hub_timeout, hub_retries, 0.5)

    def overrun(i: int, why: str):
        what = {"deadline": "the job deadline (--deadline) passed",
                "budget": f"no complete answer within {budget:g}s"}.get(why, "unexpected failure")
        return SourceError(outcomes[i].ref, "network", what)

    with Progress("reading checkpoint headers", len(outcomes), quiet) as bar:
        headers = bounded_map(list(range(len(outcomes))), fetch, workers=workers, budget=budget,
                              deadline=deadline, on_overrun=overrun,
                              on_done=lambda i: bar.advance(1, str(outcomes[i].ref)))
        for i, o in enumerate(outcomes):
            hdr = headers[i]
            if isinstance(hdr, SourceError):
                o.info["weights_source"] = "config"
                o.info["weights_note"] = f"checkpoint headers unavailable ({hdr.kind}: {hdr.message}); config-derived"
                log(f"{o.ref}: {o.info['weights_note']}", quiet)
                continue
            report = attach_checkpoint_headers(o.entry.spec, hdr)
            o.info["weights_source"] = "safetensors"
            o.info["weights_coverage"] = {k: report.get(k) for k in (
                "scheme", "header_bytes", "matched_bytes", "unmatched_bytes", "config_weight_bytes", "warnings")}


def model_summaries(outcomes: list[ModelOutcome]) -> list[dict]:
    from reportgen.estimate.sections import weight_sections

    out = []
    for o in outcomes:
        d = {"id": o.ref.id, "revision": o.info.get("revision") or o.ref.revision,
             "config_source": o.info.get("config_source"), "error": o.error_message if o.entry is None else None,
             **{k: o.info[k] for k in ("weights_source", "weights_note", "weights_coverage") if k in o.info}}
        if o.entry is not None:
            s = o.entry.spec
            d.update(model_type=s.model_type, family=s.family, unsupported_reason=s.unsupported_reason)
            if not s.unsupported_reason:
                d.update(params_total=s.params_total, params_active=s.params_active,
                         params_text=s.params_text, kv_bytes_per_token=s.kv_bytes_per_token(2),
                         num_layers=s.num_layers, hidden_size=s.hidden_size, vocab_size=s.vocab_size,
                         num_attention_heads=s.num_attention_heads, num_kv_heads=s.num_kv_heads,
                         num_experts=s.num_experts, experts_per_token=s.experts_per_token,
                         is_mla=s.is_mla, multimodal=s.multimodal, dtype=s.dtype,
                         components=s.params_by_component(), sections=weight_sections(s))
                if s.notes:     # what the architecture layer chose (a trimmed tower, per-layer top-k, MTP skipped)
                    d["notes"] = list(s.notes)
        out.append(d)
    return out
