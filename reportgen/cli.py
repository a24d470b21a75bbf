"""Thin command layer: parse arguments, call the library, map outcomes to exit codes.

Exit codes (documented in the README and `reportgen --help`):
  0  everything evaluated
  1  finished, but some models failed (errors.csv and the report list them)
  2  bad usage or invalid input (nothing written)
  3  internal error (a bug; the atomic run directory means nothing half-written is left)
  130 interrupted (SIGINT), 143 terminated (SIGTERM): temporary files removed, nothing half-written

Heavy libraries (polars, transformers, weasyprint) are imported inside the
commands that need them, so `reportgen --help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

EXIT_OK, EXIT_MODEL_FAILURES, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

EPILOG = """exit codes:
  0  all cells evaluated
  1  finished, but some models failed (listed in errors.csv and the report)
  2  bad usage or invalid job/input (nothing written)
  3  internal error (a bug: nothing half-written is left; please report it with the message)
  130  interrupted (Ctrl-C, SIGINT): nothing half-written is left
  143  terminated (SIGTERM: timeout, systemd, Kubernetes): nothing half-written is left

examples:
  reportgen run model_lists/default.toml
  reportgen run job.toml --set 'matrix.tp=[1,2]' --set 'gpus=["H100"]' --out /tmp/run1
  reportgen estimate meta-llama/Llama-3.1-8B-Instruct --gpu H100 --tp 2 --json
  reportgen render output/default/20261126T020000Z --format pdf
  reportgen diff output/default/<last week> output/default/<this week>
"""


def _csv_ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    from reportgen import __version__

    p = argparse.ArgumentParser(
        prog="reportgen",
        description="Which LLMs fit on which GPUs, in which parallel layouts, with how much KV cache "
                    "left, at what cost (vLLM V1 memory semantics).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"reportgen {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", parents=[common], help="run a job file: matrix -> results + reports",
                       description="Evaluate every cell of a job and write a run directory "
                                   "(results.parquet, results.csv, errors.csv, report.html, report.pdf, "
                                   "manifest.json), atomically.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("job", help="job file (TOML), or the name of a bundled job such as `default`")
    r.add_argument("--out", help="run directory to create (default output/<job name>/<UTC time>/)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a job field for this run, TOML value: --set 'matrix.tp=[1,2]' "
                        "--set 'gpus=[\"H100\"]' --set matrix.max_num_seqs=256")
    r.add_argument("--snapshot", help="resolve configs only from this snapshot directory (offline)")
    r.add_argument("--templates", help="directory of Jinja templates overriding the bundled ones")
    r.add_argument("--offline", action="store_true", help="never touch the network (like HF_HUB_OFFLINE=1)")
    r.add_argument("--hub-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="per-request timeout talking to the hub (default 10)")
    r.add_argument("--hub-retries", type=int, default=3, metavar="N",
                   help="retries with exponential back-off for transient hub failures (default 3)")
    r.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                   help="wall-clock limit for resolving the job's models; models not resolved by then are "
                        "error rows (network) and the report is still written (default: none; each model is "
                        "bounded by --hub-timeout x (--hub-retries + 1) plus back-off)")
    r.add_argument("--weights", choices=["config", "checkpoint"], default=None,
                   help="checkpoint: cost as-shipped weights at the true bytes in the safetensors headers "
                        "(needs the hub; default config: shapes from config.json x storage scheme)")

    e = sub.add_parser("estimate", parents=[common], help="one model: architecture and per-GPU memory",
                       description="Estimate one model on one layout. MODEL is a hub id or a local path "
                                   "(a directory with config.json, or the .json file).  Engine options "
                                   "follow `vllm serve` names and meanings; or paste the whole line with "
                                   "--from-vllm-args.",
                       epilog="examples:\n"
                              "  reportgen estimate Qwen/Qwen3-32B-AWQ --gpu H100 -tp 2 --dtype float16\n"
                              "  reportgen estimate --gpu H100 --from-vllm-args \"vllm serve "
                              "meta-llama/Llama-3.1-8B-Instruct -tp 2 --max-model-len 32768\"",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("model", nargs="?", help="hub id or local path (omit with --from-vllm-args)")
    e.add_argument("--from-vllm-args", metavar="COMMAND_LINE",
                   help="a pasted `vllm serve MODEL ...` line (or its flags, or `python -m "
                        "vllm.entrypoints.openai.api_server --model X ...`): the engine settings come from it")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--gpu", help="GPU SKU id or alias (default H100 when --gpu-memory-gib is not given)")
    e.add_argument("--gpu-memory-gib", type=float,
                   help="usable GPU memory in GiB, for GPUs not in the catalog (no compute capability known: "
                        "MXFP4 experts are priced in vLLM's H100 Triton layout)")
    e.add_argument("--catalog", action="append", default=[], help="extra GPU catalog CSV")
    # vLLM engine options (None = not given: vLLM's default, or the value from --from-vllm-args)
    e.add_argument("--tp", "--tensor-parallel-size", "-tp", dest="tp", type=int, default=None)
    e.add_argument("--pp", "--pipeline-parallel-size", "-pp", dest="pp", type=int, default=None)
    e.add_argument("--dp", "--data-parallel-size", "-dp", dest="dp", type=int, default=None)
    e.add_argument("--ep", "--enable-expert-parallel", dest="ep", action="store_true", default=None,
                   help="enable expert parallel")
    e.add_argument("--dtype", default=None,
                   help="vLLM --dtype, the model/activation dtype: auto, bfloat16, float16 (half), float32 "
                        "(float). Never re-types a pre-quantized checkpoint (default auto)")
    e.add_argument("--quantization", default=None,
                   help="vLLM --quantization: fp8 quantizes an unquantized checkpoint at load; on a quantized "
                        "checkpoint it must name the checkpoint's method")
    e.add_argument("--weights-as", default=None,
                   help="what-if re-quantization of the weights: checkpoint (as shipped, default), bf16, fp16, "
                        "fp32, fp8, int8, int4 (not a vLLM flag)")
    e.add_argument("--kv-cache-dtype", default=None, help="auto, bfloat16, float16, fp8, fp8_e4m3, fp8_e5m2, fp8_ds_mla")
    e.add_argument("--block-size", type=int, default=None,
                   help="KV block size in tokens (vLLM default 16; 64 from 0.34)")
    e.add_argument("--max-model-len", default=None,
                   help="context length, e.g. 32768 or 32k (default: the model's, capped at 32768; with "
                        "--from-vllm-args vLLM's default, the model's own)")
    e.add_argument("--concurrency", type=int, default=1, help="target concurrent requests per DP replica")
    e.add_argument("--gpu-memory-utilization", type=float, default=None,
                   help="vLLM's default: 0.9 before 0.20, 0.92 from 0.20; 1.0 with the extensible KV cache (0.34+)")
    e.add_argument("--enable-extensible-kv-cache", action=argparse.BooleanOptionalAction, default=None,
                   help="vLLM 0.34+: size the KV cache after warm-up and graph capture (vLLM's default there; "
                        "off with --kv-cache-memory-bytes)")
    e.add_argument("--kv-cache-memory-bytes", "--kv-cache-memory", dest="kv_cache_memory_bytes", default=None,
                   help="fixed KV-cache bytes per GPU (8G = 8 GiB); vLLM then ignores --gpu-memory-utilization")
    e.add_argument("--max-num-batched-tokens", default=None)
    e.add_argument("--max-num-seqs", type=int, default=None)
    e.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction, default=None,
                   help="vLLM's prefix caching (changes the state blocks hybrid models keep per request)")
    e.add_argument("--enforce-eager", action="store_true", default=None, help="no CUDA graphs (vLLM --enforce-eager)")
    e.add_argument("--max-cudagraph-capture-size", type=int, default=None,
                   help="vLLM --max-cudagraph-capture-size: CUDA graphs for batch sizes up to this (0.11.1+)")
    e.add_argument("--cudagraph-capture-sizes", type=int, nargs="+", default=None,
                   help="vLLM --cudagraph-capture-sizes: the exact CUDA-graph batch sizes (0.11.1+)")
    e.add_argument("--disable-custom-all-reduce", action="store_true", default=None,
                   help="vLLM --disable-custom-all-reduce: no custom all-reduce buffers (TP group, outside the budget)")
    e.add_argument("--moe-backend", default=None,
                   help="vLLM --moe-backend (auto, triton, cutlass, flashinfer_cutlass, ...); cutlass on NVFP4 experts "
                        "prices vLLM's CUTLASS MoE step (row copies freed per call), other values change nothing")
    e.add_argument("--speculative-config", dest="speculative_config", default=None,
                   help='vLLM --speculative-config JSON, e.g. \'{"method": "mtp", "num_speculative_tokens": 1}\', '
                        '\'{"model": "Qwen/Qwen3-0.6B", "num_speculative_tokens": 4}\' (draft_model), '
                        '\'{"method": "eagle3", "model": "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B", '
                        '"num_speculative_tokens": 3}\', eagle, ngram, suffix')
    e.add_argument("--vllm-version", default=None, help="vLLM version as you run it (e.g. 0.19.0, v0.27.1, 0.20.1rc1): picks "
                   "its budget profile and per-release rules, patch included (0.20 = 0.20.0; an rc / dev build of "
                   "X.Y.Z counts as X.Y.Z; default: the newest release read)")
    e.add_argument("--limit-mm-per-prompt", default=None,
                   help='as vLLM: \'{"image": 0}\' or image=0 (all 0 = text only: no vision tower, no encoder profile)')
    e.add_argument("--offline", action="store_true")
    e.add_argument("--weights", choices=["config", "checkpoint"], default="config",
                   help="checkpoint: true weight bytes from the safetensors headers (needs the hub)")

    rd = sub.add_parser("render", parents=[common], help="re-render reports of a run without recomputing")
    rd.add_argument("run_dir")
    rd.add_argument("--format", action="append", choices=["html", "pdf", "xlsx"], required=True)
    rd.add_argument("--templates", help="directory of Jinja templates overriding the bundled ones")
    rd.add_argument("--paper", choices=["A4", "Letter"], default=None,
                    help="report.pdf page size, landscape (default: the run's job setting, else A4)")

    g = sub.add_parser("gpus", parents=[common], help="list the GPU catalog")
    g.add_argument("--catalog", action="append", default=[], help="extra catalog CSV adding/overriding SKUs")
    g.add_argument("--json", action="store_true")

    d = sub.add_parser("diff", parents=[common], help="what changed between two runs")
    d.add_argument("old")
    d.add_argument("new")
    d.add_argument("--csv", help="also write the changed cells to this CSV")

    s = sub.add_parser("snapshot", parents=[common], help="freeze every config a job needs into a directory")
    s.add_argument("job")
    s.add_argument("--out", required=True)
    s.add_argument("--offline", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    _configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    handler = {"run": cmd_run, "estimate": cmd_estimate, "render": cmd_render, "gpus": cmd_gpus,
               "diff": cmd_diff, "snapshot": cmd_snapshot}[args.command]
    from reportgen.outputs.rundir import remove_live_temporaries
    from reportgen.signals import EXIT_SIGINT, EXIT_SIGTERM, Terminated, sigterm_unwinds

    try:
        with sigterm_unwinds():
            return handler(args)
    except Terminated:
        remove_live_temporaries()
        print("terminated (SIGTERM); nothing was written", file=sys.stderr)
        return EXIT_SIGTERM
    except UsageError as e:
        print(f"reportgen {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - sorted below: user input (exit 2) or a bug (exit 3)
        from reportgen.usererrors import UserInputError

        if not isinstance(e, UserInputError):
            return _internal(args, e)
        print(f"reportgen {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        remove_live_temporaries()
        print("interrupted; nothing was written", file=sys.stderr)
        return EXIT_SIGINT


def _internal(args, e: BaseException) -> int:
    """A bug must not look like exit 1 ("some models failed") or exit 2 (the user's fault)."""
    if getattr(args, "verbose", 0):
        raise e
    print(f"reportgen {args.command}: internal error: {type(e).__name__}: {e} "
          "(run again with -v for the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


def _configure_logging(verbose: int, quiet: bool) -> None:
    """-v: our INFO lines; -vv: DEBUG.  HTTP wire traces stay off at any level:
    a hostile server echoing the Authorization header would leak the token there."""
    import logging

    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpcore", "httpcore2", "httpx", "httpx2", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class UsageError(Exception):
    """Bad input detected by a command: message printed, exit 2, nothing written."""


def _offline(args) -> bool | None:
    return True if getattr(args, "offline", False) else None


def _job_path(text: str) -> str:
    """A job file path; a bare name of a bundled job (`default`) works from an installed wheel too."""
    from reportgen.paths import model_lists_dir

    try:
        if Path(text).is_file():
            return text
        for cand in (model_lists_dir() / text, model_lists_dir() / f"{text}.toml"):
            if cand.is_file():
                return str(cand)
    except OSError:           # e.g. a name too long for the file system: reported by load_job
        pass
    return text


def _load_job(args):
    from reportgen.job import JobError, load_job

    args.job = _job_path(args.job)

    def overrides(raw: dict) -> None:
        for item in args.set:
            _apply_override(raw, item)

    try:
        return load_job(args.job, overrides)
    except JobError as e:
        raise UsageError(str(e)) from None


def _apply_override(raw: dict, item: str) -> None:
    import tomllib

    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. matrix.tp=[1,2]")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value                      # bare words: --set name=weekly
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UsageError(f"--set {item!r}: {part} is not a table")
    node[parts[-1]] = parsed


def cmd_run(args) -> int:
    from reportgen.job import JobError
    from reportgen.progress import log
    from reportgen.run import log_summary, prepare, run_job

    job = _load_job(args)
    if args.templates:
        if not Path(args.templates).is_dir():
            raise UsageError(f"--templates: directory {args.templates!r} not found")
        job.templates = args.templates
    if args.weights:
        job.weights = args.weights
    from reportgen.outputs.sandbox import check_templates

    check_templates(job.templates)        # a template that does not parse: exit 2 before any estimation
    if args.snapshot and not Path(args.snapshot).is_dir():
        raise UsageError(f"--snapshot: directory {args.snapshot!r} not found")
    try:
        prepared = prepare(job)
    except JobError as e:
        raise UsageError(str(e)) from None
    if args.out is not None:
        from reportgen.outputs.rundir import check_out_path

        check_out_path(args.out)
    if not math.isfinite(args.hub_timeout) or args.hub_timeout <= 0 or args.hub_retries < 0:
        raise UsageError(f"--hub-timeout must be a finite number of seconds > 0 (got {args.hub_timeout!r}) "
                         "and --hub-retries at least 0")
    if args.deadline is not None and (not math.isfinite(args.deadline) or args.deadline <= 0):
        raise UsageError(f"--deadline must be a finite number of seconds > 0 (got {args.deadline!r})")
    log(f"job {job.name!r}: {len(job.models)} models x {len(prepared.gpus)} GPUs, "
        f"{prepared.cells:,} cells", args.quiet)
    res = run_job(prepared, Path(args.out) if args.out else None, snapshot_dir=args.snapshot,
                  quiet=args.quiet, offline=_offline(args), hub_timeout=args.hub_timeout,
                  hub_retries=args.hub_retries, deadline=args.deadline)
    log_summary(res, args.quiet)
    return res.exit_code


def cmd_estimate(args) -> int:
    from reportgen.estimate_cmd import estimate_command

    return estimate_command(args, UsageError)


def cmd_render(args) -> int:
    from reportgen.outputs.run_reader import read_run
    from reportgen.run import render_reports
    from reportgen.usererrors import OUTPUT_ERRNOS, output_error

    run_dir = Path(args.run_dir)
    if args.templates and not Path(args.templates).is_dir():
        raise UsageError(f"--templates: directory {args.templates!r} not found")
    from reportgen.outputs.sandbox import check_templates

    check_templates(args.templates)
    results, errors, meta = read_run(run_dir)
    job = meta.get("job") if isinstance(meta.get("job"), dict) else {}
    paper = args.paper or job.get("paper") or "A4"
    if paper not in ("A4", "Letter"):
        paper = "A4"
    try:
        failed = render_reports(run_dir, results, errors, meta, args.format, args.templates, quiet=args.quiet,
                                paper=paper)
    except OSError as e:
        if e.errno in OUTPUT_ERRNOS:
            raise output_error(e, run_dir) from None
        raise
    if failed:
        raise UsageError("; ".join(failed))
    return EXIT_OK


def cmd_gpus(args) -> int:
    from reportgen.catalog import load_catalog

    try:
        cat = load_catalog(args.catalog)
    except (OSError, ValueError) as e:
        raise UsageError(str(e)) from None
    if args.json:
        from dataclasses import asdict

        print(json.dumps([asdict(s) for s in cat], indent=2))
        return EXIT_OK
    print(f"{'sku_id':32} {'usable GiB':>10} {'per node':>8} {'$/GPU-hr':>8}  name / aliases")
    for s in cat:
        price = f"{s.price_usd_hr:.2f}" if s.price_usd_hr is not None else "-"
        print(f"{s.id:32} {s.usable_memory_gib:10.2f} {s.gpus_per_node:8d} {price:>8}  "
              f"{s.name}{' (' + ', '.join(s.aliases) + ')' if s.aliases else ''}")
    print(f"\ncatalog {cat.version}: usable = memory CUDA reports to vLLM, not the marketing size")
    return EXIT_OK


def cmd_diff(args) -> int:
    from reportgen.diff import diff_command

    return diff_command(args, UsageError)


def _draft_ref(speculative_config):
    """The draft model a job's ``speculative_config`` names (draft_model, eagle, eagle3), as a ModelRef."""
    from reportgen.estimate.specdecode import DRAFT_CHECKPOINT_METHODS, parse_speculative_config
    from reportgen.job import ModelRef

    sd = parse_speculative_config(speculative_config)
    if sd is None or sd.method not in DRAFT_CHECKPOINT_METHODS or not sd.model:
        return None
    return ModelRef(sd.model, sd.raw.get("revision"))


def cmd_snapshot(args) -> int:
    from reportgen.progress import log
    from reportgen.sources import SourceError, resolve_all, write_snapshot

    job = _load_job(argparse.Namespace(job=args.job, set=[]))
    refs = list(job.models)
    draft = _draft_ref(job.matrix.speculative_config)
    if draft is not None and draft not in refs:
        refs.append(draft)           # --speculative-config draft_model: its config is frozen too
    results = resolve_all(refs, offline=_offline(args))
    good = [r for r in results if not isinstance(r, SourceError)]
    bad = [r for r in results if isinstance(r, SourceError)]
    if not str(args.out).strip():
        raise UsageError("--out: an empty path is not a snapshot directory")
    try:
        write_snapshot(good, Path(args.out))
    except OSError as e:      # exists and is not a snapshot, under a file, read-only, full
        from reportgen.usererrors import output_error

        raise output_error(e, args.out) if e.errno else UsageError(str(e)) from None
    log(f"froze {len(good)} configs into {args.out}", args.quiet)
    for b in bad:
        log(f"  {b.ref}: {b.kind}: {b.message}", args.quiet)
    return EXIT_MODEL_FAILURES if bad else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
