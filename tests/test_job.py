"""Job files are validated completely before any work; messages name the field and allowed values."""

from pathlib import Path

import pytest

from reportgen.job import JobError, Matrix, ModelRef, check_size, load_job, parse_job, resolved_utilizations
from reportgen.matrix import kv_block_size

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
    # vLLM's defaults for the newest release (0.34): utilization 1.0 with the extensible KV cache, block 64
    assert m.gpu_memory_utilization is None and resolved_utilizations(m) == [1.0]
    assert m.block_size is None and kv_block_size(m) == 64 and m.kv_cache_dtype == ["auto"]


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
    ({"models": ["a/b"], "gpus": ["H100"], "matrix": {"vllm_version": "latest"}}, "matrix.vllm_version", "0.20"),
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


# ------------------------------------------------------------------ hostile job files (fuzzed)

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(["H100", "L4", "Qwen/Qwen3-8B", "fp8", "auto", ""]))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=12)
_matrix = st.dictionaries(st.sampled_from(list(Matrix.__dataclass_fields__) + ["tp_size", "context"]), _values,
                          max_size=6)
_job = st.fixed_dictionaries({}, optional={
    "name": _values, "models": st.one_of(_values, st.lists(st.text(max_size=20), max_size=4)),
    "gpus": st.one_of(_values, st.lists(st.sampled_from(["H100", "l4", "nope"]), max_size=3)),
    "matrix": st.one_of(_matrix, _values), "formats": _values, "weights": _values, "templates": _values,
    "catalogs": _values, "models_file": _values, "extra": _values})


@settings(max_examples=400, deadline=None)
@given(_job)
@example({"models_file": "\x00"})       # os.path.realpath raises ValueError on a NUL: found by this test
def test_fuzzed_job_tables_give_a_job_or_a_named_job_error(raw):
    """Whatever the TOML holds, validation either accepts it or names the field; never a traceback."""
    try:
        job = parse_job(raw)
    except JobError as e:
        assert str(e).split(":")[0].split(".")[0].split("[")[0] in (
            "job", "name", "models", "models_file", "gpus", "matrix", "catalogs", "templates", "formats",
            "weights") or str(e).startswith("models[")
        return
    assert job.models and job.gpus
    assert all(t >= 1 for t in job.matrix.tp + job.matrix.pp + job.matrix.dp)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_as_a_job_file_are_a_job_error(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("fuzz") / "job.toml"
    p.write_bytes(data)
    with pytest.raises(JobError):
        load_job(p)


@pytest.mark.parametrize("text, profile", [("0.19", "0.19"), ("0.19.0", "0.19.0"), ("v0.21.1rc1", "0.21.1"),
                                           ("0.33.0", "0.33.0"), (0.21, "0.21"), ("0.20.1.dev1+g39acbf39c", "0.20.1")])
def test_vllm_versions_as_users_write_them(text, profile):
    from reportgen.job import parse_vllm_version
    from reportgen.estimate.overheads import graphs_in_budget

    assert parse_vllm_version(text) == profile
    assert graphs_in_budget(profile) == (not profile.startswith("0.19"))


def test_vllm_dtype_spellings_are_accepted():
    job = parse_job({"models": ["a/b"], "gpus": ["H100"],
                     "matrix": {"weight_dtype": ["bfloat16", "float16", "BF16"], "kv_cache_dtype": "bfloat16"}})
    assert job.matrix.weight_dtype == ["bf16", "fp16"] and job.matrix.kv_cache_dtype == ["bf16"]


# ------------------------------------------------------------------ per-model KV dtype axis (models tables)

def test_default_job_gives_deepseek_v4_its_fp8_kv_axis():
    """vLLM's DeepseekV4 attention asserts an fp8 cache (deepseek_v4_attention.py @0a291a2e: "DeepseekV4 only
    supports fp8 kv-cache format for now, got auto"): the default job serves it at fp8, the others at auto."""
    job = load_job(REPO / "model_lists" / "default.toml")
    by_id = {m.id: m for m in job.models}
    assert by_id["deepseek-ai/DeepSeek-V4-Flash"].kv_cache_dtype == ("fp8",)
    assert sum(m.id == "deepseek-ai/DeepSeek-V4-Flash" for m in job.models) == 1     # file line merged
    assert all(m.kv_cache_dtype is None for m in job.models if m.id != "deepseek-ai/DeepSeek-V4-Flash")
    assert job.matrix.kv_cache_dtype == ["auto"]


def test_model_table_entries_and_their_kv_axis_count_per_model():
    job = parse_job({"models": ["a/b", {"id": "c/d", "revision": "v1", "kv_cache_dtype": ["FP8", "fp8", "bfloat16"]},
                                {"id": "e/f", "kv_cache_dtype": "fp8"}],
                     "gpus": ["H100"], "matrix": {"tp": [1, 2], "kv_cache_dtype": ["auto", "fp8", "bf16"]}})
    assert job.models == [ModelRef("a/b"), ModelRef("c/d", "v1", ("fp8", "bf16")), ModelRef("e/f", None, ("fp8",))]
    # 2 layouts x 1 weight x (3 | 2 | 1) KV dtypes x 1 length x 1 target x 1 util, on 4 GPUs
    assert check_size(job, 4) == 4 * 2 * (3 + 2 + 1)
    assert str(job.models[1]) == "c/d@v1"


def test_a_table_entry_replaces_a_plain_mention_and_conflicts_are_refused(tmp_path):
    (tmp_path / "list.txt").write_text("x/y\nDeepSeek-ai/DeepSeek-V4-Flash\n")
    (tmp_path / "job.toml").write_text('models_file = "list.txt"\ngpus = ["H100"]\n'
                                       'models = [{id = "deepseek-ai/DeepSeek-V4-Flash", kv_cache_dtype = ["fp8"]}]\n')
    job = load_job(tmp_path / "job.toml")
    assert job.models == [ModelRef("deepseek-ai/DeepSeek-V4-Flash", None, ("fp8",)), ModelRef("x/y")]
    with pytest.raises(JobError, match="listed twice with different kv_cache_dtype"):
        parse_job({"models": [{"id": "a/b", "kv_cache_dtype": "fp8"}, {"id": "a/b", "kv_cache_dtype": "bf16"}],
                   "gpus": ["H100"]})


@pytest.mark.parametrize("entry, match", [
    ({"id": "a/b", "kv_cache_dtype": ["int3"]}, r"models\[0\]\.kv_cache_dtype: 'int3' is not allowed; allowed: auto"),
    ({"id": "a/b", "kv_cache_dtype": []}, r"models\[0\]\.kv_cache_dtype: must not be empty"),
    ({"id": "a/b", "kv_dtype": ["fp8"]}, r"models\[0\]: unknown field 'kv_dtype' \(did you mean 'kv_cache_dtype'\?\)"),
    ({"revision": "main"}, r"models\[0\]\.id: expected a model id"),
    ({"id": "a/b@main"}, r"models\[0\]\.id: expected a model id"),
    ({"id": "a/b", "revision": 3}, r"models\[0\]\.revision: expected a branch"),
])
def test_bad_model_table_entries_are_named_job_errors(entry, match):
    with pytest.raises(JobError, match=match):
        parse_job({"models": [entry], "gpus": ["H100"]})


def test_a_per_model_kv_axis_is_not_a_report_scenario():
    """A KV dtype constant within each model (DeepSeek-V4 at fp8 beside auto models) does not split the report's
    matrices (each model would sit in only some of them); one varying within a model still does."""
    import polars as pl

    from reportgen.outputs.report_data.axes import split_axes

    rows = [{"model": m, "gpu": g, "kv_cache_dtype": kd, "concurrency": 1}
            for m, kds in (("a/b", ["auto"]), ("deepseek-ai/DeepSeek-V4-Flash", ["fp8"])) for kd in kds
            for g in ("H100", "H200")]
    assert split_axes(pl.DataFrame(rows)) == ([], [])
    rows += [{"model": "a/b", "gpu": g, "kv_cache_dtype": "fp8", "concurrency": 1} for g in ("H100", "H200")]
    assert split_axes(pl.DataFrame(rows)) == (["kv_cache_dtype"], [])
