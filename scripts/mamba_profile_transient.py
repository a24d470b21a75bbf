#!/usr/bin/env python
"""Bound the Mamba-mixer activation the estimator does NOT price (why no Mamba term is added).

vLLM V1's profile run calls each Mamba mixer with ``attn_metadata is None`` and the mixer then skips
its conv and scan kernels (the ``# profile run`` branch of ``MambaMixer2.conv_ssm_forward`` and
``MambaMixer.forward_cuda`` in the vLLM-derived copies of ``layers/mamba/mamba_mixer2.py`` /
``mamba_mixer.py`` found by the search index; vllm-project/vllm's own stored mamba_mixer2.py, bb435dbd,
is the V0 file).  So no state-sized buffer is profiled -- the GDN term ``GDN_STATE_COPIES`` has no
Mamba counterpart -- and what a Mamba layer allocates per batched token on a rank is its projection
width alone:

* Mamba-2: ``in_proj`` output ``(2I + 2G'N + H)/tp`` + ``ssm_output`` ``I/tp`` + the profile branch's
  contiguous clone of x|B|C ``(I + 2G'N)/tp`` = ``(4I + 4G'N + H)/tp`` elements (``G'`` the groups after
  vLLM's padding to tp when ``n_groups == 1``);
* Mamba-1: ``in_proj`` output ``2I/tp`` + the contiguous x half ``I/tp`` = ``3I/tp``.

The estimator's dense forward term already charges ``ALPHA_MLP * mlp_cols / tp`` per token for the
widest MLP; a Mamba layer raises the peak only by how much wider it is.  This prints that excess at
``T`` batched tokens for the bundled Nemotron-3-Nano-30B and each Mamba family's transformers defaults.

Usage: HF_HUB_OFFLINE=1 PYTHONPATH=$PWD python scripts/mamba_profile_transient.py [T]   (default 8192)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reportgen.arch import build_spec  # noqa: E402
from reportgen.estimate import overheads as oh  # noqa: E402
from reportgen.estimate.tables import model_facts  # noqa: E402

GIB = float(1 << 30)
FAMILIES = ("nemotron_h", "bamba", "granitemoehybrid", "falcon_h1", "jamba", "zamba2", "mamba", "falcon_mamba", "mamba2")
BUNDLED = ROOT / "reportgen" / "sources" / "bundled" / "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.json"


def mixer_cols(geom, tp: int) -> float:
    """Elements per batched token a Mamba mixer holds at once in vLLM's profile run, on one rank
    (``overheads.mamba_profile_cols``)."""
    return oh.mamba_profile_cols(geom, tp)


def rows(tokens: int, act_bytes: int = 2) -> list[tuple]:
    import transformers

    cases = [("Nemotron-3-Nano-30B-A3B (bundled)", json.loads(BUNDLED.read_text()))]
    cases += [(f"{mt} defaults", transformers.AutoConfig.for_model(mt).to_dict()) for mt in FAMILIES]
    out = []
    for name, cfg in cases:
        spec = build_spec(cfg)
        facts = model_facts(spec)
        geoms = {l.state for l in spec.layers_kv if l.state is not None}
        for tp in (1, 2):
            mlp = oh.ALPHA_MLP * facts.mlp_cols / tp
            widest = max((mixer_cols(g, tp) for g in geoms), default=0.0)
            priced = mixer_cols(facts.ssm_state, tp)     # attention-free models: the mixer width is priced
            forward = tokens * act_bytes * (mlp + oh.BETA_HIDDEN * facts.hidden + priced) / GIB
            missing = tokens * act_bytes * max(0.0, widest - mlp - priced) / GIB
            out.append((name, tp, widest, mlp, forward, missing))
    return out


def main() -> int:
    tokens = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
    print(f"| model | tp | mixer elements / token | ALPHA_MLP x mlp_cols / token | F (GiB) | not priced (GiB), T={tokens} |")
    print("|---|---|---|---|---|---|")
    for name, tp, widest, mlp, forward, missing in rows(tokens):
        print(f"| {name} | {tp} | {widest:,.0f} | {mlp:,.0f} | {forward:.3f} | {missing:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
