"""The batch: job -> models and GPUs -> matrix -> run directory.

Order matters for the exit-code promise: everything that can make the job
invalid (fields, SKUs, matrix size, template dir) is checked before any model
is resolved or any file is written (exit 2).  After that, a model that cannot
be resolved or modelled becomes error rows and a line in errors.csv and the
report (exit 1), never a traceback that loses the other models.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from reportgen import __version__
from reportgen.catalog import Catalog, GpuSku, UnknownGpu, load_catalog, platform_note
from reportgen.job import Job, JobError, check_size, extensible_kv_cache, resolved_utilizations
from reportgen.models import ModelOutcome, apply_mm_limits, load_models, model_summaries
from reportgen.progress import Progress, log
from reportgen.results import ERROR_SCHEMA, conform, empty_results
from reportgen.usererrors import RunDirError

EXIT_OK, EXIT_MODEL_FAILURES, EXIT_USAGE = 0, 1, 2
# Above this many cells the matrix is streamed in batches to a partitioned Parquet dataset
# (bounded memory); CSV/XLSX/HTML/PDF are not written at that size (no spreadsheet opens them).
STREAM_CELLS = 2_000_000
STREAM_PART_CELLS = 1_000_000      # cells per Parquet part of a streamed job
STREAM_PREP_CELLS = 1_000_000      # cells per chunk of models evaluated up to its (layout, GPU, util) rows
#   (4 M measured +0.13 GB peak RSS on a streamed 18 M-cell job for no time saved: docs/decisions.md)


@dataclass
class PreparedJob:
    """A job whose every input is checked: what `run` needs and nothing can still be invalid."""

    job: Job
    catalog: Catalog
    gpus: list[GpuSku]
    cells: int


def prepare(job: Job) -> PreparedJob:
    try:
        catalog = load_catalog(job.catalogs)
    except (OSError, ValueError) as e:
        raise JobError(f"catalogs: {e}") from None
    gpus: list[GpuSku] = []
    for i, g in enumerate(job.gpus):
        try:
            sku = catalog.get(g)
        except UnknownGpu as e:
            raise JobError(f"gpus[{i}]: {e}") from None
        if sku not in gpus:
            gpus.append(sku)
    cells = check_size(job, len(gpus))
    return PreparedJob(job, catalog, gpus, cells)


def errors_frame(outcomes: list[ModelOutcome]) -> pl.DataFrame:
    rows = [{"model": o.ref.id, "revision": o.ref.revision, "kind": o.error_kind, "message": o.error_message}
            for o in outcomes if o.error_kind]
    return pl.DataFrame(rows, schema=ERROR_SCHEMA)


def cell_errors(results: pl.DataFrame, known: set[str]) -> pl.DataFrame:
    """Counts of cells the estimator could not evaluate, per (model, reason), for models that
    otherwise resolved: e.g. an unsupported quantization method (as-shipped cells only) or a KV
    dtype the architecture cannot use.  Models already failed as a whole are not repeated."""
    bad = results.filter(pl.col("status").is_in(["unsupported", "error"]) & ~pl.col("model").is_in(sorted(known)))
    return bad.group_by("model", "revision", "reason").agg(pl.len().alias("cells"))


def cell_error_rows(counts: pl.DataFrame) -> pl.DataFrame:
    counts = counts.group_by("model", "revision", "reason").agg(pl.col("cells").sum()).sort("model", "reason")
    return counts.select("model", "revision", pl.lit("unsupported_cells").alias("kind"),
                         pl.format("{} ({} cells)", "reason", "cells").alias("message")).cast(ERROR_SCHEMA)


def error_cells(outcomes: list[ModelOutcome], prepared: PreparedJob) -> pl.DataFrame:
    """Models that never reached the matrix still get a row per GPU, status error."""
    rows = [{"model": o.ref.id, "revision": o.ref.revision, "gpu": g.id, "gpu_name": g.name,
             "gpu_memory_gib": g.usable_memory_gib, "status": "error",
             "reason": f"{o.error_kind}: {o.error_message}"}
            for o in outcomes if o.entry is None for g in prepared.gpus]
    return conform(pl.DataFrame(rows)) if rows else empty_results()


@dataclass
class RunResult:
    run_dir: Path
    exit_code: int
    cells: int
    failed_models: list[str]
    timings: dict
    report_errors: list[str] = field(default_factory=list)   # reports user templates failed to render


def run_job(prepared: PreparedJob, out_dir: Path | None = None, *, snapshot_dir: str | None = None,
            quiet: bool = False, base_dir: Path = Path("output"), offline: bool | None = None,
            template_dir: str | None = None, hub_timeout: float = 10.0, hub_retries: int = 3,
            deadline: float | None = None) -> RunResult:
    """``deadline``: seconds of wall clock for resolving the models (None: per-model bounds only)."""
    from reportgen.outputs.lock import RunLock
    from reportgen.outputs.rundir import default_run_dir

    job = prepared.job
    started = datetime.now(timezone.utc)
    final = out_dir if out_dir is not None else default_run_dir(base_dir, job.name, started)
    # one writer per run directory, taken before any work so a second run fails at once (exit 2)
    with RunLock(final):
        return _run_locked(prepared, final, out_dir is not None, started, snapshot_dir=snapshot_dir, quiet=quiet,
                           offline=offline, template_dir=template_dir, hub_timeout=hub_timeout,
                           hub_retries=hub_retries, deadline=deadline)


def _run_locked(prepared: PreparedJob, final: Path, explicit_out: bool, started: datetime, *,
                snapshot_dir: str | None, quiet: bool, offline: bool | None, template_dir: str | None,
                hub_timeout: float, hub_retries: int, deadline: float | None = None) -> RunResult:
    from reportgen.matrix import evaluate_matrix
    from reportgen.outputs.rundir import AtomicDir
    from reportgen.outputs.tables import write_csv, write_parquet

    job = prepared.job
    timings: dict[str, float] = {}
    t = time.perf_counter()
    outcomes = load_models(job.models, snapshot_dir=snapshot_dir, quiet=quiet, offline=offline,
                           weights=job.weights, hub_timeout=hub_timeout, hub_retries=hub_retries,
                           deadline=None if deadline is None else time.monotonic() + deadline)
    timings["resolve_s"] = round(time.perf_counter() - t, 3)

    apply_mm_limits(outcomes, job.matrix.limit_mm_per_prompt)
    if getattr(job.matrix, "speculative_config", None):
        # --speculative-config method draft_model: the draft's config through the same sources as the models
        from reportgen.estimate_cmd import draft_spec_for
        job.matrix.draft_spec = draft_spec_for(job.matrix.speculative_config, offline=offline,
                                               snapshot_dir=snapshot_dir)
    entries = [o.entry for o in outcomes if o.entry is not None]
    errors = errors_frame(outcomes)
    streamed = prepared.cells > STREAM_CELLS
    meta = {
        "job_name": job.name,
        "run_started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tool_version": __version__,
        "catalog_version": prepared.catalog.version,
        "vllm_version": job.matrix.vllm_version,
        "inputs_hash": job.inputs_hash(),
        "assumptions": _assumptions(job),
        "models": model_summaries(outcomes),
        "gpus": [{"id": g.id, "name": g.name, "usable_memory_gib": g.usable_memory_gib,
                  "price_usd_hr": g.price_usd_hr, "gpus_per_node": g.gpus_per_node,
                  "memory_source": g.memory_source,
                  "platform_note": platform_note(getattr(g, "vendor", None))} for g in prepared.gpus],
    }
    table_meta = {k: v for k, v in meta.items() if k != "models"}
    previous = previous_run(final.parent, job.name) if not explicit_out else None
    with AtomicDir(final, exclusive=explicit_out) as d:
        t = time.perf_counter()
        if streamed:
            n_cells, counts = _write_streamed(d.tmp, entries, outcomes, prepared, table_meta, quiet,
                                              set(errors["model"]))
            errors = pl.concat([errors, cell_error_rows(counts)])
            meta["skipped_outputs"] = [
                f"{n_cells:,} cells exceed the in-memory limit of {STREAM_CELLS:,}: results are the partitioned "
                "dataset results.parquet/ (read it with polars.scan_parquet('results.parquet/*.parquet')); "
                "results.csv, results.xlsx, report.html and report.pdf are not written at this size"]
            log(meta["skipped_outputs"][0], quiet)
        else:
            results = evaluate_matrix(entries, prepared.gpus, job.matrix) if entries else empty_results()
            results = pl.concat([conform(results), error_cells(outcomes, prepared)], how="vertical")
            errors = pl.concat([errors, cell_error_rows(cell_errors(results, set(errors["model"])))])
            n_cells = results.height
            timings["matrix_s"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            write_parquet(results, d.tmp / "results.parquet", table_meta)
            write_csv(results, d.tmp / "results.csv")
            if previous is not None:
                try:
                    diff = write_changes(previous, results, d.tmp / "changes.csv")
                except RunDirError as e:      # a damaged earlier run must not sink this one
                    diff = None
                    meta["notes"] = [*meta.get("notes", []), f"No changes.csv: the previous run is unreadable ({e})."]
            if previous is not None and diff is not None:
                meta["diff"] = diff
                meta["notes"] = [*meta.get("notes", []), (
                    f"Since the previous run ({diff['previous_run']}): {diff['status']:,} cells changed status, "
                    f"{diff['kv_tokens']:,} changed KV capacity by more than 1 %, {diff['added']:,} added, "
                    f"{diff['removed']:,} removed (changes.csv).")]
        write_csv(errors, d.tmp / "errors.csv")
        timings["tables_s"] = round(time.perf_counter() - t, 3)
        report_errors: list[str] = []
        if not streamed:
            report_errors = render_reports(d.tmp, results, errors, meta, job.formats, template_dir or job.templates,
                                           quiet=quiet, timings=timings, paper=job.paper)
        exit_code = EXIT_USAGE if report_errors else EXIT_MODEL_FAILURES if errors.height else EXIT_OK
        manifest = {**meta, "job": job.as_dict(), "cells": n_cells, "timings": timings,
                    "files": sorted(p.name for p in d.tmp.iterdir() if not p.name.startswith(".")) + ["manifest.json"],
                    "exit_code": exit_code, **({"report_errors": report_errors} if report_errors else {})}
        (d.tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    failed = errors["model"].to_list()
    return RunResult(d.final, exit_code, n_cells, failed, timings, report_errors)


def previous_run(job_dir: Path, job_name: str | None = None) -> Path | None:
    """The newest finished run of the same job under the default output tree (scheduled runs).

    With ``job_name``, only a run whose manifest names exactly that job counts: a folder shared
    by two jobs (names that sanitised alike before job_folder() hashed them) never diffs one
    job against the other."""
    if not job_dir.is_dir():
        return None
    runs = sorted(p for p in job_dir.iterdir()
                  if not p.name.startswith(".") and (p / "results.parquet").is_file())
    if job_name is not None:
        runs = [p for p in runs if _manifest_job_name(p) == job_name]
    return runs[-1] if runs else None


def _manifest_job_name(run_dir: Path) -> str | None:
    try:
        meta = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return meta.get("job_name") if isinstance(meta, dict) else None


def write_changes(previous: Path, results: pl.DataFrame, path: Path) -> dict:
    """changes.csv: cells added, removed, changing status or KV capacity (> 1 %) since `previous`."""
    from reportgen.diff import diff_frames
    from reportgen.outputs.tables import write_csv

    from reportgen.outputs.run_reader import read_results

    changes = diff_frames(read_results(previous), results)
    write_csv(changes, path)
    counts = dict(changes.group_by("change").len().iter_rows())
    return {"previous_run": previous.name, **{k: counts.get(k, 0) for k in ("added", "removed", "status", "kv_tokens")}}


def _write_streamed(run_dir: Path, entries: list, outcomes: list[ModelOutcome], prepared: PreparedJob,
                    table_meta: dict, quiet: bool, known_failed: set[str]) -> tuple[int, pl.DataFrame]:
    """Very large jobs: the matrix in batches, one Parquet part per batch (<= STREAM_PART_CELLS cells),
    bounded memory, parts in job order (``iter_cell_batches``)."""
    from reportgen.matrix import iter_cell_batches
    from reportgen.outputs.tables import write_parquet

    parts = run_dir / "results.parquet"
    parts.mkdir()
    n = 0
    counts = [cell_errors(empty_results(), known_failed)]
    batches = [error_cells(outcomes, prepared)]
    with Progress("evaluating matrix", prepared.cells, quiet) as bar:
        cells = iter_cell_batches(entries, prepared.gpus, prepared.job.matrix, batch_cells=STREAM_PART_CELLS,
                                  prep_cells=STREAM_PREP_CELLS)
        for i, batch in enumerate(_chain(cells, batches)):
            if batch.height == 0:
                continue
            write_parquet(conform(batch), parts / f"part-{i:05d}.parquet", table_meta)
            counts.append(cell_errors(batch, known_failed))
            n += batch.height
            bar.advance(batch.height)
    return n, pl.concat(counts)


def _chain(*iterables):
    for it in iterables:
        yield from it


def render_reports(run_dir: Path, results: pl.DataFrame, errors: pl.DataFrame, meta: dict,
                   formats: list[str], template_dir: str | None, *, quiet: bool = False,
                   timings: dict | None = None, paper: str = "A4") -> list[str]:
    """HTML / PDF / XLSX from the same tables (also used by `reportgen render`).

    Returns the reports that user templates (``template_dir``) failed to render, one line each:
    the tables are already written and are kept; the caller reports the failure (exit 2).  With
    the bundled templates a failure is our bug and propagates (exit 3)."""
    timings = timings if timings is not None else {}
    failed: list[str] = []
    todo = [f for f in ("html", "pdf", "xlsx") if f in formats]
    tdir = Path(template_dir) if template_dir else None
    if "xlsx" in todo:
        from reportgen.outputs.xlsx import xlsx_skips

        skipped = xlsx_skips(results.height)
        if skipped:       # the HTML/PDF say which workbook sheets were left out
            meta = {**meta, "skipped_outputs": [*meta.get("skipped_outputs", []), *skipped]}
    with Progress("rendering", len(todo), quiet) as bar:
        for fmt in todo:
            t = time.perf_counter()
            try:
                _render_one(fmt, run_dir, results, errors, meta, tdir, paper)
            except Exception as e:  # noqa: BLE001 - sorted: a user template's failure vs our bug
                from reportgen.usererrors import OUTPUT_ERRNOS, OutputError

                disk = isinstance(e, OutputError) or (isinstance(e, OSError) and e.errno in OUTPUT_ERRNOS)
                if tdir is None or fmt == "xlsx" or disk:     # (jinja2's TemplateNotFound is an OSError)
                    raise
                line = " ".join(str(e).split())[:300]
                failed.append(f"report.{fmt} was not written: the templates in {str(tdir)!r} failed while "
                              f"rendering ({type(e).__name__}: {line})")
                log(failed[-1], quiet)
            timings[f"{fmt}_s"] = round(time.perf_counter() - t, 3)
            bar.advance(1, fmt)
    return failed


def _render_one(fmt: str, run_dir: Path, results: pl.DataFrame, errors: pl.DataFrame, meta: dict,
                tdir: Path | None, paper: str) -> None:
    if fmt == "html":
        from reportgen.outputs.html import write_html

        write_html(run_dir / "report.html", results, errors, meta, template_dir=tdir)
    elif fmt == "pdf":
        from reportgen.outputs.pdf import write_pdf

        write_pdf(run_dir / "report.pdf", results, errors, meta, template_dir=tdir, paper=paper)
    elif fmt == "xlsx":
        from reportgen.outputs.xlsx import write_xlsx

        write_xlsx(run_dir / "results.xlsx", results, meta)


def _assumptions(job: Job) -> dict:
    from reportgen.matrix import kv_block_size

    m = job.matrix
    return {
        "gpu_memory_utilization": m.gpu_memory_utilization or (
            f"vLLM default for {m.vllm_version}: {resolved_utilizations(m)[0]:g}"
            + (" (the extensible KV cache)" if extensible_kv_cache(m) else "")),
        "enable_extensible_kv_cache": extensible_kv_cache(m),
        "max_num_batched_tokens": m.max_num_batched_tokens or "vLLM default by GPU (8192 / 2048 below 70 GiB or on an A100; 0.28+: 16384 from 160 GiB; "
                                                          "0.22+: at least the largest multimodal item of a prefix LM such as Gemma-4 26B / 31B)",
        "max_num_seqs": m.max_num_seqs or "vLLM default by GPU (1024 / 256 below 70 GiB or on an A100)",
        "kv_cache_dtype": m.kv_cache_dtype,
        "weights": "checkpoint safetensors headers (as-shipped cells)" if job.weights == "checkpoint"
                   else "config shapes x storage scheme",
        "block_size": m.block_size or f"vLLM default for {m.vllm_version}: {kv_block_size(m)} (backends may raise it)",
        "vllm_version": m.vllm_version,
        "vllm_profile": _profile_text(m.vllm_version),
        "max_nodes": m.max_nodes,
        "allow_cross_node_tp": m.allow_cross_node_tp,
        "limit_mm_per_prompt": m.limit_mm_per_prompt or "vLLM default (every modality allowed)",
        # the CUDA-graph capture set, when the job sets it (estimate/capture_sizes.py)
        **{k: getattr(m, k) for k in ("max_cudagraph_capture_size", "cudagraph_capture_sizes", "cudagraph_mode")
           if getattr(m, k) is not None},
        # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS, when the job sets it
        **({"memory_profiler_estimate_cudagraphs": _estimate_cudagraphs_text(m)}
           if m.memory_profiler_estimate_cudagraphs is not None else {}),
        # models with their own KV dtype axis (job ``models`` table entries), e.g. "org/name: fp8"
        **({"kv_cache_dtype_per_model": "; ".join(f"{r}: {', '.join(r.kv_cache_dtype)}" for r in job.models
                                                  if r.kv_cache_dtype)}
           if any(r.kv_cache_dtype for r in job.models) else {}),
    }


def _estimate_cudagraphs_text(m) -> str:
    """What the job's VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS does to the KV budget (profiles.budget_graph_factor)."""
    value = int(bool(m.memory_profiler_estimate_cudagraphs))
    if m.estimate_cudagraphs_used is None:
        return (f"{value}: no effect -- the extensible KV cache measures the captured CUDA graphs after warm-up")
    if value:
        return "1: the CUDA-graph memory estimate is taken from the KV budget"
    return ("0: no CUDA-graph estimate; graphs are captured after the KV cache is sized, outside the budget "
            "(the after-profiling out-of-memory check counts them)")


def _profile_text(version: str) -> str:
    """The version profile a job is estimated with, and the note when the version is newer than
    the newest release read (reportgen/estimate/profiles.py)."""
    from reportgen.estimate.profiles import profile_for
    p, note = profile_for(version)
    return p.label + (f" ({note})" if note else "")


def log_summary(res: RunResult, quiet: bool) -> None:
    log(f"wrote {res.cells:,} cells to {res.run_dir}", quiet)
    for line in res.report_errors:
        print(f"reportgen run: error: {line}; results.parquet, results.csv and errors.csv are in {res.run_dir}",
              file=sys.stderr)
    if res.failed_models:
        log(f"{len(res.failed_models)} model(s) failed (see errors.csv): {', '.join(res.failed_models)}", quiet)
