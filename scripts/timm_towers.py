"""Write reportgen/arch/timm_towers.json: the tensors of the timm vision towers reportgen prices.

Why a table: Gemma-3n's vision tower is a timm model (transformers ``Gemma3nVisionConfig`` ->
``AutoModel`` -> ``TimmWrapperModel`` -> ``timm.create_model(architecture, pretrained=False,
num_classes=0, **model_args)``; vLLM's gemma3n_mm.py builds it the same way).  Its layers are defined
in timm, which is a test-only dependency of reportgen (the ``oracle`` extra): reportgen reads this
table at run time instead, and refuses an architecture that is not in it.

Run (needs timm, torch and torchvision; nothing is downloaded -- ``pretrained=False`` on the meta device):

    PYTHONPATH=$PWD .venv/bin/python scripts/timm_towers.py [ARCH ...]   # default: every timm mobilenetv5* model

``make test`` provides them: torch 2.13.0 CPU (the ``oracle`` extra) in the venv, and timm 1.0.29 with the
torchvision wheel that pins that torch (0.28.0) in ``<venv>/oracle-timm`` -- see ``enable_timm``.

Per architecture the table holds every parameter (name, shape) in ``named_parameters`` order, every
persistent buffer (state-dict entries that are not parameters: vLLM loads them too, so they take GPU
memory without being parameters) and ``num_features`` (the tower's output channels).  The provenance
(timm / torch versions, the create_model arguments) is written with it; tests/test_gemma3n_mm.py
rebuilds the table with the installed timm and compares.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "reportgen" / "arch" / "timm_towers.json"
# `make test`: pip install --no-deps --target <venv>/oracle-timm timm torchvision (beside site-packages)
ORACLE_TIMM = Path(sys.prefix) / "oracle-timm"
# the ops torchvision 0.28's _meta_registrations.py registers a fake kernel for even when its _C failed to load
_UNGUARDED_OPS = ("nms", "qnms")
_KEEP: list = []  # a torch.library.Library drops its definitions when collected
PATTERN = "mobilenetv5*"
# what TimmWrapperModel passes (model_args None): no classifier head, no weights
CREATE_KWARGS = {"pretrained": False, "num_classes": 0}


def enable_timm() -> bool:
    """Make ``import timm`` work in this process; False when torch, torchvision or timm is not installed.

    timm imports torchvision at import time (``timm.layers`` needs ``torchvision.ops.misc.FrozenBatchNorm2d``,
    ``timm.data`` its transforms and datasets), and transformers builds a ``TimmWrapperModel`` only when
    torchvision is importable.  The only torchvision for torch 2.13.0 is the registry's 0.28.0 (it pins
    ``torch==2.13.0``), a CUDA build: its ``_C.so`` needs ``libc10_cuda.so`` / ``libtorch_cuda.so``, which
    the CPU torch lacks, so its compiled ops do not load.  torchvision then runs as pure Python
    (``extension._has_ops()`` False: any use of a compiled op raises its "Couldn't load custom C++ ops"),
    except that its import stops at ``@torch.library.register_fake("torchvision::nms")``, unguarded ("operator
    torchvision::nms does not exist").  So on exactly that error the two ops' schemas (what ``_C`` would have
    declared) are defined, with no kernel, and the import repeated.  Nothing on timm's model-building path
    calls a torchvision op, so the towers built are timm's own.

    ``make test`` installs both packages into ``<venv>/oracle-timm``, outside site-packages: only processes
    that call this see them (tests/conftest.py does, for the whole test session), so transformers in any
    other process (the ``reportgen`` CLI the tests start) keeps seeing no torchvision, as without the oracle.
    """
    if ORACLE_TIMM.is_dir() and str(ORACLE_TIMM) not in sys.path:
        sys.path.append(str(ORACLE_TIMM))
    if any(importlib.util.find_spec(m) is None for m in ("torch", "torchvision", "timm")):
        return False
    import torch

    try:
        importlib.import_module("torchvision")
    except RuntimeError as e:
        if f"operator torchvision::{_UNGUARDED_OPS[0]} does not exist" not in str(e):
            raise
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for op in _UNGUARDED_OPS:
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP.append(lib)
        importlib.import_module("torchvision")
    return True


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
    if not enable_timm():
        ap.error("needs torch, torchvision and timm (make test installs them)")
    table = build_table(args.names or default_names())
    args.out.write_text(dump(table))
    for n, e in table["architectures"].items():
        print(f"{n}: {e['params']:,} parameters, {len(e['parameters'])} tensors, {len(e['buffers'])} buffers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
