"""Reading a finished run directory back (`reportgen render`, `reportgen diff`, changes.csv).

Why its own module: a run directory is user input once it has been written — copied, edited,
truncated by a full disk, or not ours at all.  Every way it can be damaged (corrupt or
truncated Parquet, a manifest that is not a JSON object, a foreign schema, a binary
errors.csv) becomes one :class:`RunDirError` naming the file (exit 2), never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

from reportgen.usererrors import RunDirError

# the columns render and diff cannot do without (the rest are filled with nulls by conform())
REQUIRED_COLUMNS = ("model", "gpu", "tp", "pp", "dp", "ep", "weights_as", "kv_cache_dtype", "max_model_len",
                    "concurrency", "gpu_memory_utilization", "status", "kv_cache_tokens", "weights_gib")
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


def results_path(given: str | Path) -> Path:
    """The results.parquet of a run directory (or the file itself)."""
    path = Path(given)
    if path.is_dir():
        path = path / "results.parquet"
    if not path.is_file():
        if path.is_dir():
            raise RunDirError(f"{str(given)!r}: results.parquet is a partitioned dataset (a streamed run): "
                              "render and diff need a single results.parquet")
        raise RunDirError(f"{str(given)!r} is not a run directory (no results.parquet)")
    return path


def read_results(given: str | Path):
    """results.parquet as a DataFrame with our schema, or RunDirError."""
    import polars as pl

    from reportgen.results import conform, upgrade_legacy

    path = results_path(given)
    try:
        df = pl.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - polars raises several types for a damaged file
        raise RunDirError(f"{str(path)!r} is not a readable Parquet file ({type(e).__name__}): "
                          "the run directory is damaged; re-run the job") from None
    df = upgrade_legacy(df)              # runs written before weight_dtype -> weights_as
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise RunDirError(f"{str(path)!r} is not a reportgen results file: missing columns {', '.join(missing)}")
    try:
        return conform(df)
    except Exception as e:  # noqa: BLE001 - a column of the wrong type
        raise RunDirError(f"{str(path)!r}: columns of unexpected types ({type(e).__name__}); "
                          "not a results file of this reportgen version") from None


def read_errors(run_dir: Path):
    import polars as pl

    from reportgen.results import ERROR_SCHEMA

    path = run_dir / "errors.csv"
    if not path.is_file():
        return pl.DataFrame(schema=ERROR_SCHEMA)
    try:
        return pl.read_csv(path, schema=ERROR_SCHEMA, encoding="utf8")
    except Exception as e:  # noqa: BLE001
        raise RunDirError(f"{str(path)!r} is not a readable errors.csv ({type(e).__name__}); "
                          "the run directory is damaged") from None


def read_manifest(run_dir: Path, results_file: Path) -> dict:
    """manifest.json (a JSON object), else the metadata stored in results.parquet."""
    from reportgen.outputs.tables import read_parquet_meta

    path = run_dir / "manifest.json"
    if path.is_file():
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise RunDirError(f"{str(path)!r} is larger than {MAX_MANIFEST_BYTES >> 20} MiB: not our manifest")
        try:
            meta = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise RunDirError(f"{str(path)!r} is not valid JSON ({type(e).__name__}): "
                              "the run directory is damaged") from None
        if not isinstance(meta, dict):
            raise RunDirError(f"{str(path)!r} must be a JSON object, got {type(meta).__name__}")
        return meta
    try:
        meta = read_parquet_meta(results_file)
    except Exception:  # noqa: BLE001 - metadata is optional
        return {}
    return meta if isinstance(meta, dict) else {}


def read_run(run_dir: str | Path):
    """(results, errors, meta) of a finished run directory, or RunDirError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{str(run_dir)!r} is not a run directory")
    results_file = results_path(run_dir)
    return read_results(run_dir), read_errors(run_dir), read_manifest(run_dir, results_file)
