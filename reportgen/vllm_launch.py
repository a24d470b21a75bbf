"""How a pasted line launches vLLM: the shell's leading environment, ``sudo``, ``vllm serve`` /
``python -m vllm.entrypoints...``, and container lines (``docker run`` / ``podman run`` ... IMAGE ...).

Why a module of its own: ``vllm_args`` reads vLLM's engine flags with vLLM's meanings; what comes before them --
which program starts vLLM, in which container image (and so which release), with which environment -- is a second
grammar (the container CLIs' options, image names and tags, entrypoints per release) that only has to hand the
engine flags, the environment and the image facts to ``vllm_args.parse_vllm_command``.  ``VllmArgsError`` lives
here because both modules raise it (``vllm_args`` re-exports it).

Container lines (``_container``): ``[sudo] docker|podman|nerdctl|nvidia-docker run [OPTIONS] IMAGE [ARG...]``
(also ``docker container run`` and the runtime's own options before ``run``).  The runtime's options up to the image
are skipped with pflag's rules (``--opt value``, ``--opt=value``, ``-p 8000:8000``, ``-p8000:8000``, ``-it``,
``-itp 8000:8000``, ``--`` before the image); which of them take a value is an explicit list (``_RUN_VALUE_OPTS``,
``_RUN_BOOL_OPTS``), and an option in neither is refused, since a wrong guess would read the image as its value.
``-e NAME=value`` / ``--env NAME=value`` / ``--env=NAME=value`` are the environment the rules below read; ``-e NAME``
passes the host's value, known only when the line assigns ``NAME=value`` before ``docker`` (a host assignment
without ``-e`` stays outside the container, and podman's ``--env-host`` passes them all); ``--env-file`` is noted
as unread.  vLLM's images (``vllm/vllm-openai``, ``-rocm``, ``-xpu``, with any registry or mirror path before
them) run vLLM's server, so the arguments after the image are the engine flags: ENTRYPOINT ["vllm", "serve"] from
0.11.1 (vllm 0.11.1 sdist docker/Dockerfile:500) -- a positional model or ``--model`` -- and ``python3 -m
vllm.entrypoints.openai.api_server`` up to 0.11.0 (0.11.0 docker/Dockerfile:542), which never reads a positional
model (only ``vllm serve`` copies ``model_tag`` to ``--model``: 0.11.0 vllm/entrypoints/cli/serve.py:47-48), so such
a line is refused; the ROCm image has that entrypoint from 0.14.0 (0.14.0 docker/Dockerfile.rocm:389).  A tag
naming a release (``v0.27.1``, ``0.19.1``, ``v0.26.0-cu129``) is ``VllmCommand.image_version``, which
``reportgen estimate`` prices unless ``--vllm-version`` is given; ``latest``, ``nightly``, a model build's tag or a
digest name none.  With ``--entrypoint`` or another image the command after the image must be ``vllm serve ...``,
``python -m vllm.entrypoints...`` or a shell's ``-c`` script starting exactly one of them (its ``export NAME=value``
read).  The CPU image (``vllm/vllm-openai-cpu``) is refused: no GPU.  ``--gpus`` and ``CUDA_VISIBLE_DEVICES`` pick
GPUs, not their memory: noted.  Compose files are not read.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reportgen.vllm_args import VllmCommand


class VllmArgsError(ValueError):
    """A command line or value reportgen cannot turn into an estimate; the message names the flag."""


# ------------------------------------------------------ container lines ---
# `docker run [OPTIONS] IMAGE [ARG...]` (also podman, nerdctl, nvidia-docker, `docker container run`, `sudo ...`).
# The CLIs parse options with pflag and stop at the first positional (the image), so which options take a value
# decides where the image is: both sets are explicit, and an option in neither is refused, never guessed.
CONTAINER_RUNTIMES = ("docker", "podman", "nerdctl", "nvidia-docker")
_RUN_VALUE_OPTS = frozenset((
    # docker run --help (Docker 27)
    "add-host annotation attach blkio-weight blkio-weight-device cap-add cap-drop cgroup-parent cgroupns cidfile "
    "cpu-count cpu-percent cpu-period cpu-quota cpu-rt-period cpu-rt-runtime cpu-shares cpus cpuset-cpus "
    "cpuset-mems detach-keys device device-cgroup-rule device-read-bps device-read-iops device-write-bps "
    "device-write-iops dns dns-option dns-search domainname entrypoint env env-file expose gpus group-add "
    "health-cmd health-interval health-retries health-start-interval health-start-period health-timeout hostname "
    "io-maxbandwidth io-maxiops ip ip6 ipc isolation kernel-memory label label-file link link-local-ip log-driver "
    "log-opt mac-address memory memory-reservation memory-swap memory-swappiness mount name network "
    "network-alias oom-score-adj pid pids-limit platform publish pull restart runtime security-opt shm-size "
    "stop-signal stop-timeout storage-opt sysctl tmpfs ulimit user userns uts volume volume-driver volumes-from "
    "workdir "
    # podman run's own
    "arch authfile cert-dir cgroup-conf cgroups chrootdirs conmon-pidfile creds decryption-key env-merge gidmap "
    "group-entry health-log-destination health-max-log-count health-max-log-size health-on-failure "
    "health-startup-cmd health-startup-interval health-startup-retries health-startup-success "
    "health-startup-timeout hooks-dir hostuser image-volume init-path os passwd-entry personality pod pod-id-file "
    "preserve-fd preserve-fds rdt-class requires retry retry-delay sdnotify seccomp-policy secret shm-size-systemd "
    "subgidname subuidname systemd timeout tz uidmap umask unsetenv variant").split())
_RUN_BOOL_OPTS = frozenset((
    "detach interactive tty rm privileged init publish-all read-only sig-proxy oom-kill-disable no-healthcheck "
    "quiet disable-content-trust use-api-socket help "
    "env-host http-proxy no-hosts passwd read-only-tmpfs replace rmi rootfs tls-verify").split())
_RUN_ALIASES = {"net": "network", "net-alias": "network-alias", "dns-opt": "dns-option"}
_RUN_SHORT_VALUE = {"a": "attach", "c": "cpu-shares", "e": "env", "h": "hostname", "l": "label", "m": "memory",
                    "p": "publish", "u": "user", "v": "volume", "w": "workdir"}
_RUN_SHORT_BOOL = {"d": "detach", "i": "interactive", "t": "tty", "P": "publish-all", "q": "quiet"}
# options of the runtime itself, between `docker` and `run`
_GLOBAL_VALUE_OPTS = frozenset("context host config log-level tlscacert tlscert tlskey url connection identity root "
                               "runroot cgroup-manager storage-driver storage-opt runtime tmpdir namespace "
                               "address".split())
_GLOBAL_BOOL_OPTS = frozenset("debug tls tlsverify remote syslog".split())
_GLOBAL_SHORT = {"c": True, "H": True, "l": True, "n": True, "D": False, "r": False}   # letter -> takes a value
# sudo's options before the command (value-taking: -u USER, -g GROUP, -C N, -h HOST, -p PROMPT)
_SUDO_VALUE = frozenset("-u -g -C -h -p -U -r -t -T -D".split())
_SUDO_BOOL = frozenset("-E -H -n -S -k -b -P -A".split())
# vLLM's images -> what their ENTRYPOINT runs (the tag's release decides, below); the CPU image prices no GPU
VLLM_IMAGES = {"vllm-openai": "CUDA", "vllm-openai-rocm": "ROCm", "vllm-openai-xpu": "XPU"}
# ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"] up to 0.11.0 (vllm 0.11.0 sdist
# docker/Dockerfile:542, Dockerfile.xpu:72), ENTRYPOINT ["vllm", "serve"] from 0.11.1 (0.11.1 docker/Dockerfile:500,
# Dockerfile.xpu:78); Dockerfile.rocm has CMD ["/bin/bash"] and no entrypoint until 0.14.0 adds the vllm-openai
# stage (0.14.0 docker/Dockerfile.rocm:389 ENTRYPOINT ["vllm", "serve"])
_API_SERVER_UNTIL = (0, 11, 0)
_ROCM_SERVE_FROM = (0, 14, 0)
_SHELLS = ("sh", "bash", "dash", "zsh", "ash")


@dataclass
class _Launch:
    """What a container line says besides the engine flags: the image, its release, notes, and whether vLLM's
    api_server entrypoint (which never reads a positional model) runs the flags."""

    image: str | None = None
    image_version: str | None = None
    notes: list = field(default_factory=list)
    api_server_entrypoint: bool = False


def _priced_env(name: str) -> bool:
    """Whether reportgen prices the variable (``vllm_args.ENV_MODELLED`` / ``ALLOC_CONF_ENV``; read at call time:
    ``vllm_args`` imports this module)."""
    from reportgen.vllm_args import ALLOC_CONF_ENV, ENV_MODELLED
    return name in ENV_MODELLED or name in ALLOC_CONF_ENV


def _name(tok: str) -> str:
    return tok.rsplit("/", 1)[-1]


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    """``[registry[:port]/]path[:tag][@digest]`` -> (path without the tag, tag, digest)."""
    name, _, digest = image.partition("@")
    head, _, last = name.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
    else:
        tag = None
    return (f"{head}/{last}" if head else last), tag, digest or None


def image_release(tag: str | None) -> str | None:
    """The vLLM release an image tag names ("v0.27.1", "0.19.1", "v0.26.0-cu129", "v0.31.0-ubuntu2404",
    "v0.11.1rc3"), without the leading v and the -suffix; None for "latest", "nightly", "nightly-<sha>",
    "latest-cu129", a model build ("gemma4-0505-cu129") or no tag."""
    m = re.fullmatch(r"v?(\d+\.\d+(?:\.\d+){0,2}(?:(?:rc|\.dev|\.post)\d+)?)(?:[-_+][A-Za-z0-9._+-]*)?", tag or "")
    return m.group(1) if m else None


def _release_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def _strip_sudo(tokens: list[str]) -> list[str]:
    tokens = tokens[1:]
    while tokens and tokens[0].startswith("-"):
        opt = tokens.pop(0)
        if opt == "--":
            break
        if opt in _SUDO_VALUE:
            if not tokens:
                raise VllmArgsError(f"sudo {opt} expects a value")
            tokens.pop(0)
        elif opt not in _SUDO_BOOL and not opt.startswith("--preserve-env") and not opt.startswith("--user="):
            raise VllmArgsError(f"unknown sudo option {opt}: remove it (reportgen reads the command sudo runs)")
    return tokens


def _run_options(tokens: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """pflag's reading of ``run``'s options: [(long name, value)] up to the image, and the rest (image first)."""
    opts: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--":
            return opts, tokens[i + 1:]
        if not tok.startswith("-") or tok == "-":
            break
        i += 1
        if tok.startswith("--"):
            name, eq, inline = tok[2:].partition("=")
            name = _RUN_ALIASES.get(name, name)
            if name in _RUN_BOOL_OPTS:
                opts.append((name, inline if eq else "true"))
            elif name in _RUN_VALUE_OPTS:
                if not eq and i >= len(tokens):
                    raise VllmArgsError(f"container option --{name} expects a value")
                opts.append((name, inline if eq else tokens[i]))
                i += 0 if eq else 1
            else:
                raise VllmArgsError(f"unknown container option --{name}: reportgen does not know whether it takes "
                                    "a value (a wrong guess would read the image name wrongly); remove it")
            continue
        j = 1
        while j < len(tok):                  # -it, -dit, -p8000:8000, -e=NAME=value, -itp 8000:8000
            c = tok[j]
            if c in _RUN_SHORT_BOOL:
                opts.append((_RUN_SHORT_BOOL[c], "true"))
                j += 1
                continue
            if c in _RUN_SHORT_VALUE:
                rest = tok[j + 1:]
                if rest:
                    value = rest[1:] if rest.startswith("=") else rest
                elif i < len(tokens):
                    value, i = tokens[i], i + 1
                else:
                    raise VllmArgsError(f"container option -{c} expects a value")
                opts.append((_RUN_SHORT_VALUE[c], value))
                break
            raise VllmArgsError(f"unknown container option -{c} (in {tok}): reportgen does not know whether it "
                                "takes a value (a wrong guess would read the image name wrongly); remove it")
    return opts, tokens[i:]


def _container(tokens: list[str], host_env: dict) -> tuple[list[str], dict, _Launch]:
    """``docker run [OPTIONS] IMAGE [ARG...]`` -> (engine tokens, the container's environment, what else it says)."""
    runtime = _name(tokens[0])
    rest = tokens[1:]
    while rest and rest[0].startswith("-"):                       # docker --context X run / podman --remote run
        opt = rest.pop(0)
        name, eq, _ = opt.lstrip("-").partition("=")
        if opt.startswith("--") and name in _GLOBAL_BOOL_OPTS or (not opt.startswith("--") and
                                                                 _GLOBAL_SHORT.get(name) is False):
            continue
        if opt.startswith("--") and name in _GLOBAL_VALUE_OPTS or (not opt.startswith("--") and
                                                                  _GLOBAL_SHORT.get(name[:1]) is True):
            if not eq and (opt.startswith("--") or len(name) == 1):
                if not rest:
                    raise VllmArgsError(f"{runtime} {opt} expects a value")
                rest.pop(0)
            continue
        raise VllmArgsError(f"unknown {runtime} option {opt} before the subcommand: remove it")
    if rest[:2] == ["container", "run"]:
        rest = rest[1:]
    if not rest or rest[0] != "run":
        sub = rest[0] if rest else ""
        raise VllmArgsError(f"`{runtime} {sub}`".replace(" `", "`") + ": only a `run` line is read "
                            f"({runtime} run [OPTIONS] IMAGE [vLLM flags]); compose files are not")
    opts, rest = _run_options(rest[1:])
    if not rest:
        raise VllmArgsError(f"no image in the `{runtime} run` line")
    image, args = rest[0], rest[1:]
    launch = _Launch(image=image)
    env: dict = {}
    entrypoint = None
    shown: list[str] = []
    for name, value in opts:
        if name == "env":
            key, eq, val = value.partition("=")
            if eq:
                env[key] = val
            elif key in host_env:           # -e NAME: the value of NAME where the runtime runs
                env[key] = host_env[key]
            elif _priced_env(key):
                raise VllmArgsError(f"-e {key}: the container takes the host's {key}, which the line does not "
                                    f"show; write -e {key}=VALUE")
            else:
                launch.notes.append(f"environment {key}: the host's value (-e {key}), not in the line; "
                                    + ("not modelled by reportgen" if key.startswith("VLLM_")
                                       else "does not change per-GPU memory"))
        elif name == "env-host" and value.lower() != "false":    # podman: every host variable goes in
            env = {**host_env, **env}
        elif name == "env-file":
            launch.notes.append(f"--env-file {value}: the file is not read; a VLLM_* or PYTORCH_CUDA_ALLOC_CONF "
                                "setting in it is not reflected (paste it as -e NAME=VALUE)")
        elif name == "entrypoint":
            entrypoint = value
        elif name == "gpus":
            launch.notes.append(f"--gpus {value}: which GPUs the container sees; per-GPU memory does not change "
                                "(the layout is -tp / -pp / -dp)")
        else:
            shown.append(f"--{name}")
    if shown:
        launch.notes.append(f"{runtime} run {', '.join(dict.fromkeys(shown))}: container settings; they do not "
                            "change per-GPU memory")
    for key in host_env:
        if key not in env:
            launch.notes.append(f"{key} is set for `{runtime}`, not passed into the container (no -e {key}): "
                                "not read")
    path, tag, _ = _split_image(image)
    kind = VLLM_IMAGES.get(_name(path).lower())
    if _name(path).lower() == "vllm-openai-cpu":
        raise VllmArgsError(f"{image}: vLLM's CPU image (docker/Dockerfile.cpu) runs no GPU; there is no GPU "
                            "memory to estimate")
    release = image_release(tag) if kind else None
    launch.image_version = release
    if kind and path.lower().rsplit("/", 1)[0].rsplit("/", 1)[-1] != "vllm":
        launch.notes.append(f"image {image}: read as vLLM's vllm/{_name(path)} (a mirror or copy)")
    if kind and kind != "CUDA":
        launch.notes.append(f"image {image}: vLLM's {kind} image; the estimate prices the GPU given by --gpu")
    if entrypoint is not None:                               # the image's entrypoint replaced
        command = (_json_list(entrypoint) if entrypoint.startswith("[") else [entrypoint] if entrypoint else []) + args
    elif kind and not (kind == "ROCm" and release and _release_tuple(release) < _ROCM_SERVE_FROM):
        if _vllm_launcher(args) is not None:
            raise VllmArgsError(f"{image}'s entrypoint is already vLLM's server: the container would run it with "
                                f"`{' '.join(args[:2])} ...` as arguments; drop `{' '.join(args[:2])}` after the "
                                "image (or set --entrypoint)")
        if release and _release_tuple(release) <= _API_SERVER_UNTIL:
            launch.api_server_entrypoint = True
        return args, env, launch
    else:
        command = args
        if not command or command[0].startswith("-"):
            what = (f"vLLM's ROCm image before 0.14.0 has no server entrypoint (CMD /bin/bash)" if kind else
                    f"{image} is not one of vLLM's images ({', '.join('vllm/' + k for k in VLLM_IMAGES)})")
            raise VllmArgsError(f"{what} and no command follows {image}: its entrypoint is unknown; paste the "
                                "command the container runs (vllm serve MODEL ...)")
    engine, inner_env, notes = _container_command(command, image)
    launch.notes += notes
    return engine, {**env, **inner_env}, launch


def _json_list(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise VllmArgsError(f"--entrypoint {text}: not a JSON list") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise VllmArgsError(f"--entrypoint {text}: not a JSON list of strings")
    return value


def _container_command(command: list[str], image: str) -> tuple[list[str], dict, list[str]]:
    """The command a container runs (its entrypoint replaced, or an image without one): ``vllm serve ...``,
    ``python -m vllm.entrypoints...``, or a shell running one of them (``bash -lc 'vllm serve ...'``)."""
    command, env = _leading_env(command)
    if command and _name(command[0]) in _SHELLS:
        return _shell_script(command, env)
    engine = _vllm_launcher(command)
    if engine is None:
        raise VllmArgsError(f"`{' '.join(command[:3])}` in the container of {image}: not a vLLM server "
                            "(expected vllm serve ..., python -m vllm.entrypoints.openai.api_server ... or a shell "
                            "-c running one)")
    return engine, env, []


def _shell_script(command: list[str], env: dict) -> tuple[list[str], dict, list[str]]:
    """``sh -c 'SCRIPT'`` (also -lc, -ec, ...): the one vLLM server the script starts; ``export NAME=value`` and
    ``NAME=value`` before it set its environment; other commands are listed in a note."""
    shell, i, has_c = _name(command[0]), 1, False
    while i < len(command) and command[i].startswith("-"):
        has_c = has_c or (not command[i].startswith("--") and "c" in command[i])
        i += 1
    if not has_c or i >= len(command):
        raise VllmArgsError(f"`{' '.join(command[:3])}`: a shell without -c SCRIPT; paste the vllm serve line")
    lex = shlex.shlex(command[i], posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    words = list(lex)
    segments, cur = [], []
    for w in words:
        if w and set(w) <= set(";&|"):
            segments.append(cur)
            cur = []
        else:
            cur.append(w)
    segments.append(cur)
    found, notes = [], []
    for seg in filter(None, segments):
        if seg[0] == "exec":
            seg = seg[1:]
        if seg and seg[0] == "export":
            for assign in seg[1:]:
                k, eq, v = assign.partition("=")
                if eq:
                    env[k] = v
            continue
        seg_env = {}
        while seg and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", seg[0]):
            k, _, v = seg.pop(0).partition("=")
            seg_env[k] = v
        engine = _vllm_launcher(seg)
        if engine is None:
            if not seg_env or seg:
                notes.append(f"{shell} -c: `{' '.join(seg)[:60]}` is not vLLM's server; not read")
            else:
                env.update(seg_env)       # a bare assignment: the shell variable (read if exported)
            continue
        found.append((engine, seg_env))
    if len(found) != 1:
        raise VllmArgsError(f"the {shell} -c script starts {'no' if not found else len(found)} vLLM servers; "
                            "paste the one vllm serve line")
    engine, seg_env = found[0]
    return engine, {**env, **seg_env}, notes


def _vllm_launcher(tokens: list[str]) -> list[str] | None:
    """The engine flags after ``vllm serve`` / ``python -m vllm.entrypoints...``; None when the tokens start with
    neither.  ``python -m`` of another module is refused."""
    if len(tokens) >= 2 and _name(tokens[0]) == "vllm" and tokens[1] == "serve":
        return tokens[2:]
    if len(tokens) >= 3 and re.fullmatch(r"python[0-9.]*", _name(tokens[0])) and tokens[1] == "-m":
        if not tokens[2].startswith("vllm.entrypoints"):
            raise VllmArgsError(f"`{' '.join(tokens[:3])}` is not a vLLM server entry point "
                                "(expected vllm serve or python -m vllm.entrypoints.openai.api_server)")
        return tokens[3:]
    return None


def finish_launch(cmd: "VllmCommand", launch: _Launch | None, tokens: list[str]) -> None:
    """Container facts onto the parsed command: image, release, notes; vLLM's api_server drops a positional model."""
    if launch is None:
        return
    cmd.image, cmd.image_version = launch.image, launch.image_version
    cmd.notes[:0] = launch.notes
    if launch.api_server_entrypoint and not any(t == "--model" or t.startswith("--model=") for t in tokens):
        raise VllmArgsError(
            f"{launch.image}: this image's entrypoint is python3 -m vllm.entrypoints.openai.api_server (vLLM's "
            "docker/Dockerfile until 0.11.0), which never reads a positional model (only `vllm serve` sets --model "
            f"from it: vllm/entrypoints/cli/serve.py), so the container serves vLLM's default model, not "
            f"{cmd.model}; write --model {cmd.model}")


def _leading_env(tokens: list[str]) -> tuple[list[str], dict]:
    """``[env] NAME=value ... rest`` -> (rest, {NAME: value}): the shell's leading assignments."""
    env: dict = {}
    tokens = list(tokens)
    if tokens and tokens[0] == "env":
        tokens = tokens[1:]
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
        k, _, v = tokens.pop(0).partition("=")
        env[k] = v
    return tokens, env


def strip_launcher(tokens: list[str]) -> tuple[list[str], dict, "_Launch | None"]:
    """Drop ``[env] NAME=value ... vllm serve`` / ``python -m vllm.entrypoints...``; keep the env.  A container
    line (``[sudo] docker|podman|nerdctl|nvidia-docker run ... IMAGE ...``) goes to ``_container``: its -e / --env
    variables are the environment, and the returned launch says what else it set."""
    tokens, env = _leading_env(tokens)
    if tokens and _name(tokens[0]) == "sudo":
        tokens = _strip_sudo(tokens)
    if tokens and _name(tokens[0]) in CONTAINER_RUNTIMES:
        return _container(tokens, env)
    engine = _vllm_launcher(tokens)
    if engine is not None:
        return engine, env, None
    if tokens and tokens[0] == "serve":
        return tokens[1:], env, None
    return tokens, env, None
