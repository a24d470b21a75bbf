"""The vLLM release sdists some tests read (unpacked under /work/vllm_src/vllm-X.Y.Z by the sessions that cite them;
absent on a fresh clone, where those tests skip): one place for the path, the skip mark and the release list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path("/work/vllm_src")
needs_sdists = pytest.mark.skipif(not (SRC / "vllm-0.34.0").is_dir(), reason="vLLM release sdists not unpacked")


def ver(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def sdists() -> list[tuple[str, Path]]:
    """(version, folder) of every unpacked release, oldest first."""
    out = [(p.name.removeprefix("vllm-"), p) for p in SRC.glob("vllm-*") if re.fullmatch(r"vllm-[\d.]+", p.name)]
    return sorted(out, key=lambda vp: ver(vp[0]))
