"""Issue 14 (2): every user-caused failure is exit 2 with a message, never exit 3 (our bugs only).

Damaged run directories for `render` / `diff`, output locations that cannot be written,
`--out ''`, non-finite `--hub-timeout`, and `estimate` values a job file already rejects.
A read-only file system is simulated with /sys (EPERM even for root); a full disk by making
the CSV writer fail with ENOSPC (mounting a tiny tmpfs would need root tricks).
"""

import errno
import json
import shutil

import polars as pl
import pytest

from reportgen.cli import main

MODEL = "meta-llama/Llama-3.1-8B-Instruct"      # in the bundled snapshot: works offline


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def _job(tmp_path, formats=("parquet", "csv")):
    job = tmp_path / "job.toml"
    job.write_text(f'name = "codes"\nmodels = ["{MODEL}"]\ngpus = ["H100"]\n'
                   f"formats = {json.dumps(list(formats))}\n", encoding="utf-8")
    return job


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("good")
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        assert main(["run", str(_job(base)), "--out", str(base / "run"), "-q"]) == 0
    finally:
        mp.undo()
    return base / "run"


def _copy(good_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(good_run, dst)
    return dst


def _damage(run, how):
    pq = run / "results.parquet"
    if how == "truncated_parquet":
        data = pq.read_bytes()
        pq.write_bytes(data[: len(data) // 2])
    elif how == "garbage_parquet":
        pq.write_bytes(b"\x00\xffnot parquet at all" * 10)
    elif how == "foreign_schema":
        pl.DataFrame({"a": [1, 2], "b": ["x", "y"]}).write_parquet(pq)
    elif how == "bad_manifest_json":
        (run / "manifest.json").write_text("{not json")
    elif how == "manifest_not_object":
        (run / "manifest.json").write_text("[1, 2, 3]")
    elif how == "binary_errors_csv":
        (run / "errors.csv").write_bytes(b"\x00\x01\x02\xff\xfe" * 100)
    elif how == "parquet_is_dir":
        pq.unlink()
        pq.mkdir()
        (pq / "part-00000.parquet").write_bytes(b"junk")
    return run


DAMAGE = ["truncated_parquet", "garbage_parquet", "foreign_schema", "bad_manifest_json",
          "manifest_not_object", "binary_errors_csv", "parquet_is_dir"]


@pytest.mark.parametrize("how", DAMAGE)
def test_render_of_a_damaged_run_dir_is_exit_2(good_run, tmp_path, capsys, how):
    run = _damage(_copy(good_run, tmp_path), how)
    assert main(["render", str(run), "--format", "html", "-q"]) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err and str(run) in err or "run directory" in err
    assert not (run / "report.html").exists()


@pytest.mark.parametrize("how", ["truncated_parquet", "garbage_parquet", "foreign_schema", "parquet_is_dir"])
def test_diff_of_a_damaged_run_dir_is_exit_2(good_run, tmp_path, capsys, how):
    run = _damage(_copy(good_run, tmp_path), how)
    assert main(["diff", str(good_run), str(run)]) == 2
    assert "internal error" not in capsys.readouterr().err


def test_out_empty_string_is_exit_2(tmp_path, capsys):
    assert main(["run", str(_job(tmp_path)), "--out", "", "-q"]) == 2
    assert "--out" in capsys.readouterr().err


def test_out_under_a_file_is_exit_2(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["run", str(_job(tmp_path)), "--out", str(tmp_path / "afile" / "run"), "-q"]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_out_on_a_read_only_location_is_exit_2(tmp_path, capsys):
    assert main(["run", str(_job(tmp_path)), "--out", "/sys/reportgen-hardening-test/run", "-q"]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_full_disk_is_exit_2_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import reportgen.outputs.tables as tables

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tables, "write_csv", full)
    out = tmp_path / "outdir" / "run"
    assert main(["run", str(_job(tmp_path)), "--out", str(out), "-q"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not out.exists()
    assert list((tmp_path / "outdir").iterdir()) == []       # no hidden temporary sibling either


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_hub_timeout_is_exit_2(tmp_path, capsys, value):
    out = tmp_path / "o"
    assert main(["run", str(_job(tmp_path)), "--out", str(out), f"--hub-timeout={value}", "-q"]) == 2
    assert "--hub-timeout" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("flag, value, field", [
    ("--max-model-len", "0", "--max-model-len"),
    ("--max-num-seqs", "0", "--max-num-seqs"),
    ("--max-num-batched-tokens", "-5", "--max-num-batched-tokens"),
    ("--tp", "100000", "--tp"),
    ("--pp", "5000", "--pp"),
    ("--concurrency", "10000000000", "--concurrency"),
    ("--gpu-memory-gib", "nan", "--gpu-memory-gib"),
    ("--gpu-memory-utilization", "nan", "--gpu-memory-utilization"),
])
def test_estimate_values_a_job_rejects_are_exit_2(capsys, flag, value, field):
    assert main(["estimate", MODEL, f"{flag}={value}", "--offline"]) == 2
    err = capsys.readouterr().err
    assert field in err and "internal error" not in err


def test_job_path_too_long_for_the_file_system_is_exit_2(capsys):
    assert main(["run", "a" * 300 + ".toml", "-q"]) == 2
    assert "internal error" not in capsys.readouterr().err


def test_templates_dir_given_on_the_command_line_must_exist(tmp_path, capsys):
    assert main(["run", str(_job(tmp_path)), "--templates", str(tmp_path / "nope"), "-q"]) == 2


@pytest.mark.parametrize("where", ["under_file", "foreign_dir", "empty"])
def test_snapshot_out_problems_are_exit_2(tmp_path, capsys, where):
    (tmp_path / "afile").write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    out = {"under_file": str(tmp_path / "afile" / "snap"), "foreign_dir": str(foreign), "empty": ""}[where]
    assert main(["snapshot", str(_job(tmp_path)), "--out", out, "-q"]) == 2
    assert "internal error" not in capsys.readouterr().err
    assert (foreign / "mine.txt").read_text() == "keep me"
