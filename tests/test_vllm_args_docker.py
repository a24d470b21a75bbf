"""`--from-vllm-args` with a container line: `[sudo] docker|podman|nerdctl|nvidia-docker run [OPTIONS] IMAGE [ARGS]`.

The lines are real: the vLLM docs' `docker run` example, the recipes shipped in the vllm 0.34.0 sdist
(recipes/models/inclusionAI/Ring-2.6-1T.yaml:75-88, recipes/models/baidu/Unlimited-OCR.yaml), and the commands
quoted by the shared log rows (tests/data/vllm_logs.csv rows 150, 184, 189, 192; vllm_logs_2026.csv N03F, N07F),
with each row's elided `...` replaced by the options the row names (`--gpus all`, `--ipc=host`) -- row 192's
`-lc 'vllm serve ...'` runs under a shell, so its elision held `--entrypoint /bin/bash`.

What the image runs: vLLM's docker/Dockerfile has ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"]
up to 0.11.0 (vllm 0.11.0 sdist docker/Dockerfile:542) and ENTRYPOINT ["vllm", "serve"] from 0.11.1 (0.11.1
docker/Dockerfile:500); the api_server's __main__ parses a positional model_tag but only `vllm serve` copies it to
--model (vllm 0.11.0 sdist vllm/entrypoints/cli/serve.py:47-48; api_server.py:1946-1953 never reads it).  The default
utilization the tag's release brings: 0.9 in 0.19.1 (vllm 0.19.1 sdist vllm/config/cache.py:41), 0.92 from 0.20.0
(0.20.0 vllm/config/cache.py:66).
"""

import contextlib
import io
import json

import pytest

from reportgen.cli import main
from reportgen.vllm_args import VllmArgsError, parse_vllm_command
from reportgen.vllm_launch import image_release

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def estimate_json(*args) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["estimate", *args, "--json", "--offline"])
    return rc, json.loads(out.getvalue())


# (line, model, engine, env, image_version)
REAL_LINES = [
    # vLLM docs, "Using Docker"
    ('docker run --runtime nvidia --gpus all -v ~/.cache/huggingface:/root/.cache/huggingface '
     '--env "HF_TOKEN=$HF_TOKEN" -p 8000:8000 --ipc=host vllm/vllm-openai:latest --model mistralai/Mistral-7B-v0.1',
     "mistralai/Mistral-7B-v0.1", {}, {"HF_TOKEN": "$HF_TOKEN"}, None),
    # the brief's failing line
    (f"docker run --gpus all -p 8000:8000 vllm/vllm-openai:v0.27.1 --model {LLAMA} --max-model-len 8192",
     LLAMA, {"max_model_len": 8192}, {}, "0.27.1"),
    # vllm 0.34.0 sdist recipes/models/inclusionAI/Ring-2.6-1T.yaml:75-88 (ROCm image, positional model)
    ("docker run --rm -it \\\n --cap-add=SYS_PTRACE \\\n --ipc=host \\\n --privileged=true \\\n --shm-size=128GB \\\n"
     " --network=host \\\n --device=/dev/kfd \\\n --device=/dev/dri \\\n --group-add video \\\n"
     " -e VLLM_ROCM_USE_AITER=1 \\\n vllm/vllm-openai-rocm:v0.28.0 \\\n inclusionAI/Ring-2.6-1T \\\n"
     " --tensor-parallel-size 8 \\\n --trust-remote-code",
     "inclusionAI/Ring-2.6-1T", {"tensor_parallel_size": 8}, {"VLLM_ROCM_USE_AITER": "1"}, "0.28.0"),
    # vllm 0.34.0 sdist recipes/models/baidu/Unlimited-OCR.yaml: a model build's tag, no release
    ("docker run --rm --gpus all --network host --ipc host vllm/vllm-openai:unlimited-ocr baidu/Unlimited-OCR "
     "--trust-remote-code --logits_processors vllm.model_executor.models.unlimited_ocr:NGramPerReqLogitsProcessor "
     "--no-enable-prefix-caching --mm-processor-cache-gb 0",
     "baidu/Unlimited-OCR", {"enable_prefix_caching": False}, {}, None),
    # vllm_logs.csv row 150
    ("docker run --gpus all --ipc=host -e VLLM_USE_DEEP_GEMM=0 vllm/vllm-openai:latest "
     "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8 --served-model-name qwen3-235b --tensor-parallel-size 4 "
     "--gpu-memory-utilization 0.90 --max-model-len 32768 --max-num-seqs 32 --port 8000",
     "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
     {"tensor_parallel_size": 4, "gpu_memory_utilization": 0.9, "max_model_len": 32768, "max_num_seqs": 32},
     {"VLLM_USE_DEEP_GEMM": "0"}, None),
    # vllm_logs.csv row 184
    ("docker run --gpus all --ipc=host vllm/vllm-openai:latest --model /models --served-model-name "
     "typhoon2.5-qwen3-4b --max-model-len 8192 --gpu-memory-utilization 0.70",
     "/models", {"max_model_len": 8192, "gpu_memory_utilization": 0.7}, {}, None),
    # vllm_logs.csv row 189
    (f"docker run --gpus '\"device=2\"' --ipc=host -p 8000:8000 vllm/vllm-openai:v0.31.0-ubuntu2404 --model {LLAMA}",
     LLAMA, {}, {}, "0.31.0"),
    # vllm_logs.csv row 192 (podman, CDI devices, a shell running vllm serve)
    ("podman run --device nvidia.com/gpu=0 --device nvidia.com/gpu=1 --entrypoint /bin/bash "
     "docker.io/vllm/vllm-openai:latest -lc 'vllm serve /mnt/shockwave/soundwave/models/llama3-70b-awq --port 8002 "
     "--tensor-parallel-size 2'",
     "/mnt/shockwave/soundwave/models/llama3-70b-awq", {"tensor_parallel_size": 2}, {}, None),
    # vllm_logs_2026.csv N03F
    ("docker run --gpus all vllm/vllm-openai:v0.23.0 --model /models/Qwen2.5-VL-7B-Instruct --served-model-name "
     "qwen2.5-vl --gpu-memory-utilization 0.22 --trust-remote-code",
     "/models/Qwen2.5-VL-7B-Instruct", {"gpu_memory_utilization": 0.22}, {}, "0.23.0"),
    # vllm_logs_2026.csv N07F
    ("docker run --gpus '\"device=1\"' vllm/vllm-openai:latest Qwen/Qwen3-32B --tensor-parallel-size 1 "
     "--gpu-memory-utilization 0.426 --max-model-len 32768",
     "Qwen/Qwen3-32B", {"tensor_parallel_size": 1, "gpu_memory_utilization": 0.426, "max_model_len": 32768}, {},
     None),
]


@pytest.mark.parametrize("line,model,engine,env,version", REAL_LINES)
def test_real_container_lines(line, model, engine, env, version):
    cmd = parse_vllm_command(line)
    assert cmd.model == model
    assert cmd.engine == engine
    assert cmd.env == env
    assert cmd.image_version == version
    notes = "\n".join(cmd.notes)
    if "--gpus" in line:
        assert "--gpus" in notes and "per-GPU memory does not change" in notes


def test_env_reaches_the_existing_environment_rules():
    """-e / --env / --env= / -eNAME=value feed the same rules as a leading NAME=value (VLLM_ALLOW_LONG_MAX_MODEL_LEN,
    PYTORCH_CUDA_ALLOC_CONF's expandable_segments; other VLLM_* noted as not modelled)."""
    cmd = parse_vllm_command("docker run -e VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 --env=PYTORCH_CUDA_ALLOC_CONF="
                             "expandable_segments:True -eVLLM_USE_DEEP_GEMM=0 --env CUDA_VISIBLE_DEVICES=0,1 "
                             "vllm/vllm-openai:v0.27.1 m -tp 2")
    assert cmd.engine == {"allow_long_max_model_len": True, "expandable_segments": True, "tensor_parallel_size": 2}
    notes = "\n".join(cmd.notes)
    assert "VLLM_USE_DEEP_GEMM=0: not modelled" in notes
    assert "CUDA_VISIBLE_DEVICES: does not change per-GPU memory" in notes


def test_host_environment_and_pass_through():
    """A NAME=value before `docker` is the docker client's environment: in the container only through -e NAME
    (or podman --env-host)."""
    host_only = parse_vllm_command("VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 docker run vllm/vllm-openai m")
    assert "allow_long_max_model_len" not in host_only.engine and host_only.env == {}
    assert any("not passed into the container" in n for n in host_only.notes)
    passed = parse_vllm_command("VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 docker run -e VLLM_ALLOW_LONG_MAX_MODEL_LEN "
                                "vllm/vllm-openai m")
    assert passed.engine["allow_long_max_model_len"] is True
    podman = parse_vllm_command("VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 podman run --env-host vllm/vllm-openai m")
    assert podman.engine["allow_long_max_model_len"] is True
    with pytest.raises(VllmArgsError, match="host's VLLM_ALLOW_LONG_MAX_MODEL_LEN.*write -e VLLM_ALLOW_LONG"):
        parse_vllm_command("docker run -e VLLM_ALLOW_LONG_MAX_MODEL_LEN vllm/vllm-openai m")
    hf = parse_vllm_command("docker run -e HF_TOKEN vllm/vllm-openai m")
    assert hf.env == {} and any("HF_TOKEN" in n for n in hf.notes)


@pytest.mark.parametrize("prefix", [
    "docker run", "sudo docker run", "sudo -E docker run", "nvidia-docker run", "podman run", "nerdctl run",
    "/usr/bin/docker run", "docker container run", "docker --context gpu-box run", "docker -H ssh://host run",
])
def test_runtimes(prefix):
    cmd = parse_vllm_command(f"{prefix} --rm -d --name vllm vllm/vllm-openai:v0.27.1 {LLAMA} -tp 2")
    assert (cmd.model, cmd.engine, cmd.image_version) == (LLAMA, {"tensor_parallel_size": 2}, "0.27.1")


@pytest.mark.parametrize("options", [
    "-it --rm", "-dit", "--rm=true --privileged", "--name=vllm", "--name vllm", "-p 8000:8000", "-p8000:8000",
    "-itp 8000:8000", "-v /data:/data -w /data", "--shm-size 16g --ulimit memlock=-1 --ulimit stack=67108864",
    "--ipc host --network=host --net host", "--runtime=nvidia --gpus=all", "--gpus 2", "-u 1000:1000",
    "--mount type=bind,src=/m,dst=/m", "--platform linux/amd64 --pull always --restart unless-stopped",
    "--label a=b --cpus 8 --memory 64g -m 64g", "--security-opt seccomp=unconfined --cap-add SYS_ADMIN",
    "--device /dev/nvidia0 --env-file .env", "--entrypoint vllm", "--",
])
def test_container_options_up_to_the_image(options):
    """Value-taking options take the next token; flags do not: the image is found either way (a wrong guess would
    take `vllm/vllm-openai:v0.19.1` as an option's value, or `m` as the image)."""
    args = "serve m -tp 2" if "--entrypoint vllm" in options else "m -tp 2"
    cmd = parse_vllm_command(f"docker run {options} vllm/vllm-openai:v0.19.1 {args}")
    assert (cmd.model, cmd.engine, cmd.image, cmd.image_version) == (
        "m", {"tensor_parallel_size": 2}, "vllm/vllm-openai:v0.19.1", "0.19.1")


@pytest.mark.parametrize("tag,release", [
    ("v0.27.1", "0.27.1"), ("0.19.1", "0.19.1"), ("v0.20.0", "0.20.0"), ("v0.26.0-cu129", "0.26.0"),
    ("v0.31.0-ubuntu2404", "0.31.0"), ("v0.10.1.1", "0.10.1.1"), ("v0.11.1rc3", "0.11.1rc3"),
    ("latest", None), ("nightly", None), ("nightly-3966924d566340e971a6da313e790d05492aa505", None),
    ("latest-cu129", None), ("gemma4-0505-cu129", None), (None, None),
])
def test_image_tags(tag, release):
    assert image_release(tag) == release


@pytest.mark.parametrize("image,release", [
    ("vllm/vllm-openai:v0.27.1", "0.27.1"), ("docker.io/vllm/vllm-openai:v0.27.1", "0.27.1"),
    ("localhost:5000/vllm/vllm-openai:v0.27.1", "0.27.1"), ("registry.example.com/mirror/vllm/vllm-openai:0.19.1",
                                                           "0.19.1"),
    ("vllm/vllm-openai:v0.27.1@sha256:8a69ffad", "0.27.1"), ("vllm/vllm-openai@sha256:8a69ffad", None),
    ("vllm/vllm-openai", None), ("vllm/vllm-openai-xpu:v0.27.1", "0.27.1"),
])
def test_images(image, release):
    cmd = parse_vllm_command(f"docker run {image} m")
    assert cmd.model == "m" and cmd.image == image and cmd.image_version == release


def test_shell_and_replaced_entrypoints():
    """--entrypoint or an image without vLLM's entrypoint: the command after the image is read with the usual
    launcher rules; a shell -c script's one vLLM server, its exports included."""
    for line in (f"docker run --entrypoint python3 vllm/vllm-openai:v0.27.1 -m vllm.entrypoints.openai.api_server "
                 f"--model {LLAMA} -tp 2",
                 f"docker run --gpus all nvcr.io/nvidia/pytorch:24.05 vllm serve {LLAMA} -tp 2",
                 f"docker run --entrypoint '[\"vllm\", \"serve\"]' vllm/vllm-openai {LLAMA} -tp 2",
                 f"docker run --entrypoint bash vllm/vllm-openai:v0.27.1 -c 'pip install x && "
                 f"export VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 && exec vllm serve {LLAMA} -tp 2'"):
        cmd = parse_vllm_command(line)
        assert cmd.model == LLAMA and cmd.engine.get("tensor_parallel_size") == 2, line
    assert cmd.engine["allow_long_max_model_len"] is True
    assert any("pip install x" in n for n in cmd.notes)


@pytest.mark.parametrize("line,needle", [
    ("docker run --gpus all --foo x vllm/vllm-openai m", "unknown container option --foo"),
    ("docker run -z vllm/vllm-openai m", "unknown container option -z"),
    ("docker run --name", "--name expects a value"),
    ("docker run --rm", "no image"),
    ("docker compose up", "only a `run` line is read"),
    ("docker run ubuntu:22.04 --model m", "not one of vLLM's images"),
    ("docker run vllm/vllm-openai-cpu:latest-x86_64 m", "CPU image"),
    ("docker run vllm/vllm-openai:v0.27.1 vllm serve m", "drop `vllm serve`"),
    ("docker run nvcr.io/nvidia/pytorch:24.05 python -m http.server", "not a vLLM server entry point"),
    ("docker run --entrypoint bash vllm/vllm-openai -c 'vllm serve a && vllm serve b'", "starts 2 vLLM servers"),
    # a 0.10 / 0.11.0 image runs the api_server, which drops a positional model
    ("docker run vllm/vllm-openai:v0.10.1.1 m -tp 2", "never reads a positional model"),
])
def test_refused(line, needle):
    with pytest.raises(VllmArgsError) as e:
        parse_vllm_command(line)
    assert needle in str(e.value), str(e.value)


def test_old_image_with_model_flag():
    cmd = parse_vllm_command("docker run vllm/vllm-openai:v0.10.1.1 --model m -tp 2")
    assert cmd.model == "m" and cmd.image_version == "0.10.1.1"


def test_the_tag_picks_the_release():
    """v0.19.1: vLLM 0.19.1, profile 0.17-0.19, 0.9 utilization -- the same estimate as the `vllm serve` line with
    --vllm-version 0.19.1; the brief's failing line now runs."""
    line = f"docker run --gpus all -p 8000:8000 vllm/vllm-openai:v0.19.1 --model {LLAMA} --max-model-len 8192"
    rc, got = estimate_json("--gpu", "H100", "--from-vllm-args", line)
    assert rc == 0
    assert got["vllm_version"] == "0.19.1" and got["vllm_profile"] == "0.17-0.19"
    assert got["gpu_memory_utilization"] == 0.9
    assert any("0.19.1: the release the image tag names" in n for n in got["vllm_args_notes"])
    _, ref = estimate_json("--gpu", "H100", "--vllm-version", "0.19.1", "--from-vllm-args",
                           f"vllm serve {LLAMA} --max-model-len 8192")
    got.pop("vllm_args_notes"), ref.pop("vllm_args_notes")
    assert got == ref
    rc, brief = estimate_json("--gpu", "H100", "--from-vllm-args",
                              f"docker run --gpus all -p 8000:8000 vllm/vllm-openai:v0.27.1 --model {LLAMA} "
                              "--max-model-len 8192")
    assert rc == 0 and brief["vllm_version"] == "0.27.1" and brief["vllm_profile"] == "0.26-0.28"
    assert brief["gpu_memory_utilization"] == 0.92


def test_an_explicit_version_wins_with_a_note():
    line = f"docker run vllm/vllm-openai:v0.19.1 --model {LLAMA} --max-model-len 8192"
    _, got = estimate_json("--gpu", "H100", "--vllm-version", "0.20.0", "--from-vllm-args", line)
    assert got["vllm_version"] == "0.20.0" and got["vllm_profile"] == "0.20.0"
    assert got["gpu_memory_utilization"] == 0.92
    assert any("--vllm-version 0.20.0 given" in n and "0.19.1" in n for n in got["vllm_args_notes"])
    _, same = estimate_json("--gpu", "H100", "--vllm-version", "v0.19.1", "--from-vllm-args", line)
    assert same["vllm_version"] == "0.19.1" and not any("given" in n for n in same["vllm_args_notes"])


def test_latest_uses_the_newest_profile_with_a_note():
    from reportgen.job import DEFAULT_VLLM_VERSION

    _, got = estimate_json("--gpu", "H100", "--from-vllm-args",
                           f"docker run vllm/vllm-openai:latest --model {LLAMA} --max-model-len 8192")
    _, ref = estimate_json("--gpu", "H100", "--from-vllm-args", f"vllm serve {LLAMA} --max-model-len 8192")
    assert got["vllm_version"] == ref["vllm_version"] == DEFAULT_VLLM_VERSION
    assert any("names no vLLM release" in n and "newest profile" in n for n in got["vllm_args_notes"])


def test_a_pre_010_tag_is_refused(capsys):
    rc = main(["estimate", "--gpu", "H100", "--offline", "--from-vllm-args",
               f"docker run vllm/vllm-openai:v0.9.2 --model {LLAMA}"])
    assert rc == 2 and "image tag of vllm/vllm-openai:v0.9.2" in capsys.readouterr().err


def test_row_189_line_prices_its_tag_release():
    """vllm_logs.csv row 189: `docker run --gpus '"device=2"' --ipc=host -p 8000:8000
    vllm/vllm-openai:v0.31.0-ubuntu2404 --model meta-llama/Llama-3.1-8B-Instruct` on an A100 80GB printing 79.25 GiB
    logged 'GPU KV cache size: 460,496 tokens' at 0.31.0's defaults (util 0.92, max_model_len 131,072).  The line
    alone (no --vllm-version) prices 0.31.0 and lands within 1 %; the newest release's extensible cache (util 1.0)
    would be ~9 % above it, so the tag is what makes the figure."""
    line = ("docker run --gpus '\"device=2\"' --ipc=host -p 8000:8000 vllm/vllm-openai:v0.31.0-ubuntu2404 "
            f"--model {LLAMA}")
    rc, got = estimate_json("--gpu-memory-gib", "79.25", "--from-vllm-args", line)
    assert rc == 0 and got["vllm_version"] == "0.31.0" and got["vllm_profile"] == "0.29-0.33"
    assert got["gpu_memory_utilization"] == 0.92 and got["max_model_len"] == 131072
    assert abs(got["kv_cache_tokens"] / 460496 - 1) < 0.01, got["kv_cache_tokens"]
