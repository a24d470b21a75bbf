"""`reportgen estimate PATH --json` (the command scripts and our checks call) on every reference config:
params_total and kv_bytes_per_token are the meta-device counts, as exact integers."""

import contextlib
import io
import json
from pathlib import Path

import pytest

from reportgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
TRUTH = json.loads((ROOT / "tests" / "data" / "param_counts.json").read_text())["models"]
UNSUPPORTED: set[str] = set()        # model_types of reference configs we refuse (none today)


def estimate_json(*args) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["estimate", *args, "--json", "--offline"])
    return rc, json.loads(out.getvalue())


@pytest.mark.parametrize("model_id", sorted(TRUTH))
def test_estimate_json_matches_meta_device_counts(model_id):
    path = BUNDLED / (model_id.replace("/", "--") + ".json")
    rc, d = estimate_json(str(path))
    truth = TRUTH[model_id]
    assert d["model"] == str(path)
    if truth["model_type"] in UNSUPPORTED:
        assert rc == 1 and d["status"] == "unsupported" and d["reason"]
        assert "params_total" not in d                 # never a number from the wrong formula
        return
    assert rc == 0, d
    assert d["params_total"] == truth["total_params"]
    assert isinstance(d["kv_bytes_per_token"], int)
    kv = truth["kv_cache_bytes_per_token_bf16_kv_layers"]
    side = path.with_name(path.name.replace(".json", ".hf_quant_config.json"))
    if side.is_file() and json.loads(side.read_text())["quantization"].get("kv_cache_quant_algo") == "FP8":
        kv //= 2        # ModelOpt checkpoint with an fp8 KV cache: `auto` KV is fp8 in vLLM
    assert d["kv_bytes_per_token"] == kv
    assert d["params_text"] == truth["total_params"] - truth["vision_params"]
    for key in ("weights_gib", "activation_gib", "non_torch_gib", "cuda_graph_gib", "kv_cache_gib",
                "kv_cache_tokens", "max_concurrency", "max_model_len_fit", "worst_rank", "gpus"):
        assert key in d, key


def test_estimate_layout_flags_reach_the_budget():
    path = str(BUNDLED / "meta-llama--Meta-Llama-3.1-8B.json")
    _, tp1 = estimate_json(path, "--gpu", "H100")
    _, tp2 = estimate_json(path, "--gpu", "H100", "--tp", "2", "--kv-cache-dtype", "fp8")
    assert tp2["gpus"] == 2 and tp2["tp"] == 2
    assert tp2["weights_gib"] == pytest.approx(tp1["weights_gib"] / 2, rel=0.01)
    assert tp2["kv_bytes_per_token"] == 65536          # fp8 KV: 1 byte, all 32 layers, TP 1 view
    _, mem = estimate_json(path, "--gpu-memory-gib", "40", "--max-model-len", "4096")
    assert mem["gpu_memory_gib"] == 40 and mem["max_model_len"] == 4096
