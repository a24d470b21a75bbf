"""Model Runner V2: which models a vLLM release runs on it (``vllm/v1/worker/gpu/``).

Why a module: a model on Model Runner V2 samples its profile run with MRV2's sampler
(``overheads.MRV2_SAMPLER_BYTES``), captures ``overheads.MRV2_GRAPH_RATIO`` of the graph memory fitted on Model
Runner V1, and before 0.29 reserves no graph memory (its ``profile_cudagraph_memory`` returned 0).  Which models run
on it is decided per release by two rules: the profile's own (``VllmProfile.mrv2``: dense text models 0.25-0.28,
every model from 0.29; ``runs_mrv2``) and the architectures a release names (0.22-0.28; ``named_mrv2``).  The
profile table (``profiles.py``) holds the first; this module applies both.  It reads only the profile's ``mrv2``
field: ``VllmProfile`` is named for the annotations only, because ``profiles`` re-exports every name here (a
top-level import of ``profiles`` would be an import cycle).

The vLLM code the rules follow (the citations are at each rule): ``vllm/config/vllm.py``
``DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES`` / ``_is_default_v2_model_runner_model`` and ``use_v2_model_runner`` in the
0.22.0-0.29.0 release sdists; ``vllm/v1/worker/gpu/model_runner.py`` ``profile_cudagraph_memory`` (``return 0`` in
0.18.0-0.28.0); issue #49224 (the dense default in 0.25) and PR #53183 (MRV2 for every model, 0.29).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .profiles import VllmProfile


def runs_mrv2(p: VllmProfile, is_moe: bool, hybrid: bool) -> bool:
    """True when the profile runs the model on Model Runner V2 (``vllm/v1/worker/gpu/``): dense text
    models from 0.25 (the same switch that made their graph estimate 0, issue #49224; in the 0.25.0 sdist), every model
    from 0.29 (PR #53183).  Its profile run samples with the MRV2 sampler (overheads.MRV2_SAMPLER_BYTES)."""
    return p.mrv2 == "all" or (p.mrv2 == "dense" and not is_moe and not hybrid)


# Architectures vLLM runs on Model Runner V2 by default before 0.29 made it every model's runner, per minor release:
# (architectures, unquantized non-MoE only, hybrids too).  vLLM ``config/vllm.py`` ``DEFAULT_V2_MODEL_RUNNER_
# ARCHITECTURES`` and ``_is_default_v2_model_runner_model`` in the release sdists (branch versionaudit): 0.22.0 :69 /
# :518-532 and 0.23.0 :69 / :544-558 (``not is_moe and not is_quantized``); 0.24.0 :68 / :550 (any quantization,
# MoE included); 0.25.0 :68 / :557-570, 0.26.0 :68 / :605, 0.27.0 :69 / :637 (hybrid and attention-free models
# excluded first; dense models run MRV2 anyway -- the profile's ``mrv2 = "dense"``); 0.28.0 :69 / :691 (a listed
# hybrid runs MRV2 too).  MRV2's ``profile_cudagraph_memory`` is ``return 0`` in all of them
# (v1/worker/gpu/model_runner.py:620-622 in 0.22.0, :843-845 in 0.28.0): such a model reserves no graph memory.
# Not modelled: the fall-backs to V1 (``_get_v2_model_runner_unsupported_features``: ngram speculative decoding,
# reasoning budgets, ...) and ROCm's MRV1 list (0.28.0 :83-93).
_MRV2_024 = frozenset({"Qwen3ForCausalLM", "LlamaForCausalLM", "MistralForCausalLM", "DeepseekV2ForCausalLM",
                       "Qwen2MoeForCausalLM", "GraniteMoeForCausalLM"})
_MRV2_025 = frozenset({"DeepseekV2ForCausalLM", "Qwen2MoeForCausalLM", "GraniteMoeForCausalLM"})
_MRV2_026 = _MRV2_025 | {"InklingForCausalLM", "InklingForConditionalGeneration", "LongcatFlashNgramForCausalLM"}
_MRV2_027 = _MRV2_026 | {"KimiK3ForConditionalGeneration"}
MRV2_NAMED_ARCHS: dict[tuple[int, int], tuple[frozenset[str], bool, bool]] = {
    (0, 22): (frozenset({"Qwen3ForCausalLM"}), True, False),
    (0, 23): (frozenset({"LlamaForCausalLM", "MistralForCausalLM", "Qwen3ForCausalLM"}), True, False),
    (0, 24): (_MRV2_024, False, True),
    (0, 25): (_MRV2_025, False, False),
    (0, 26): (_MRV2_026, False, False),
    (0, 27): (_MRV2_027, False, False),
    (0, 28): (_MRV2_027 | {"DeepseekV4ForCausalLM"}, False, True),
}


def named_mrv2(version, architectures, is_moe: bool, quantized: bool, hybrid: bool) -> bool:
    """True when vLLM ``version`` ((major, minor)) runs a model of these ``architectures`` on Model Runner V2 because
    it names the architecture (``MRV2_NAMED_ARCHS``, 0.22-0.28); ``quantized``: the checkpoint config carries a
    ``quantization_config`` (vLLM ``ModelConfig.is_quantized``).  Outside 0.22-0.28 always False (the profile's
    ``mrv2`` says the rest)."""
    if version is None:
        return False
    entry = MRV2_NAMED_ARCHS.get(tuple(version[:2]))
    if entry is None or not any(a in entry[0] for a in architectures or ()):
        return False
    archs, dense_unquantized_only, hybrids_too = entry
    if dense_unquantized_only and (is_moe or quantized):
        return False
    return hybrids_too or not hybrid


def model_runs_mrv2(p: VllmProfile, version, architectures, is_moe: bool, quantized: bool, hybrid: bool) -> bool:
    """True when a model runs on Model Runner V2 under ``version`` of profile ``p``: by the profile's rule
    (``runs_mrv2``) or because the release names its architecture (``named_mrv2``).  Its profile run samples
    with MRV2's sampler and its graphs take oh.MRV2_GRAPH_RATIO of the fitted graph memory."""
    return runs_mrv2(p, is_moe, hybrid) or named_mrv2(version, architectures, is_moe, quantized, hybrid)
