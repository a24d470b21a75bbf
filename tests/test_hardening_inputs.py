"""Issue 14 (4, 5, 7, 8): hostile inputs read safely, catalogs validated, error kinds right,
job history keys unique.  Each case names the expectation it checks.
"""

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from reportgen.cli import main
from reportgen.job import JobError, ModelRef, load_job

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SECRET = "hf_SuperSecretTokenValue1234567890"


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


# ---------------------------------------------------------------- (4) inputs read safely ---

@pytest.mark.parametrize("command", [["gpus"], ["estimate", MODEL, "--offline"]])
def test_catalog_dev_zero_is_refused_at_once(command, capsys):
    t = time.monotonic()
    assert main([*command, "--catalog", "/dev/zero"]) == 2
    assert time.monotonic() - t < 10
    assert "not a regular file" in capsys.readouterr().err


def test_catalog_over_size_cap_is_refused_before_reading(tmp_path, capsys):
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(64 * 1024 * 1024)                 # sparse: 64 MiB on paper, nothing on disk
    assert main(["gpus", "--catalog", str(big)]) == 2
    assert "larger than" in capsys.readouterr().err


def test_catalog_binary_is_exit_2(tmp_path, capsys):
    f = tmp_path / "bin.csv"
    f.write_bytes(b"sku_id,name,usable_memory_gib\n\x00\xff\xfe\x00")
    assert main(["gpus", "--catalog", str(f)]) == 2


def _write_job(tmp_path, body, name="job.toml", bom=False):
    p = tmp_path / name
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body.encode())
    return p


def test_job_toml_with_bom_is_accepted(tmp_path):
    job = load_job(_write_job(tmp_path, f'models = ["{MODEL}"]\ngpus = ["H100"]\n', bom=True))
    assert job.models == [ModelRef(MODEL)]


def test_models_file_with_bom_is_accepted(tmp_path):
    (tmp_path / "list.txt").write_bytes(b"\xef\xbb\xbf" + MODEL.encode() + b"\n")
    job = load_job(_write_job(tmp_path, 'models_file = "list.txt"\ngpus = ["H100"]\n'))
    assert job.models == [ModelRef(MODEL)]


def test_models_file_binary_is_exit_2_without_echo(tmp_path, capsys):
    (tmp_path / "list.txt").write_bytes(b"\x7fELF\x02\x01\x00\x00" + SECRET.encode() + b"\x00" * 50)
    job = _write_job(tmp_path, 'models_file = "list.txt"\ngpus = ["H100"]\n')
    assert main(["run", str(job), "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "not a text file" in err and SECRET not in err
    assert not (tmp_path / "o").exists()


def test_models_file_proc_environ_never_leaks(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REPORTGEN_TEST_SECRET", SECRET)
    job = _write_job(tmp_path, 'models_file = "/proc/self/environ"\ngpus = ["H100"]\n')
    code = main(["run", str(job), "--out", str(tmp_path / "o"), "-q"])
    assert code == 2
    assert SECRET not in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_models_file_secret_shaped_line_not_echoed(tmp_path, capsys):
    """A text file of KEY=VALUE lines (an .env file given by mistake): refused, value never shown."""
    (tmp_path / "list.txt").write_text(f"{MODEL}\nHF_TOKEN={SECRET}\n")
    job = _write_job(tmp_path, 'models_file = "list.txt"\ngpus = ["H100"]\n')
    out = tmp_path / "o"
    assert main(["run", str(job), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "list.txt:2" in err and SECRET not in err and "HF_TOKEN" not in err


def test_models_file_outside_job_dir_and_model_lists_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "list.txt").write_text(MODEL + "\n")
    jobdir = tmp_path / "jobs"
    jobdir.mkdir()
    with pytest.raises(JobError, match="models_file"):
        load_job(_write_job(jobdir, 'models_file = "../elsewhere/list.txt"\ngpus = ["H100"]\n'))
    with pytest.raises(JobError, match="models_file"):
        load_job(_write_job(jobdir, f'models_file = "{outside / "list.txt"}"\ngpus = ["H100"]\n'))


def test_models_file_in_subdirectory_beside_the_job_works(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "a.txt").write_text(MODEL + "\n")
    job = load_job(_write_job(tmp_path, 'models_file = "lists/a.txt"\ngpus = ["H100"]\n'))
    assert job.models == [ModelRef(MODEL)]


def test_job_toml_over_size_cap_and_fifo(tmp_path, capsys):
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    assert main(["run", str(big), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert "larger than" in capsys.readouterr().err
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    t = time.monotonic()
    assert main(["run", str(fifo), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert time.monotonic() - t < 10


# ---------------------------------------------------------------- (5) catalog rows ---

HEADER = "sku_id,name,usable_memory_gib,gpus_per_node,price_usd_hr,aliases\n"


@pytest.mark.parametrize("row, needle", [
    ("x1,X,80,0,,", "gpus_per_node"),
    ("x1,X,80,-8,,", "gpus_per_node"),
    ("x1,X,80,2.5,,", "gpus_per_node"),
    ("x1,X,80,nan,,", "gpus_per_node"),
    ("x1,X,80,8,-1,", "price_usd_hr"),
    ("x1,X,80,8,nan,", "price_usd_hr"),
    ("x1,X,80,8,inf,", "price_usd_hr"),
    ("x1,X,nan,8,,", "usable_memory_gib"),
])
def test_catalog_row_values_validated(tmp_path, capsys, row, needle):
    f = tmp_path / "c.csv"
    f.write_text(HEADER + row + "\n")
    assert main(["gpus", "--catalog", str(f)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "line 2" in err


def test_duplicate_sku_id_names_both_rows(tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text(HEADER + "x1,X,80,8,,\nx1,X again,40,8,,\n")
    assert main(["gpus", "--catalog", str(f)]) == 2
    err = capsys.readouterr().err
    assert "duplicate sku_id 'x1'" in err and "line 2" in err and "line 3" in err


def test_alias_shadowing_another_sku_names_both_rows(tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text(HEADER + "my_gpu,Mine,80,8,,H100\n")
    assert main(["gpus", "--catalog", str(f)]) == 2
    err = capsys.readouterr().err
    assert "'H100'" in err and "my_gpu" in err and "nvidia_h100_80gb_sxm" in err and "gpus.csv" in err


def test_overriding_a_sku_by_id_is_still_allowed(tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text(HEADER + "nvidia_h100_80gb_sxm,H100 ours,78,8,2.5,H100\n")
    assert main(["gpus", "--catalog", str(f), "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["nvidia_h100_80gb_sxm"]["usable_memory_gib"] == 78


# ---------------------------------------------------------------- (7) error kinds ---

def _resolve(ref):
    from reportgen.sources import resolve_all

    (res,) = resolve_all([ref], offline=True)
    return res


def test_deeply_nested_json_is_malformed_config(tmp_path):
    p = tmp_path / "deep.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    res = _resolve(ModelRef(str(p)))
    assert res.kind == "malformed_config"


def test_over_long_path_component_is_invalid_id():
    res = _resolve(ModelRef("./" + "a" * 300 + "/config.json"))
    assert res.kind == "invalid_id"


def test_config_over_size_cap_is_malformed_config_before_reading(tmp_path):
    p = tmp_path / "huge.json"
    with open(p, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    t = time.monotonic()
    res = _resolve(ModelRef(str(p)))
    assert res.kind == "malformed_config" and "larger than" in res.message
    assert time.monotonic() - t < 5


def test_hub_ids_differing_only_in_case_are_one_model(tmp_path):
    job = load_job(_write_job(tmp_path, 'models = ["Qwen/Qwen3-8B", "qwen/qwen3-8b", "QWEN/QWEN3-8B@main"]\n'
                                        'gpus = ["H100"]\n'))
    assert job.models == [ModelRef("Qwen/Qwen3-8B"), ModelRef("QWEN/QWEN3-8B", "main")]


# ---------------------------------------------------------------- (8) job history keys ---

def test_non_latin_job_names_get_distinct_folders(tmp_path):
    from reportgen.outputs.rundir import default_run_dir

    when = datetime(2026, 11, 26, 2, 3, 4, tzinfo=timezone.utc)
    a, b = default_run_dir(tmp_path, "週次レポート", when), default_run_dir(tmp_path, "月次レポート", when)
    assert a.parent != b.parent
    assert default_run_dir(tmp_path, "weekly-fleet", when).parent.name == "weekly-fleet"   # safe names unchanged


def test_jobs_sharing_a_folder_never_diff_against_each_other(tmp_path, monkeypatch):
    """Even if two names land in one folder, previous_run only picks runs of the same job."""
    from reportgen.run import previous_run

    folder = tmp_path / "shared"
    for stamp, name in (("20261101T000000Z", "job A"), ("20261102T000000Z", "job B")):
        d = folder / stamp
        d.mkdir(parents=True)
        (d / "results.parquet").write_bytes(b"")
        (d / "manifest.json").write_text(json.dumps({"job_name": name}))
    assert previous_run(folder, "job A").name == "20261101T000000Z"
    assert previous_run(folder, "job C") is None
