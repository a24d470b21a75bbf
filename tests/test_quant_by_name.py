"""A checkpoint whose id says it is quantized but whose config carries no layout (arch/build.quantized_by_name,
estimate/tables.scheme_for): the as-shipped weights are refused with the reason, never priced at the config
dtype -- row 166 (Nemotron-Cascade-2-30B-A3B-NVFP4) was called no_fit that way although it started
(docs/decisions.md, "A quantized checkpoint without its layout").

Run: ``HF_HUB_OFFLINE=1 PYTHONPATH=$PWD python -m pytest -q tests/test_quant_by_name.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_quant_headers import attach_checkpoint_headers, entry, plain_header, tiny_llama, total

from reportgen.arch import build_spec
from reportgen.arch.build import quantized_by_name
from reportgen.matrix import estimate_one

ROOT = Path(__file__).resolve().parents[1]
NANO = ROOT / "tests/data/configs_2026/nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4.json"


@pytest.mark.parametrize("model_id, named", [
    ("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4", "NVFP4"),
    ("chankhavu/Nemotron-Cascade-2-30B-A3B-NVFP4", "NVFP4"),
    ("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", "FP8"),
    ("RedHatAI/Qwen3.5-9B-quantized.w4a16", "w4a16"),
    ("Qwen/Qwen3-32B-AWQ", "AWQ"),
    ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", "GPTQ"),
    ("unsloth/Llama-3.2-1B-Instruct-bnb-4bit", "bnb"),
    ("/models/Foo-MXFP4", "MXFP4"),                    # a local directory's name
    ("meta-llama/Llama-3.1-8B-Instruct", None),
    ("Qwen/Qwen3-30B-A3B", None),                      # "A3B" is no quantization token
    ("openai/gpt-oss-20b", None),
    ("google/gemma-3-12b-it", None),
    ("fp8-lab/Llama-3.1-8B", None),                    # only the repo name counts, not its owner
    # a checkout's config.json names the checkout: "dir/config.json" and "dir" are the same checkpoint
    # (sources/local.py reads the same two files for both), so they get the same hint
    ("/ckpt/Foo-FP8/config.json", "FP8"),
    ("/ckpt/fp8/Foo/config.json", None),               # only the checkpoint directory's name counts
    ("C:\\ckpt\\Foo-NVFP4", "NVFP4"),                  # a Windows path (sources/ids.looks_like_path takes them)
    ("C:\\ckpt\\Foo-NVFP4\\config.json", "NVFP4"),
    ("C:\\fp8-ckpt\\Foo", None),
    ("/ckpt/nvidia--Foo-NVFP4.json", "NVFP4"),          # the bundled <owner>--<name>.json naming
    ("unsloth/Qwen3-8B-GGUF", "GGUF"),                 # llama.cpp quantized files: no layout in config.json
    (None, None),
])
def test_quantized_by_name(model_id, named):
    assert quantized_by_name(model_id) == named


def test_config_wins_over_the_name():
    """A config that carries its quantization decides: the name hint is not even recorded."""
    cfg = tiny_llama(quantization_config={"quant_method": "fbgemm_fp8"})
    spec = build_spec(cfg, "acme/tiny-NVFP4")
    assert spec.quantization_by_name is None
    assert estimate_one(spec, 79.19, max_model_len=512, weights_as="checkpoint")["weight_scheme"] == "fp8-channel"


def test_refused_with_the_reason_and_what_ifs_still_priced():
    spec = build_spec(tiny_llama(), "acme/tiny-FP8")
    assert spec.quantization_by_name == "FP8"
    r = estimate_one(spec, 79.19, max_model_len=512, weights_as="checkpoint")
    assert r["status"] == "unsupported" and r["weights_gib"] is None
    assert "says FP8" in r["reason"] and "no quantization_config" in r["reason"]
    # serving in fp16 casts a plain checkpoint (another scheme branch): refused the same way
    assert estimate_one(spec, 79.19, max_model_len=512, weights_as="checkpoint", dtype="float16")["status"] == "unsupported"
    fp8 = estimate_one(spec, 79.19, max_model_len=512, weights_as="fp8")
    assert fp8["status"] == "fits" and fp8["weight_scheme"].startswith("fp8")
    # the same config under a plain id: priced at its dtype, as before
    plain = estimate_one(build_spec(tiny_llama(), "acme/tiny"), 79.19, max_model_len=512, weights_as="checkpoint")
    assert plain["status"] == "fits" and plain["weight_scheme"] == "bf16"


def test_safetensors_headers_lift_the_refusal():
    """--weights checkpoint reads the stored bytes: the layout is then known tensor by tensor."""
    spec = build_spec(tiny_llama(), "acme/tiny-FP8")
    header = plain_header(spec)
    header["model.layers.0.mlp.down_proj.weight"] = entry("F8_E4M3", (64, 128))
    attach_checkpoint_headers(spec, header)
    r = estimate_one(spec, 79.19, max_model_len=512, weights_as="checkpoint")
    assert r["status"] == "fits" and r["weight_scheme"].endswith("+headers")
    # the stored bytes: the same model under a plain id, one bf16 matrix (64 x 128) stored in fp8 instead
    plain = estimate_one(build_spec(tiny_llama(), "acme/tiny"), 79.19, max_model_len=512, weights_as="checkpoint")
    assert (plain["weights_gib"] - r["weights_gib"]) * 2**30 == 64 * 128 * (2 - 1)
    assert total(header) == total(plain_header(spec)) - 64 * 128


def test_nano_nvfp4_config_alone_is_refused_with_its_side_file_priced():
    """NVIDIA's Nano NVFP4 config.json has no quantization_config; its hf_quant_config.json beside it (the bundled
    naming <key>.hf_quant_config.json) gives the layout: 18.00 GiB, not the 58.8 of bf16 (a GPU given by its memory
    only: the checkpoint's shapes; an SM 12.x GPU's CUTLASS NVFP4 MoE layout is 18.53, tests/test_load_layouts.py)."""
    cfg = json.loads(NANO.read_text())
    alone = build_spec(cfg, "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4")
    assert estimate_one(alone, 31.84, weights_as="checkpoint")["status"] == "unsupported"
    side = json.loads(NANO.with_name(NANO.stem + ".hf_quant_config.json").read_text())
    spec = build_spec(cfg, "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4", {"hf_quant_config": side})
    assert spec.quantization_by_name is None and spec.quantization_config["quant_algo"] == "NVFP4"
    r = estimate_one(spec, 31.84, weights_as="checkpoint", kv_cache_dtype="fp8_e4m3")
    # + the allocator's unsplit blocks at the default release (>= 0.21: max_split_size_mb=20; branch quantalloc,
    # by hand in tests/test_vllm_logs_rows164.py::test_row166_scored_with_the_nano_nvfp4_layout): 34.76 MiB
    assert r["weight_scheme"] == "nvfp4" and r["weights_gib"] == pytest.approx(18.00 + 34.76171875 / 1024, abs=0.005)
    # the file's structure, from the config's own pattern: lm_head, the 6 attention layers' q/k/v/o, the Mamba
    # layer in front of each attention layer (in/out_proj) and every Mamba layer's conv1d
    pat = cfg["hybrid_override_pattern"]
    mamba = [i for i, c in enumerate(pat) if c == "M"]
    attn = [i for i, c in enumerate(pat) if c == "*"]
    want = {"lm_head"}
    want |= {f"backbone.layers.{a}.mixer.{p}" for a in attn for p in ("q_proj", "k_proj", "v_proj", "o_proj")}
    want |= {f"backbone.layers.{a - 1}.mixer.{p}" for a in attn for p in ("in_proj", "out_proj")}
    want |= {f"backbone.layers.{m}.mixer.conv1d" for m in mamba}
    assert all(pat[a - 1] == "M" for a in attn)
    excl = side["quantization"]["exclude_modules"]
    assert len(excl) == len(set(excl)) == 60 and set(excl) == want


def test_cli_estimate_refuses_a_checkout_by_directory_and_by_config_json(tmp_path):
    """``reportgen estimate`` shows the refusal (status unsupported, the reason naming the remedies) whether the
    checkout is given as its directory or as its config.json -- before, the file path priced bf16 (3-4x)."""
    import contextlib
    import io

    from reportgen.cli import main

    ckpt = tmp_path / "Foo-NVFP4"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps(tiny_llama()))
    out = {}
    for arg in (ckpt, ckpt / "config.json"):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["estimate", str(arg), "--json", "--offline", "--gpu", "H100"]) == 0
        out[arg.name] = json.loads(buf.getvalue())
    for r in out.values():
        assert r["status"] == "unsupported" and r["weights_gib"] is None
        # actionable: the file reportgen reads, the header read and the what-if flag, by name
        assert "hf_quant_config.json" in r["reason"] and "--weights checkpoint" in r["reason"]
        assert "--weights-as" in r["reason"]
