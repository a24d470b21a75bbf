"""What tests of ``reportgen estimate --from-vllm-args`` share: one pasted line estimated in-process, as JSON."""

from __future__ import annotations

import contextlib
import io
import json

from reportgen.cli import main


def estimate_line(line: str, version: str, gpu: str = "H100") -> dict:
    """``reportgen estimate --gpu GPU --vllm-version VERSION --json --offline --from-vllm-args LINE`` (must succeed)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["estimate", "--gpu", gpu, "--vllm-version", version, "--json", "--offline",
                   "--from-vllm-args", line])
    assert rc == 0
    return json.loads(out.getvalue())
