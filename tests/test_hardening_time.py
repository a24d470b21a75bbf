"""Issue 14 (9): time is bounded end to end.

--hub-timeout and --hub-retries bound the whole resolution of a model, including
huggingface_hub's own retries and a server that trickles bytes (each read beats the
per-request timeout); a job-level --deadline bounds a run's model resolution; a config
above the size cap is refused before it is downloaded.  Local fake hub on 127.0.0.1 only
(tests/hubserver.py); every call here runs in a thread joined with a timeout, so a
regression fails the test instead of hanging it.
"""

import threading
import time

import pytest

from hubserver import fake_hub  # noqa: F401 - fixture
from reportgen.job import ModelRef

CONFIG = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
          "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 1000,
          "max_position_embeddings": 2048, "torch_dtype": "bfloat16", "padding": "x" * 3000}


def _bounded(fn, limit):
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("v", fn()), daemon=True)
    start = time.monotonic()
    t.start()
    t.join(limit)
    assert not t.is_alive(), f"still running after {limit}s: time is not bounded"
    return box["v"], time.monotonic() - start


def test_trickling_server_is_bounded_by_timeout_and_retries(fake_hub):
    from reportgen.sources import resolve_all

    fake_hub.add("acme/trickle", {"config.json": CONFIG}, behaviour="trickle", delay=0.2)   # ~10 min of bytes
    (res,), elapsed = _bounded(lambda: resolve_all([ModelRef("acme/trickle")], timeout=1.0, retries=1,
                                                   backoff=0.1), 60)
    assert res.kind == "network"
    assert "within" in res.message and "--hub-timeout" in res.message
    # budget = timeout x (retries + 1) + back-off = 2.1 s; generous margin for a loaded machine
    assert elapsed < 20, elapsed


def test_fast_models_are_not_held_up_by_a_trickling_one(fake_hub):
    from reportgen.sources import resolve_all

    fake_hub.add("acme/trickle", {"config.json": CONFIG}, behaviour="trickle", delay=0.2)
    fake_hub.add("acme/fast", {"config.json": CONFIG})
    (slow, fast), _ = _bounded(lambda: resolve_all([ModelRef("acme/trickle"), ModelRef("acme/fast")],
                                                   timeout=1.0, retries=0), 60)
    assert slow.kind == "network" and fast.source == "hub"


def test_job_deadline_bounds_the_run(fake_hub, tmp_path, capsys):
    from reportgen.cli import main

    fake_hub.add("acme/stalled", {"config.json": CONFIG}, behaviour="slow", delay=60)
    job = tmp_path / "job.toml"
    job.write_text('name = "d"\nmodels = ["acme/stalled"]\ngpus = ["H100"]\nformats = ["parquet", "csv"]\n')
    out = tmp_path / "out"
    code, elapsed = _bounded(lambda: main(["run", str(job), "--out", str(out), "-q", "--hub-timeout", "30",
                                           "--deadline", "2"]), 60)
    assert code == 1 and elapsed < 25, (code, elapsed)
    errors = (out / "errors.csv").read_text()
    assert "deadline" in errors and "network" in errors


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_deadline_must_be_finite_positive(tmp_path, capsys, value):
    from reportgen.cli import main

    job = tmp_path / "job.toml"
    job.write_text('name = "d"\nmodels = ["acme/x"]\ngpus = ["H100"]\n')
    assert main(["run", str(job), "--out", str(tmp_path / "o"), f"--deadline={value}", "-q"]) == 2
    assert "--deadline" in capsys.readouterr().err


def test_oversized_config_is_refused_before_download(fake_hub):
    from reportgen.sources import resolve_all

    big = b'{"model_type": "llama", "x": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    fake_hub.add("acme/huge", {"config.json": big})
    (res,), _ = _bounded(lambda: resolve_all([ModelRef("acme/huge")], timeout=5, retries=0), 60)
    assert res.kind == "malformed_config" and "larger than" in res.message
    assert fake_hub.count("acme/huge", "config.json", method="GET") == 0


def test_checkpoint_header_reads_are_bounded_by_the_deadline(fake_hub):
    """--weights checkpoint: a trickling safetensors header cannot outlive the job deadline."""
    from hubserver import safetensors_bytes
    from reportgen.models import ModelOutcome, attach_headers

    st = safetensors_bytes({"model.embed_tokens.weight": ("BF16", [1000, 64])})
    fake_hub.add("acme/trickle-st", {"config.json": CONFIG, "model.safetensors": st}, behaviour="trickle",
                 delay=0.5)

    class Entry:          # attach_headers only touches .spec when headers arrive
        spec = None

    o = ModelOutcome(ModelRef("acme/trickle-st"), entry=Entry())
    _, elapsed = _bounded(lambda: attach_headers([o], offline=False, quiet=True, hub_timeout=5, hub_retries=0,
                                                 deadline=time.monotonic() + 2), 60)
    assert elapsed < 20, elapsed
    assert o.info["weights_source"] == "config" and "deadline" in o.info["weights_note"]
