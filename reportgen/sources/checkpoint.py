"""Checkpoint-true weight bytes from safetensors headers on the Hub (``--weights checkpoint``).

Config-derived byte counts cannot see how a checkpoint is actually stored: packed int4
(AWQ/GPTQ/compressed-tensors as I32), MXFP4/NVFP4 (U8 + scales), mixed-precision layers.
The safetensors headers list every tensor's dtype, shape and byte range, so summing the
byte ranges gives the exact on-disk weight bytes.  ``huggingface_hub.get_safetensors_metadata``
reads ``model.safetensors`` or ``model.safetensors.index.json`` + each shard header with HTTP
Range requests (a few KB per shard, never the weights).

Online only.  The index file goes through ``hf_hub_download`` inside huggingface_hub with the
cache fixed at its import time (``constants.HF_HUB_CACHE``) — the standard cache in practice.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from huggingface_hub import HfApi
from huggingface_hub.errors import NotASafetensorsRepoError, SafetensorsParsingError

from .errors import SourceError
from .hub import HubClient, HubSettings, HubFailure
from .ids import hub_id_problem, looks_like_path, revision_problem

if TYPE_CHECKING:
    from reportgen.job import ModelRef


def checkpoint_weight_bytes(ref: ModelRef, token: str | None = None, *, timeout: float = 10.0,
                            retries: int = 3, offline: bool | None = None) -> dict[str, Any]:
    """Weight bytes of ``ref``'s safetensors checkpoint, from the headers only.

    Returns ``{"source": "safetensors", "revision", "sharded", "total_bytes", "total_params",
    "bytes_by_dtype": {dtype: bytes}, "params_by_dtype": {dtype: n},
    "tensors": {name: {"shape": [...], "dtype": str, "bytes": int, "file": str}}}``.
    Raises SourceError (invalid_id, not_found, gated, network, malformed_config).
    """
    if looks_like_path(ref.id):
        raise SourceError(ref, "not_found", "checkpoint weights are read from the Hub; "
                                            "for a local model use the config-derived weights")
    problem = hub_id_problem(ref.id) or revision_problem(ref.revision)
    if problem:
        raise SourceError(ref, "invalid_id", problem)
    settings = HubSettings.from_env(token=token, offline=offline, timeout=timeout, retries=retries)
    if settings.offline:
        raise SourceError(ref, "network", "checkpoint weights need the Hub but HF_HUB_OFFLINE is set; "
                                          "use the config-derived weights (--weights auto)")
    client = HubClient(settings)
    api = HfApi(endpoint=settings.endpoint, token=settings.token)
    try:
        meta = client.retrying(f"{ref.id} safetensors", lambda: api.get_safetensors_metadata(
            ref.id, revision=ref.revision, token=settings.token, timeout=settings.timeout))
    except HubFailure as a:
        if isinstance(a.error, NotASafetensorsRepoError):
            raise SourceError(ref, "not_found", f"{ref.id} has no model.safetensors or model.safetensors.index.json"
                                                "; use the config-derived weights (--weights auto)") from None
        if isinstance(a.error, SafetensorsParsingError):
            raise SourceError(ref, "malformed_config", f"{ref.id}: a safetensors header could not be parsed") from None
        raise client.classify(ref, a.error, a.attempts) from None

    tensors: dict[str, dict[str, Any]] = {}
    bytes_by_dtype: dict[str, int] = defaultdict(int)
    params_by_dtype: dict[str, int] = defaultdict(int)
    for filename, fm in sorted(meta.files_metadata.items()):
        for name, info in fm.tensors.items():
            start, end = info.data_offsets
            n = 1
            for d in info.shape:
                n *= d
            tensors[name] = {"shape": list(info.shape), "dtype": info.dtype, "bytes": end - start, "file": filename}
            bytes_by_dtype[info.dtype] += end - start
            params_by_dtype[info.dtype] += n
    return {"source": "safetensors", "revision": ref.revision, "sharded": meta.sharded,
            "total_bytes": sum(bytes_by_dtype.values()), "total_params": sum(params_by_dtype.values()),
            "bytes_by_dtype": dict(bytes_by_dtype), "params_by_dtype": dict(params_by_dtype),
            "tensors": tensors}
