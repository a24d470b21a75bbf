"""A model's own notes (what the architecture layer chose and says) reach every reader, text-only models too.

Before, ``spec.notes`` were shown for multimodal models only (``vision_notes`` / ``estimate --json``'s ``notes``
string), so a text model's notes -- per-layer MoE top-k priced at the largest, a scalar window standing in for
a missing per-layer list, the recurrent-state layers of a hybrid -- were written and never printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from reportgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
NEXT = "Qwen/Qwen3-Next-80B-A3B-Instruct"          # bundled; a text-only hybrid whose spec carries a note
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"         # bundled; no note


def estimate_json(*args) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["estimate", *args, "--json", "--offline"])
    assert rc == 0
    return json.loads(out.getvalue())


def test_estimate_json_states_a_text_models_notes():
    nxt = estimate_json(NEXT, "--gpu", "H100", "--tp", "4")
    assert nxt["multimodal"] is False
    assert nxt["model_notes"] == ["36 Gated DeltaNet layers hold a recurrent state per sequence (delta-rule state "
                                  "in the model dtype), 12 gated full-attention layers hold KV"]
    assert "model_notes" not in estimate_json(LLAMA, "--gpu", "H100")


def test_report_html_shows_a_text_models_notes(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(f'name = "notes"\nmodels = ["{NEXT}", "{LLAMA}"]\ngpus = ["H200"]\nformats = ["html"]\n'
                   "[matrix]\ntp = [4]\npp = [1]\nweights_as = [\"checkpoint\"]\nmax_model_len = [32768]\n"
                   "concurrency = [1]\n")
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "reportgen", "run", str(job), "--out", str(out), "-q"],
                       capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    page = (out / "report.html").read_text()
    assert page.count("36 Gated DeltaNet layers hold a recurrent state per sequence") == 1
