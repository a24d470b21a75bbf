"""Job files are validated completely before any work; messages name the field and allowed values."""

from pathlib import Path

import pytest

from reportgen.job import JobError, Matrix, ModelRef, check_size, load_job, parse_job

REPO = Path(__file__).resolve().parents[1]


def test_default_job_parses_with_vllm_defaults():
    job = load_job(REPO / "model_lists" / "default.toml")
    assert job.name == "default"
    assert len(job.models) >= 15
    assert ModelRef("meta-llama/Llama-3.1-8B-Instruct") in job.models
    assert len(job.gpus) >= 8
    m = job.matrix
    assert m.tp == [1, 2, 4, 8] and m.pp == [1, 2]
    assert m.max_model_len == [8192, 32768, 131072]
    assert m.weight_dtype == ["bf16", "fp8"]
    assert m.gpu_memory_utilization == [0.92]      # vLLM's default
    assert m.block_size == 16 and m.kv_cache_dtype == ["auto"]


def test_three_line_job_gets_defaults():
    job = parse_job({"name": "x", "models": ["Qwen/Qwen3-8B"], "gpus": ["H100"]})
    assert job.matrix == Matrix()
    assert job.formats[:2] == ["parquet", "csv"]


def test_models_file_with_comments_and_revisions(tmp_path):
    (tmp_path / "list.txt").write_text("# header\nQwen/Qwen3-8B@abc123  # pinned\n\n org/m \nQwen/Qwen3-8B@abc123\n")
    (tmp_path / "job.toml").write_text('models_file = "list.txt"\ngpus = ["H100"]\n')
    job = load_job(tmp_path / "job.toml")
    assert job.models == [ModelRef("Qwen/Qwen3-8B", "abc123"), ModelRef("org/m")]
    assert job.name == "job"


@pytest.mark.parametrize("raw, field, allowed", [
    ({"models": ["a/b"], "gpus": ["H100"], "matrix": {"tp": [0]}}, "matrix.tp", "1 to 1024"),
    ({"models": ["a/b"], "gpus": ["H100"], "matrix": {"tp": "two"}}, "matrix.tp", "whole numbers"),
    ({"models": ["a/b"], "gpus": ["H100"], "matrix": {"tensor_parallel": [2]}}, "matrix", "allowed: tp, pp"),
    ({"models": ["a/b"], "gpus": ["H100"], "modles": 1}, "job", "allowed: name, models"),
    ({"models": [], "gpus": ["H100"]}, "models", "allowed"),
    ({"models": ["a/b"]}, "gpus", "allowed"),
    ({"models": ["a/b"], "gpus": ["H100"], "matrix": {"weight_dtype": ["fp5"]}}, "matrix.weight_dtype", "bf16"),
    ({"models": ["a/b"], "gpus": ["H100"], "matrix": {"gpu_memory_utilization": 1.5}},
     "matrix.gpu_memory_utilization", "(0, 1]"),
    ({"models": ["a/b"], "gpus": ["H100"], "matrix": {"ep": ["yes"]}}, "matrix.ep", "true/false"),
    ({"models": ["a/b"], "gpus": ["H100"], "matrix": {"vllm_version": "0.5"}}, "matrix.vllm_version", "0.19"),
    ({"models": ["a/b"], "gpus": ["H100"], "formats": ["docx"]}, "formats", "parquet"),
])
def test_invalid_fields_name_field_and_allowed_values(raw, field, allowed):
    with pytest.raises(JobError) as e:
        parse_job(raw)
    assert str(e.value).startswith(field) and allowed in str(e.value)


def test_misspelled_field_suggests_the_right_one():
    with pytest.raises(JobError, match="did you mean 'max_model_len'"):
        parse_job({"models": ["a/b"], "gpus": ["H100"], "matrix": {"max_modl_len": [8192]}})


def test_malformed_toml_is_a_job_error(tmp_path):
    (tmp_path / "bad.toml").write_text("models = [\n")
    with pytest.raises(JobError, match="not valid TOML"):
        load_job(tmp_path / "bad.toml")


def test_absurd_matrix_is_refused_with_its_size():
    job = parse_job({"models": [f"o/m{i}" for i in range(100)], "gpus": ["H100"],
                     "matrix": {"tp": list(range(1, 101)), "max_model_len": list(range(1024, 1024 + 100 * 16, 16)),
                                "concurrency": list(range(1, 101))}})
    with pytest.raises(JobError, match=r"100,000,000 cells"):
        check_size(job, n_gpus=1)
    assert check_size(parse_job({"models": ["a/b"], "gpus": ["H100"]}), 3) == 3
