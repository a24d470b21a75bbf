"""The CLI as a user runs it: exit codes, nothing written on bad input, one bad model never sinks the batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"


def run_cli(*args, cwd=None, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "reportgen", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=600)


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from reportgen.cli import build_parser; build_parser().format_help(); "
            "heavy = [m for m in ('polars', 'transformers', 'weasyprint', 'huggingface_hub') if m in sys.modules]; "
            "print(','.join(heavy))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr


def test_help_documents_exit_codes():
    r = run_cli("--help")
    assert r.returncode == 0
    assert "exit codes" in r.stdout and "1  finished, but some models failed" in r.stdout


def test_no_command_is_usage_error():
    assert run_cli().returncode == 2


@pytest.mark.parametrize("body, needle", [
    ('models = ["Qwen/Qwen3-8B"]\ngpus = ["H1000"]\n', "gpus[0]: unknown GPU SKU 'H1000'"),
    ('models = ["Qwen/Qwen3-8B"]\ngpus = ["H100"]\n[matrix]\ntp = [0]\n', "matrix.tp: 0 is out of range"),
    ('models = []\ngpus = ["H100"]\n', "models: no models given"),
    ('models = ["Qwen/Qwen3-8B"]\ngpus = ["H100"]\n[matrix]\nmax_model_length = [8192]\n',
     "did you mean 'max_model_len'"),
    ('models = ["Qwen/Qwen3-8B"\n', "not valid TOML"),
])
def test_invalid_job_exits_2_and_writes_nothing(tmp_path, body, needle):
    job = tmp_path / "job.toml"
    job.write_text(body)
    out = tmp_path / "out"
    r = run_cli("run", str(job), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.toml"]


def test_gpus_lists_catalog():
    r = run_cli("gpus")
    assert r.returncode == 0 and "nvidia_h100_80gb_sxm" in r.stdout and "79.19" in r.stdout


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """Two good bundled models, one local config, one id nobody has, one malformed local config."""
    tmp = tmp_path_factory.mktemp("mixed")
    local = tmp / "my-model"
    local.mkdir()
    (local / "config.json").write_text((BUNDLED / "Qwen--Qwen3-0.6B.json").read_text())
    broken = tmp / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama", "hidden_size": -5}')
    job = tmp / "job.toml"
    job.write_text(
        'name = "mixed"\n'
        f'models = ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-8B", "{local}", "nobody/does-not-exist", "{broken}"]\n'
        'gpus = ["H100", "L40S"]\nformats = ["parquet", "csv", "html"]\n'
        '[matrix]\ntp = [1, 2]\nmax_model_len = [8192, 32768]\n')
    out = tmp / "run"
    r = run_cli("run", str(job), "--out", str(out), "-q", cwd=tmp)
    return r, out, str(local), str(broken)


def test_one_bad_model_exits_1_and_keeps_the_rest(mixed_run):
    r, out, local, broken = mixed_run
    assert r.returncode == 1, r.stderr
    assert r.stderr == ""                          # -q
    res = pl.read_parquet(out / "results.parquet")
    good = res.filter(pl.col("status") != "error")
    assert set(good["model"]) == {"meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-8B", local}
    # every good model has every cell: 2 GPUs x 2 tp x 2 contexts
    assert good.group_by("model").len()["len"].to_list() == [8, 8, 8]
    errors = pl.read_csv(out / "errors.csv")
    kinds = dict(zip(errors["model"], errors["kind"]))
    # offline we cannot tell "does not exist" from "not downloaded": the message says what to do
    assert kinds["nobody/does-not-exist"] == "network"
    assert "offline" in dict(zip(errors["model"], errors["message"]))["nobody/does-not-exist"]
    assert kinds[broken] == "malformed_config"
    html = (out / "report.html").read_text()
    assert "nobody/does-not-exist" in html
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exit_code"] == 1 and manifest["job"]["name"] == "mixed"
    assert manifest["inputs_hash"] and manifest["catalog_version"].startswith("bundled-")


def test_results_csv_matches_parquet_rows(mixed_run):
    _, out, _, _ = mixed_run
    from reportgen.results import COLUMN_NAMES

    csv = pl.read_csv(out / "results.csv", infer_schema_length=0)
    assert csv.columns == COLUMN_NAMES
    assert csv.height == pl.read_parquet(out / "results.parquet").height


def test_existing_out_dir_is_refused(mixed_run, tmp_path):
    _, out, _, _ = mixed_run
    job = tmp_path / "j.toml"
    job.write_text('models = ["Qwen/Qwen3-8B"]\ngpus = ["H100"]\n')
    r = run_cli("run", str(job), "--out", str(out))
    assert r.returncode == 2 and "already exists" in r.stderr


def test_bundled_job_by_name_from_any_directory(tmp_path):
    r = run_cli("run", "default", "--set", 'formats=["parquet", "csv"]', "--set", 'gpus=["L4"]',
                "--set", "matrix.tp=[1]", "--out", str(tmp_path / "run"), "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert pl.read_parquet(tmp_path / "run" / "results.parquet")["model"].n_unique() >= 15


def test_hostile_model_ids_are_inert_in_every_output(tmp_path):
    """A formula-looking id is neutralised in CSV; a script id is text in HTML; neither steers paths."""
    job = tmp_path / "job.toml"
    job.write_text('models = ["=HYPERLINK(\\"http://evil\\")", "<script>alert(1)</script>", "../../etc/passwd", '
                   '"Qwen/Qwen3-0.6B"]\ngpus = ["L4"]\nformats = ["parquet", "csv", "html"]\n')
    r = run_cli("run", str(job), "--out", str(tmp_path / "run"), "-q", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    for name in ("results.csv", "errors.csv"):
        text = (tmp_path / "run" / name).read_text()
        assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    html = (tmp_path / "run" / "report.html").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.toml", "run"]
    errors = pl.read_csv(tmp_path / "run" / "errors.csv")
    assert set(errors["kind"]) <= {"invalid_id", "not_found", "network"}


def test_internal_error_is_exit_3_not_exit_1(tmp_path, monkeypatch, capsys):
    """A bug must not masquerade as "some models failed"; the temp run dir is cleaned up."""
    from reportgen import cli, run

    def boom(*a, **k):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(run, "render_reports", boom)
    job = tmp_path / "job.toml"
    job.write_text('models = ["Qwen/Qwen3-0.6B"]\ngpus = ["L4"]\n')
    assert cli.main(["run", str(job), "--out", str(tmp_path / "run"), "-q", "--offline"]) == 3
    assert "internal error: RuntimeError: renderer exploded" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.toml"]
