"""`reportgen estimate --from-vllm-args`: every shared vLLM log row, turned into the command line that
started it, gives exactly the estimate of the structured options for that row.

The conversion row -> command line is written here (not in the product), with vLLM's own spellings
varied from row to row (`-tp 4`, `--tensor-parallel-size=4`, `--tensor_parallel_size 4`, `32K`,
`--no-enable-prefix-caching`, the `python -m vllm.entrypoints.openai.api_server --model` form), so the
test proves that the parser maps every field the logs record.  Accuracy against the logged figures is
scripts/validate_vllm_logs.py's job.
"""

import contextlib
import io
import json
import re
from pathlib import Path

import polars as pl
import pytest

from reportgen.cli import main
from reportgen.vllm_args import VllmArgsError, parse_vllm_command

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
CONFIGS_2026 = ROOT / "tests" / "data" / "configs_2026"
CSVS = [ROOT / "tests" / "data" / "vllm_logs.csv", ROOT / "tests" / "data" / "vllm_logs_2026.csv"]
VLLM_DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
KV = ("auto", "bfloat16", "float16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_ds_mla")


def _rows() -> list[dict]:
    out = []
    for csv in CSVS:
        for r in pl.read_csv(csv, infer_schema_length=0).iter_rows(named=True):
            out.append({**r, "_csv": csv.name})
    return out


def _num(v):
    """The leading number of a log cell ("0.9 (default)" -> 0.9, ">=2 (...)" -> None)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\b.*", v or "", flags=re.S)
    return None if m is None else float(m.group(1))


def _model(r) -> str | None:
    m = (r.get("model") or "").split(" ")[0].strip("'\"(")
    return m if re.fullmatch(r"[\w.-]+/[\w.-]+", m) else None


def row_fields(r) -> dict:
    """The engine settings a log row records, as EngineArgs names -> values (our canonical form)."""
    f = {}
    for col, key in (("tensor_parallel_size", "tensor_parallel_size"), ("pipeline_parallel_size",
                     "pipeline_parallel_size"), ("data_parallel_size", "data_parallel_size"),
                     ("max_model_len", "max_model_len"), ("max_num_seqs", "max_num_seqs"),
                     ("max_num_batched_tokens", "max_num_batched_tokens")):
        n = _num(r.get(col))
        if n is not None and n == int(n) and (r.get(col) or "").strip().split(" ")[0].isdigit():
            f[key] = int(n)
    util = _num(r.get("gpu_memory_utilization"))
    if util is not None and 0 < util <= 1:
        f["gpu_memory_utilization"] = util
    block = (r.get("block_size") or "").strip()
    if block.isdigit():
        f["block_size"] = int(block)
    if (r.get("enable_expert_parallel") or "").lower().startswith("true"):
        f["enable_expert_parallel"] = True
    if (r.get("enforce_eager") or "").lower() == "true":
        f["enforce_eager"] = True
    dtype = (r.get("dtype") or "").strip().lower()
    if dtype in VLLM_DTYPES:
        f["dtype"] = {"half": "fp16", "float16": "fp16", "bfloat16": "bf16", "float": "fp32",
                      "float32": "fp32", "auto": "auto"}[dtype]
    if (r.get("quantization") or "").strip().lower() == "fp8":      # vLLM's online fp8 (the flag itself)
        f["quantization"] = "fp8"
    kv = (r.get("kv_cache_dtype") or "").strip().lower()
    if kv in KV:
        f["kv_cache_dtype"] = kv
    return f


def row_command(r, i: int) -> str:
    """The `vllm serve` line of a row, spelled a different (valid) way for different rows."""
    f = row_fields(r)
    api = i % 4 == 3
    parts = (["python", "-m", "vllm.entrypoints.openai.api_server", "--model", _model(r)] if api
             else ["vllm", "serve", _model(r)])
    tp_spelling = ["-tp {}", "--tensor-parallel-size={}", "--tensor_parallel_size {}"][i % 3]
    for key, value in f.items():
        if key == "tensor_parallel_size":
            parts.append(tp_spelling.format(value))
        elif key == "pipeline_parallel_size":
            parts.append(f"-pp {value}" if i % 2 else f"--pipeline-parallel-size {value}")
        elif key == "data_parallel_size":
            parts.append(f"--data-parallel-size {value}")
        elif key == "max_model_len":
            parts.append(f"--max-model-len {value // 1024}K" if value % 1024 == 0 and i % 2
                         else f"--max-model-len={value}")
        elif key in ("enable_expert_parallel", "enforce_eager"):
            parts.append("--" + key.replace("_", "-"))
        elif key == "dtype":
            parts.append(f"--dtype {r['dtype'].strip().lower()}")
        else:
            parts.append(f"--{key.replace('_', '-')} {value}")
    # flags that do not change memory, as real lines carry them
    parts += ["--host 0.0.0.0", "--port 8000", "--served-model-name", "served", "--trust-remote-code"]
    if i % 5 == 0:
        parts.append("--disable-log-requests")
    return " \\\n  ".join(parts)


ROWS = [(i, r) for i, r in enumerate(_rows()) if _model(r)]


@pytest.mark.parametrize("i,row", ROWS, ids=[f"{r['_csv']}:{r['row_id']}" for _, r in ROWS])
def test_every_log_row_parses_to_its_fields(i, row):
    cmd = parse_vllm_command(row_command(row, i))
    assert cmd.model == _model(row)
    assert cmd.engine == row_fields(row)
    assert any("--host" in n for n in cmd.notes) and any("--trust-remote-code" in n for n in cmd.notes)


def _config_path(model: str) -> Path | None:
    for base in (BUNDLED, CONFIGS_2026):
        p = base / (model.replace("/", "--") + ".json")
        if p.is_file():
            return p
    return None


def estimate_json(*args) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["estimate", *args, "--json", "--offline"])
    return rc, json.loads(out.getvalue())


def structured_args(f: dict) -> list[str]:
    names = {"tensor_parallel_size": "--tp", "pipeline_parallel_size": "--pp", "data_parallel_size": "--dp"}
    out = []
    for key, value in f.items():
        if key in ("enable_expert_parallel", "enforce_eager"):
            out.append({"enable_expert_parallel": "--ep", "enforce_eager": "--enforce-eager"}[key])
        else:
            out += [names.get(key, "--" + key.replace("_", "-")), str(value)]
    return out


def _runnable() -> list:
    """Rows whose config is readable offline, one per distinct (model, settings, GPU memory): the
    estimate is a function of those alone, so repeats of a setting prove nothing more."""
    seen, out = set(), []
    for i, r in ROWS:
        key = (_model(r), tuple(sorted(row_fields(r).items())), r.get("total_gpu_memory_gib"))
        if _config_path(_model(r)) and key not in seen:
            seen.add(key)
            out.append((i, r))
    return out


RUNNABLE = _runnable()


def test_enough_rows_are_runnable():
    assert len(ROWS) >= 90 and len(RUNNABLE) >= 20, (len(ROWS), len(RUNNABLE))


@pytest.mark.parametrize("i,row", RUNNABLE, ids=[f"{r['_csv']}:{r['row_id']}" for _, r in RUNNABLE])
def test_from_vllm_args_equals_the_structured_options(i, row):
    model = _model(row)
    path = str(_config_path(model))
    gpu = (["--gpu-memory-gib", row["total_gpu_memory_gib"]] if _num(row.get("total_gpu_memory_gib"))
           else ["--gpu", "H100"])
    line = row_command(row, i).replace(model, path, 1)
    rc_a, a = estimate_json(*gpu, "--from-vllm-args", line)
    f = row_fields(row)
    structured = structured_args(f)
    if "max_model_len" not in f and a.get("max_model_len"):
        # vLLM's default is the model's own maximum (the structured option defaults to min(that, 32768))
        structured += ["--max-model-len", str(a["max_model_len"])]
    rc_b, b = estimate_json(path, *gpu, *structured)
    assert rc_a == rc_b
    notes = a.pop("vllm_args_notes")
    assert len(notes) >= 4                 # --host, --port, --served-model-name, --trust-remote-code
    b_notes = b.pop("notes", None)
    a_notes = a.pop("notes", None)          # the model's own notes (a multimodal row's largest image)
    assert a_notes is None or a_notes == b_notes
    assert a == b


LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.mark.parametrize("line", [
    f"vllm serve {LLAMA} -tp 2 --max-model-len 16384",
    f"{LLAMA} --tensor-parallel-size 2 --max-model-len=16384",                       # no `vllm serve`
    f"--model {LLAMA} -tp=2 --max_model_len 16K",                                     # 16K = 16,384
    f"python3 -m vllm.entrypoints.openai.api_server --model {LLAMA} -tp 2 --max-model-len 16384",
    f"env HF_HOME=/x /usr/bin/vllm serve {LLAMA} \\\n  -tp 2 \\\n  --max-model-len 16384  # deploy",
])
def test_every_command_form_gives_one_estimate(line):
    _, ref = estimate_json("--gpu", "H100", "--tp", "2", "--max-model-len", "16384", LLAMA)
    rc, got = estimate_json("--gpu", "H100", "--from-vllm-args", line)
    assert rc == 0 and got["tp"] == 2 and got["max_model_len"] == 16384
    got.pop("vllm_args_notes")
    assert got == ref


def test_real_flags_without_memory_effect_are_noted(capsys):
    rc, d = estimate_json("--gpu", "H100", "--from-vllm-args",
                          f"vllm serve {LLAMA} --enable-auto-tool-choice --tool-call-parser llama3_json "
                          "--swap-space 16 --cpu-offload-gb 0 --no-enable-prefix-caching --seed 1")
    assert rc == 0
    notes = "\n".join(d["vllm_args_notes"])
    for flag in ("--enable-auto-tool-choice", "--tool-call-parser", "--swap-space", "--cpu-offload-gb", "--seed"):
        assert flag in notes
    assert d["engine"]["enable_prefix_caching"] is False
    assert d["max_model_len"] == 131072            # vLLM's default: the model's own maximum


@pytest.mark.parametrize("line,needle", [
    (f"vllm serve {LLAMA} --speculative-config '{{\"method\": \"eagle\"}}'", "method eagle needs the draft model id"),
    (f"vllm serve {LLAMA} --enable-lora --max-loras 4", "LoRA"),
    (f"vllm serve {LLAMA} --cpu-offload-gb 8", "offload"),
    (f"vllm serve {LLAMA} -O3", "optimisation level"),
    (f"vllm serve {LLAMA} --compilation-config '{{\"cudagraph_mode\": \"FULL\"}}'", "CUDA-graph"),
    (f"vllm serve {LLAMA} -dcp 2", "decode context parallel"),
    (f"vllm serve {LLAMA} --max-num-sqs 8", "unknown vLLM flag --max-num-sqs"),
    (f"vllm serve {LLAMA} --dtype int8", "--weights-as int8"),
    ("vllm serve --max-model-len 4096", "no model"),
    (f"vllm serve {LLAMA} --max-model-len", "expects a value"),
])
def test_memory_flags_we_do_not_model_are_refused(line, needle, capsys):
    rc = main(["estimate", "--gpu", "H100", "--offline", "--from-vllm-args", line])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err, err


def test_an_engine_flag_given_twice_is_refused(capsys):
    rc = main(["estimate", "--gpu", "H100", "--offline", "--tp", "4", "--from-vllm-args", f"vllm serve {LLAMA} -tp 2"])
    assert rc == 2 and "--tp given both" in capsys.readouterr().err
    rc = main(["estimate", "Qwen/Qwen3-32B", "--offline", "--from-vllm-args", f"vllm serve {LLAMA}"])
    assert rc == 2 and "differ" in capsys.readouterr().err


def test_the_line_environment_is_read():
    """VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 lifts the model-maximum check, as it does for vLLM."""
    _, refused = estimate_json("--gpu", "H100", "--from-vllm-args", f"vllm serve {LLAMA} --max-model-len 262144")
    assert refused["status"] == "invalid_layout" and "VLLM_ALLOW_LONG_MAX_MODEL_LEN" in refused["reason"]
    _, allowed = estimate_json("--gpu", "H100", "--from-vllm-args",
                               f"VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve {LLAMA} --max-model-len 262144")
    assert allowed["status"] != "invalid_layout" and allowed["max_model_len"] == 262144


def test_moe_backend_from_the_line_equals_the_option():
    """Row 170's command names --moe-backend cutlass (vLLM KernelConfig.moe_backend, vllm/config/kernel.py
    @00634b8a): the pasted line and the structured option give one estimate; a value vLLM does not know is
    refused with the allowed list."""
    cmd = parse_vllm_command("vllm serve m --moe-backend FlashInfer-CUTLASS")
    assert cmd.engine["moe_backend"] == "flashinfer_cutlass"
    with pytest.raises(VllmArgsError, match="--moe-backend.*not a vLLM MoE backend.*flashinfer_cutedsl"):
        parse_vllm_command("vllm serve m --moe-backend cutlass_fp4")
    cfg = str(ROOT / "tests" / "data" / "configs_2026" / "nvidia--Gemma-4-26B-A4B-NVFP4.json")
    flags = ["--max-model-len", "256000", "--max-num-seqs", "2", "--max-num-batched-tokens", "16384",
             "--kv-cache-dtype", "fp8_e4m3", "--gpu-memory-utilization", "0.85"]
    _, ref = estimate_json("--gpu", "RTX 5090", cfg, *flags, "--moe-backend", "cutlass")
    _, got = estimate_json("--gpu", "RTX 5090", "--from-vllm-args",
                           f"vllm serve {cfg} {' '.join(flags)} --moe-backend cutlass")
    assert got["activation_gib"] == ref["activation_gib"] and got["engine"]["moe_backend"] == "cutlass"
    # auto: vLLM's pick per GPU (branch nvfp4auto) -- on SM 12.0 VLLM_CUTLASS for Gemma 4's gelu_tanh experts (the
    # same figures); a GPU given by its memory only keeps the fitted terms
    _, auto = estimate_json("--gpu", "RTX 5090", cfg, *flags)
    assert auto["activation_gib"] == ref["activation_gib"]
    _, unknown = estimate_json("--gpu-memory-gib", "31.84", cfg, *flags)
    assert got["activation_gib"] - unknown["activation_gib"] > 1.9
