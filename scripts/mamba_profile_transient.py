#!/usr/bin/env python
"""The Mamba-mixer width the profile-run activation peak prices (hybrid.mixer_excess_cols), per family.

vLLM V1's profile run calls each Mamba mixer with ``attn_metadata is None`` and the mixer then skips
its conv and scan kernels (the ``# profile run`` branch of ``MambaMixer2.conv_ssm_forward``,
vllm-project/vllm ``vllm/model_executor/layers/mamba/mamba2/mamba_mixer2.py`` @2e0714af, the same three
lines in every V1 copy of the file the search index holds; ``MambaMixer.forward_cuda`` likewise).  So no
state-sized buffer is profiled -- no per-chunk states, no conv output: the GDN term ``GDN_STATE_COPIES``
has no Mamba counterpart -- and what a Mamba layer allocates per batched token on a rank is its
projection width alone:

* Mamba-2: ``in_proj`` output ``(2I + 2G'N + H)/tp`` + ``ssm_output`` ``I/tp`` + the profile branch's
  contiguous clone of x|B|C ``(I + 2G'N)/tp`` = ``(4I + 4G'N + H)/tp`` elements (``G'`` the groups after
  vLLM's padding to tp when ``n_groups == 1``);
* Mamba-1: ``in_proj`` output ``2I/tp`` + the contiguous x half ``I/tp`` = ``3I/tp``.

The estimator's dense forward term charges ``ALPHA_MLP * mlp_cols / tp`` per token for the widest MLP;
the Mamba layer is another layer, so the forward peak takes the wider of the two and the estimate adds
the mixer's excess over the MLP (factor 1, no fitted constant; checked on row 166, docs/decisions.md
"Mamba-2 mixer width in the profile peak").  This prints that excess at ``T`` batched tokens for the
bundled Nemotron-3-Nano-30B and each Mamba family's transformers defaults.

Usage: HF_HUB_OFFLINE=1 PYTHONPATH=$PWD python scripts/mamba_profile_transient.py [T]   (default 8192)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reportgen.arch import build_spec  # noqa: E402
from reportgen.estimate import hybrid, overheads as oh  # noqa: E402
from reportgen.estimate.tables import model_facts  # noqa: E402

GIB = float(1 << 30)
FAMILIES = ("nemotron_h", "bamba", "granitemoehybrid", "falcon_h1", "jamba", "zamba2", "mamba", "falcon_mamba", "mamba2")
BUNDLED = ROOT / "reportgen" / "sources" / "bundled" / "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.json"


def rows(tokens: int, act_bytes: int = 2) -> list[tuple]:
    """(name, tp, widest mixer elements / token, ALPHA_MLP x mlp_cols / token, forward term GiB,
    of which the mixer's excess over the MLP GiB) per case."""
    import transformers

    cases = [("Nemotron-3-Nano-30B-A3B (bundled)", json.loads(BUNDLED.read_text()))]
    cases += [(f"{mt} defaults", transformers.AutoConfig.for_model(mt).to_dict()) for mt in FAMILIES]
    out = []
    for name, cfg in cases:
        spec = build_spec(cfg)
        facts = model_facts(spec)
        for tp in (1, 2):
            mlp = oh.ALPHA_MLP * facts.mlp_cols / tp
            widest = oh.mamba_profile_cols(facts.ssm_state, tp)
            excess = hybrid.mixer_excess_cols(facts.ssm_state, mlp, tp)
            forward = tokens * act_bytes * (mlp + oh.BETA_HIDDEN * facts.hidden + excess) / GIB
            out.append((name, tp, widest, mlp, forward, tokens * act_bytes * excess / GIB))
    return out


def main() -> int:
    tokens = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
    print(f"| model | tp | mixer elements / token | ALPHA_MLP x mlp_cols / token | F (GiB) | mixer excess in F (GiB), T={tokens} |")
    print("|---|---|---|---|---|---|")
    for name, tp, widest, mlp, forward, excess in rows(tokens):
        print(f"| {name} | {tp} | {widest:,.0f} | {mlp:,.0f} | {forward:.3f} | {excess:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
