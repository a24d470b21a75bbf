"""Write reportgen/arch/timm_towers.json: the tensors of the timm vision towers reportgen prices.

Why a table: Gemma-3n's vision tower is a timm model (transformers ``Gemma3nVisionConfig`` ->
``AutoModel`` -> ``TimmWrapperModel`` -> ``timm.create_model(architecture, pretrained=False,
num_classes=0, **model_args)``; vLLM's gemma3n_mm.py builds it the same way).  Its layers are defined
in timm, which is a test-only dependency of reportgen (the ``oracle`` extra): reportgen reads this
table at run time instead, and refuses an architecture that is not in it.

Run (needs timm, torch and torchvision; nothing is downloaded -- ``pretrained=False`` on the meta device):

    PYTHONPATH=$PWD python scripts/timm_towers.py [ARCH ...]      # default: every timm mobilenetv5* model

Per architecture the table holds every parameter (name, shape) in ``named_parameters`` order, every
persistent buffer (state-dict entries that are not parameters: vLLM loads them too, so they take GPU
memory without being parameters) and ``num_features`` (the tower's output channels).  The provenance
(timm / torch versions, the create_model arguments) is written with it; tests/test_gemma3n_mm.py
rebuilds the table with the installed timm and compares.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "reportgen" / "arch" / "timm_towers.json"
PATTERN = "mobilenetv5*"
# what TimmWrapperModel passes (model_args None): no classifier head, no weights
CREATE_KWARGS = {"pretrained": False, "num_classes": 0}


def tower_entry(name: str) -> dict:
    """One architecture's tensors, built on the meta device."""
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(name, **CREATE_KWARGS)
    params = [[n, list(p.shape)] for n, p in model.named_parameters()]
    pnames = {n for n, _ in params}
    buffers = [[n, list(b.shape), str(b.dtype).removeprefix("torch.")] for n, b in model.state_dict().items()
               if n not in pnames]
    return {"num_features": int(model.num_features), "params": sum(p.numel() for p in model.parameters()),
            "parameters": params, "buffers": buffers}


def build_table(names: list[str]) -> dict:
    import timm
    import torch

    return {"generated_by": "scripts/timm_towers.py", "timm_version": timm.__version__,
            "torch_version": torch.__version__.split("+")[0], "create_model": CREATE_KWARGS,
            "architectures": {n: tower_entry(n) for n in sorted(names)}}


def dump(table: dict) -> str:
    """JSON with one tensor per line (readable diffs when timm changes an architecture)."""
    def rows(items: list) -> str:
        return "[\n" + ",\n".join("    " + json.dumps(r) for r in items) + "\n   ]"

    head = {k: v for k, v in table.items() if k != "architectures"}
    out = json.dumps(head, indent=1)[:-2] + ',\n "architectures": {\n'
    archs = []
    for name, e in table["architectures"].items():
        archs.append(f'  {json.dumps(name)}: {{"num_features": {e["num_features"]}, "params": {e["params"]},\n'
                     f'   "parameters": {rows(e["parameters"])},\n   "buffers": {rows(e["buffers"])}}}')
    return out + ",\n".join(archs) + "\n }\n}\n"


def default_names() -> list[str]:
    import timm

    return timm.list_models(PATTERN)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"timm architecture names (default: timm's {PATTERN})")
    ap.add_argument("--out", type=Path, default=TABLE)
    args = ap.parse_args(argv)
    table = build_table(args.names or default_names())
    args.out.write_text(dump(table))
    for n, e in table["architectures"].items():
        print(f"{n}: {e['params']:,} parameters, {len(e['parameters'])} tensors, {len(e['buffers'])} buffers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
