"""What the per-row log test files (tests/test_vllm_logs_rows*.py) share: a row of tests/data/vllm_logs.csv by its
id, and the estimator's figures for it scored against the log by scripts/validate_vllm_logs.py (the same case and
comparison the published accuracy table uses)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts import validate_vllm_logs as vvl  # noqa: E402


def log_row(row_id: str) -> dict:
    return next(r for r in vvl.load_rows(vvl.CSV) if r["row_id"] == row_id)


def score(row_id: str) -> dict:
    case = vvl.make_case(log_row(row_id))
    assert case is not None, row_id
    return vvl.compare(case, vvl.predict(case))
