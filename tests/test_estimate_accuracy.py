"""Accuracy guard: the estimator against the real vLLM v0.19 start-up logs (issue 4 targets).

Runs the same code as scripts/validate_vllm_logs.py and scripts/calibrate_overheads.py, so
a change that degrades the published accuracy table, or drifts the shipped overhead
constants away from their fit, fails here.
"""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import calibrate_overheads  # noqa: E402
import validate_vllm_logs  # noqa: E402


def test_v019_rows_meet_the_targets():
    res = validate_vllm_logs.run()
    _, stats = validate_vllm_logs.summary(res)
    assert stats["rows"] >= 36
    share = {k: sum(v) / len(v) for k, v in stats.items() if k != "rows"}
    assert share["kv"] == 1.0                 # KV cache GiB within 3 % on every row
    assert share["tokens"] == 1.0             # KV tokens within 5 % on every row
    assert share["verdict"] == 1.0            # never "no_fit" where vLLM started
    assert share["weights"] == 1.0            # weights within 1 % / 0.05 GiB on every row
    llama_pp4 = next(r for r in res if r["row"] == 110)
    assert round(llama_pp4["w_pred"], 2) == 4.26 and abs(llama_pp4["tok_err"]) < 0.5


def test_shipped_overhead_constants_match_their_fit(capsys):
    assert calibrate_overheads.main([]) == 0
    assert "RMS" in capsys.readouterr().out


def test_published_accuracy_table_is_current():
    """The README's accuracy block is generated; a change that moves a figure must regenerate it
    (`python scripts/validate_vllm_logs.py`), or readers see numbers the estimator no longer gives."""
    res = validate_vllm_logs.run()
    md, _ = validate_vllm_logs.profile_summary(res)
    text = validate_vllm_logs.README.read_text()
    block = text.split(validate_vllm_logs.START, 1)[1].split(validate_vllm_logs.END, 1)[0]
    assert block.strip() == md.strip()
    # the hand-written hybrid section is carried into docs/accuracy.md on every regeneration
    hybrids = validate_vllm_logs.HYBRID_MD.read_text().strip()
    assert hybrids in validate_vllm_logs.ACCURACY_MD.read_text()
    spec = validate_vllm_logs.SPEC_MD.read_text().strip()     # the speculative-decoding section likewise
    assert spec in validate_vllm_logs.ACCURACY_MD.read_text()
