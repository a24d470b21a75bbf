"""Issue 14: the hostile-input classes in one place, each with a named expectation.

The focused cases live in tests/test_hardening_*.py (all_fail, exit_codes, signals, inputs,
templates, time, render_bounds).  Here: seeded fuzz over the input classes a scheduled job
reads - catalogs, model lists, configs, templates, run directories - asserting the promise
rather than a message: a user's bad input is exit 2 (or a model's error row), never exit 3,
never a hang, never a traceback.  Seeds are fixed so a failure reproduces.
"""

import json
import random
import shutil

import pytest

from hubserver import fake_hub  # noqa: F401 - fixture
from reportgen.cli import main
from reportgen.job import ModelRef

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SEED = 1414


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def _blobs(n, rng):
    """Random bytes, random printable junk, and mutated CSV/JSON/TOML-looking text."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))))
        elif kind == 1:
            out.append("".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(1, 200))).encode())
        elif kind == 2:
            base = bytearray(b"sku_id,name,usable_memory_gib,gpus_per_node,price_usd_hr,aliases\nx,X,80,8,1.5,H\n")
            for _ in range(rng.randrange(1, 6)):
                base[rng.randrange(len(base))] = rng.choice(b',"\n\r0-9.e+-nainf\x00|')
            out.append(bytes(base))
        else:
            out.append(b"\xef\xbb\xbf" + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 100))))
    return out


def test_fuzzed_catalogs_are_exit_0_or_2_never_3(tmp_path, capsys):
    rng = random.Random(SEED)
    for i, blob in enumerate(_blobs(24, rng)):
        f = tmp_path / f"c{i}.csv"
        f.write_bytes(blob)
        code = main(["gpus", "--catalog", str(f), "-q"])
        err = capsys.readouterr().err
        assert code in (0, 2), (i, blob[:80], err)
        assert "internal error" not in err and "Traceback" not in err


def test_fuzzed_model_lists_are_exit_2_or_valid_never_3(tmp_path, capsys):
    rng = random.Random(SEED + 1)
    (tmp_path / "job.toml").write_text('models_file = "list.txt"\ngpus = ["H100"]\nformats = ["parquet"]\n')
    for i, blob in enumerate(_blobs(12, rng)):
        (tmp_path / "list.txt").write_bytes(blob)
        from reportgen.job import JobError, load_job

        try:
            load_job(tmp_path / "job.toml")
        except JobError as e:
            assert "Traceback" not in str(e)
            # content is only quoted when it looks like a model id
            assert all(ord(c) >= 32 for c in str(e))


def test_fuzzed_configs_are_malformed_config_or_resolved(tmp_path):
    from reportgen.sources import SourceError, resolve_all

    rng = random.Random(SEED + 2)
    refs = []
    for i, blob in enumerate(_blobs(16, rng) + [b"[" * 50_000, b'{"a":' * 50_000, b"{}" * 10]):
        p = tmp_path / f"cfg{i}.json"
        p.write_bytes(blob)
        refs.append(ModelRef(str(p)))
    for res in resolve_all(refs, offline=True):
        if isinstance(res, SourceError):
            assert res.kind == "malformed_config", res


def test_fuzzed_templates_are_exit_2_never_3(tmp_path, capsys):
    rng = random.Random(SEED + 3)
    snippets = ["{{", "}}", "{%", "%}", "{#", "for x in", "endfor", "include", "'../x'", "__class__",
                "|safe", "{{ title.job_name }}", "{% raw %}", "\x00", "…", "set", "=", "(", ")"]
    job = tmp_path / "job.toml"
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    job.write_text(f'name = "f"\nmodels = ["{MODEL}"]\ngpus = ["H100"]\nformats = ["parquet", "csv", "html"]\n'
                   f'templates = "{tdir}"\n')
    for i in range(6):
        (tdir / "report.html.j2").write_text(" ".join(rng.choice(snippets) for _ in range(rng.randrange(3, 25))))
        out = tmp_path / f"o{i}"
        code = main(["run", str(job), "--out", str(out), "-q"])
        err = capsys.readouterr().err
        assert code in (0, 2), (i, err)
        assert "internal error" not in err


def test_fuzzed_run_dirs_are_exit_2_for_render_and_diff(tmp_path, capsys):
    job = tmp_path / "job.toml"
    job.write_text(f'name = "f"\nmodels = ["{MODEL}"]\ngpus = ["H100"]\nformats = ["parquet", "csv"]\n')
    good = tmp_path / "good"
    assert main(["run", str(job), "--out", str(good), "-q"]) == 0
    rng = random.Random(SEED + 4)
    for i, blob in enumerate(_blobs(8, rng)):
        bad = tmp_path / f"bad{i}"
        shutil.copytree(good, bad)
        target = ["results.parquet", "manifest.json", "errors.csv"][i % 3]
        (bad / target).write_bytes(blob)
        for argv in (["render", str(bad), "--format", "html", "-q"], ["diff", str(good), str(bad)]):
            code = main(argv)
            err = capsys.readouterr().err
            if argv[0] == "diff" and target != "results.parquet":
                assert code == 0, err          # diff only reads results.parquet
            else:
                assert code == 2, (target, argv[0], err)
            assert "internal error" not in err


def test_hub_faults_on_a_local_server_give_error_rows(fake_hub):
    """gated / missing / 500 / stalled / trickling / oversized, all at once: error rows, bounded time."""
    import time

    from reportgen.sources import SourceError, resolve_all

    hub = fake_hub
    hub.add("a/gated", behaviour="gated")
    hub.add("a/e500", behaviour="error500")
    hub.add("a/stall", behaviour="slow", delay=30)
    hub.add("a/trickle", {"config.json": {"model_type": "llama", "pad": "x" * 2000}}, behaviour="trickle",
            delay=0.2)
    hub.add("a/huge", {"config.json": b"{" + b" " * (5 << 20) + b"}"})
    expected = {"a/gated": "gated", "a/missing": "not_found", "a/e500": "network", "a/stall": "network",
                "a/trickle": "network", "a/huge": "malformed_config"}
    t = time.monotonic()
    res = resolve_all([ModelRef(m) for m in expected], timeout=1.0, retries=1, backoff=0.05)
    assert time.monotonic() - t < 30
    got = {r.ref.id: r.kind for r in res if isinstance(r, SourceError)}
    assert got == expected
