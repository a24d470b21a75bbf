"""Speculative decoding (vLLM ``--speculative-config``): what a draft adds to GPU memory.

Why a module of its own: a pasted ``vllm serve ... --speculative-config '{...}'`` line must get vLLM's
answer, and the draft changes three terms at once -- weights (the draft's layers on every rank), the
KV pool (the draft's attention layers join the target's KV-cache group, so a token costs more bytes)
and the CUDA-graph set (capture sizes rounded to multiples of ``1 + num_speculative_tokens``).

Sources (vllm-project/vllm, read with the search tool's read_file):

- ``vllm/config/speculative.py`` @002e77c1 (``SpeculativeConfig``): method inference (no method: model
  ``ngram`` -> ngram, ``eagle-`` / ``eagle3`` in the draft id -> eagle / eagle3, an MTP model type -> mtp,
  else ``draft_model``); legacy MTP method names (``deepseek_mtp`` ...) -> ``mtp``; ``mtp`` without a
  model uses the target checkpoint and its quantization; ``hf_config_override`` maps ``deepseek_v3``,
  ``deepseek_v32`` and ``glm_moe_dsa`` to ``deepseek_mtp`` with ``n_predict = num_nextn_predict_layers``;
  ``num_speculative_tokens`` defaults to ``n_predict`` and must be divisible by it when larger;
  ``ngram`` needs ``num_speculative_tokens``; ``suffix`` defaults it to ``suffix_decoding_max_tree_depth``
  (24); ``_verify_and_get_draft_tp``: ``draft_tensor_parallel_size`` unset = the target's TP, else 1 or
  the target's TP; ``uses_draft_kv_cache`` = eagle / eagle3 / mtp / draft_model (ngram and suffix keep
  no draft KV); ``max_num_new_slots_for_drafting`` (draft_model 1, mtp / eagle 0).
- ``vllm/model_executor/models/deepseek_mtp.py`` @03356f8c (and ``glm4_moe_mtp.py`` @028aedf6, the same
  shape around a ``Glm4MoeDecoderLayer``, for ``Glm4MoeForCausalLM``: GLM-4.5 / 4.6 / 4.7): an MTP layer is ``enorm`` + ``hnorm`` (RMSNorm),
  ``eh_proj`` (plain ``nn.Linear(2H, H)``: replicated, never quantized), ``shared_head`` (RMSNorm + a
  ``ParallelLMHead``) and ``mtp_block`` = one ``DeepseekV2DecoderLayer``; ``DeepSeekMultiTokenPredictor``
  builds all ``num_nextn_predict_layers`` layers and a ``VocabParallelEmbedding``.
- ``vllm/v1/spec_decode/llm_base_proposer.py`` @00c4f22d (``load_model``): the draft's attention layers
  with a KV spec are the layers the draft adds (they must sit in one KV-cache group with the target's);
  ``_maybe_share_embeddings`` / ``_maybe_share_lm_head``: an MTP draft (no ``has_own_embed_tokens``)
  always takes the target's embedding (when pp == 1) and lm_head (also every ``shared_head.head``), so
  those weights are not loaded twice; ``_create_draft_vllm_config`` replaces only the kernel, attention
  and cache configs -- the draft runs with the target's parallel config (its TP).
- ``vllm/v1/spec_decode/draft_model.py`` @01dd981d (``DraftModelProposer.load_model``): a ``draft_model``
  draft is the whole draft checkpoint (own embedding and lm_head) built with the target's vllm_config
  (same TP), its attention layers added to the KV cache.
- ``vllm/config/vllm.py`` (``_set_cudagraph_sizes``, index copy 18201737): ``max_cudagraph_capture_size =
  min(max_num_seqs x (1 + num_speculative_tokens) x 2, 512)``, capped at ``max_num_batched_tokens``;
  ``vllm/config/compilation.py`` @ee525ce4 ``adjust_cudagraph_sizes_for_spec_decode``: every size rounded
  up to a multiple of ``1 + num_speculative_tokens``, those above the maximum dropped (``[1 + K]`` when
  none is left).  ``profiles.capture_sizes`` applies both.

Modelled (decisions.md "Speculative decoding"): the draft's weights on every rank (TP as the target),
its attention layers in the KV pool, its layers in the CUDA-graph term (uncalibrated: no start-up log
with a draft was runnable), the capture-size rounding.  Not modelled, said in the reason or the docs:
EAGLE / EAGLE-3 heads (refused: ``llama_eagle3.py`` @00bd1493 is clear about the tensors -- a first
layer whose qkv takes 2H, an ``fc`` ReplicatedLinear over 3 target hidden states, a ``draft_vocab_size``
lm_head -- but ``_maybe_share_embeddings`` / ``_maybe_share_lm_head`` share the target's embedding / head
when the checkpoint has none *or when its own equals the target's* (``torch.equal`` on the loaded
weights), which no config says), MTP of other families than DeepSeek-V3 / V3.2, GLM-5 and GLM-4.5+
(their vLLM ``*_mtp.py`` files were not read -- refused), ``draft_tensor_parallel_size`` 1 under TP > 1,
pipeline parallelism with a draft, hybrid (state-layer) targets (the draft widens their conv state:
``StateGeometry.num_spec``), a draft ``kv_cache_dtype`` / ``quantization`` other than the target's,
probabilistic draft sampling, parallel drafting, the drafter's and rejection sampler's transient
buffers in the profile run (below the target's forward peak), and the scheduler's lookahead slots
(allocated per step at run time, not in the start-up KV check).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from reportgen.arch.spec import ModelSpec

# vLLM's MTPModelTypes (speculative.py @002e77c1): legacy method names that mean "mtp"
MTP_METHOD_ALIASES = ("deepseek_mtp", "mimo_mtp", "mimo_v2_mtp", "glm4_moe_mtp", "glm4_moe_lite_mtp", "ernie_mtp",
                      "nemotron_h_mtp", "exaone_moe_mtp", "qwen3_next_mtp", "qwen3_5_mtp", "longcat_flash_mtp",
                      "pangu_ultra_moe_mtp", "step3p5_mtp", "bailing_hybrid_mtp")
MODELLED_METHODS = ("mtp", "draft_model", "ngram", "suffix")
REFUSED_METHODS = {
    "eagle": "EAGLE heads are not modelled: whether vLLM loads their own embedding and lm_head depends on "
             "the checkpoint's tensors (has_own_embed_tokens / has_own_lm_head) and, when present, on their "
             "equality with the target's (torch.equal at load, llm_base_proposer.py) -- not knowable from a config",
    "eagle3": "EAGLE-3 heads are not modelled: llama_eagle3.py builds a 2H-input first layer, an fc over 3 target "
              "hidden states and a draft-vocabulary lm_head, but whether its embedding is the target's depends on "
              "the checkpoint's tensors and their equality with the target's (torch.equal at load) -- not "
              "knowable from a config",
    "medusa": "Medusa heads are not modelled", "mlp_speculator": "MLP speculator heads are not modelled",
    "dflash": "DFlash drafts (parallel drafting, K extra slots per request) are not modelled",
    "dspark": "DSpark drafts are not modelled", "ngram_gpu": "the GPU n-gram proposer's buffers are not modelled",
    "extract_hidden_states": "hidden-state extraction is not a speculative decoder reportgen models",
    "custom_class": "a custom proposer class allocates what it likes; not modelled",
}
# vLLM model types whose MTP draft reportgen models (hf_config_override in speculative.py @002e77c1):
# deepseek_v3 / deepseek_v32 / glm_moe_dsa -> DeepSeekMTP (deepseek_mtp.py @03356f8c); architectures
# Glm4MoeForCausalLM -> Glm4MoeMTP (glm4_moe_mtp.py @028aedf6, the same layer shape)
DEEPSEEK_MTP_TYPES = ("deepseek_v3", "deepseek_v32", "glm_moe_dsa")
MTP_ARCHITECTURES = {"glm4_moe": "Glm4MoeForCausalLM"}
MTP_TYPES = DEEPSEEK_MTP_TYPES + tuple(MTP_ARCHITECTURES)
# SpeculativeConfig keys: accepted with no memory effect reportgen prices differently
_NO_EFFECT = ("prompt_lookup_max", "prompt_lookup_min", "revision", "code_revision", "max_model_len",
              "suffix_decoding_max_tree_depth", "suffix_decoding_max_cached_requests",
              "suffix_decoding_max_spec_factor", "suffix_decoding_min_token_prob", "disable_padded_drafter_batch",
              "disable_eagle_block_drop", "use_local_argmax_reduction", "rejection_sample_method",
              "synthetic_acceptance_rates", "synthetic_acceptance_length", "attention_backend", "moe_backend",
              "index_share_for_mtp_iteration", "enforce_eager")
_MODELLED = ("method", "model", "num_speculative_tokens", "draft_tensor_parallel_size", "quantization",
             "kv_cache_dtype")
# keys that change memory in ways not modelled, refused unless at vLLM's default
_UNMODELLED = {"draft_sample_method": ("greedy", "probabilistic draft sampling keeps full draft logits"),
               "parallel_drafting": (False, "parallel drafting adds K - 1 slots per request"),
               "use_heterogeneous_vocab": (False, "a heterogeneous draft vocabulary builds a token mapping"),
               "num_speculative_tokens_per_batch_size": (None, "dynamic speculation lengths change graph sizes"),
               "tensor_parallel_size": (None, "vLLM refuses it: use draft_tensor_parallel_size")}


class SpecConfigError(ValueError):
    """A speculative_config reportgen cannot turn into an estimate (or vLLM would refuse)."""


@dataclass(frozen=True)
class SpecDecode:
    """A parsed ``speculative_config``: method, draft id, ``num_speculative_tokens`` (None = the draft's
    ``n_predict``, resolved per model), draft TP (None = the target's), and the raw dict."""

    method: str
    model: str | None = None
    num_speculative_tokens: int | None = None
    draft_tensor_parallel_size: int | None = None
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    enforce_eager: bool | None = None
    raw: dict = field(default_factory=dict, compare=False)

    def as_json(self) -> str:
        return json.dumps(self.raw, sort_keys=True)


def parse_speculative_config(value) -> SpecDecode | None:
    """vLLM's ``--speculative-config`` value (a JSON object, or a dict from a job's TOML table) ->
    ``SpecDecode``; None / ``{}`` / ``"None"`` = no speculative decoding."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "None", "null", "{}"):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecConfigError(f"not a JSON object ({e.msg} at character {e.pos})") from None
    if not isinstance(value, dict):
        raise SpecConfigError(f"expected a JSON object such as {{\"method\": \"mtp\", \"num_speculative_tokens\": 1}}, "
                              f"got {type(value).__name__}")
    if not value:
        return None
    raw = dict(value)
    known = set(_NO_EFFECT) | set(_MODELLED) | set(_UNMODELLED)
    for k in raw:
        if k not in known:
            raise SpecConfigError(f"unknown key {k!r}; reportgen does not know whether it changes GPU memory "
                                  f"(known: {', '.join(sorted(known))})")
    for k, (default, why) in _UNMODELLED.items():
        if k in raw and raw[k] != default:
            raise SpecConfigError(f"{k} = {raw[k]!r}: changes GPU memory in a way reportgen does not model ({why})")
    model = raw.get("model")
    if model is not None and not isinstance(model, str):
        raise SpecConfigError(f"model: expected a model id, got {model!r}")
    method = raw.get("method")
    if method is not None and not isinstance(method, str):
        raise SpecConfigError(f"method: expected a string, got {method!r}")
    if method is None:
        # vLLM's inference (speculative.py): ngram by name, eagle by id, else a draft model
        if model in ("ngram", "[ngram]"):
            method = "ngram"
        elif model is None:
            raise SpecConfigError("neither method nor model given (vLLM infers the method from the draft model)")
        elif "eagle-" in model.lower():
            method = "eagle"
        elif "eagle3" in model.lower():
            method = "eagle3"
        else:
            method = "draft_model"
    method = {"[ngram]": "ngram"}.get(method, method)
    if method in MTP_METHOD_ALIASES:
        method = "mtp"
    if method in REFUSED_METHODS:
        raise SpecConfigError(f"method {method}: {REFUSED_METHODS[method]}")
    if method not in MODELLED_METHODS:
        raise SpecConfigError(f"method {method!r} is not a vLLM speculative method reportgen knows "
                              f"(modelled: {', '.join(MODELLED_METHODS)})")
    k = raw.get("num_speculative_tokens")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise SpecConfigError(f"num_speculative_tokens: expected a whole number >= 1, got {k!r}")
    if method == "suffix" and k is None:
        k = int(raw.get("suffix_decoding_max_tree_depth", 24))   # vLLM's _validate_suffix_decoding default
    if method == "ngram" and k is None:
        raise SpecConfigError("method ngram needs num_speculative_tokens (vLLM raises without it)")
    if method == "draft_model":
        if not model:
            raise SpecConfigError("method draft_model needs the draft model id in \"model\"")
        if k is None:
            raise SpecConfigError("method draft_model needs num_speculative_tokens (a plain draft model has no "
                                  "n_predict; vLLM raises without it)")
    if method == "mtp" and model is not None:
        raise SpecConfigError("method mtp with a separate \"model\": reportgen models the target checkpoint's own "
                              "MTP layers only (leave model out, as vLLM's default does)")
    dtp = raw.get("draft_tensor_parallel_size")
    if dtp is not None and (isinstance(dtp, bool) or not isinstance(dtp, int) or dtp < 1):
        raise SpecConfigError(f"draft_tensor_parallel_size: expected a whole number >= 1, got {dtp!r}")
    eager = raw.get("enforce_eager")
    return SpecDecode(method, model if method == "draft_model" else None, k, dtp,
                      raw.get("quantization"), raw.get("kv_cache_dtype"),
                      None if eager is None else bool(eager), raw)


@dataclass(frozen=True)
class Draft:
    """What a speculative method adds for one target model (``resolve``).

    ``weights``: a spec holding only the draft tensors vLLM loads beside the target (None = none);
    ``layers_kv``: the draft's attention layers, added to the target's KV pool; ``graph_layers``: decoder
    layers the draft adds to the captured graphs; ``label``: the column text; ``reason``: set = refused."""

    method: str
    k: int
    weights: ModelSpec | None = None
    layers_kv: tuple = ()
    graph_layers: int = 0
    label: str = ""
    reason: str | None = None


def _refused(sd: SpecDecode, why: str) -> Draft:
    return Draft(sd.method, sd.num_speculative_tokens or 0, label=f"{sd.method} (not modelled)",
                 reason=f"speculative decoding ({sd.method}): {why}")


def resolve(spec: ModelSpec, sd: SpecDecode, draft_spec: ModelSpec | None = None) -> Draft:
    """The draft of ``sd`` for the target ``spec`` (``draft_spec``: the draft model's own spec, method
    ``draft_model``).  A draft reportgen cannot price comes back with ``reason`` set."""
    if any(getattr(l, "state", None) is not None for l in spec.layers_kv):
        return _refused(sd, "a hybrid target's recurrent-state layers hold num_speculative_tokens more conv rows "
                            "and vLLM's spec-decode state blocks differ; not modelled")
    if sd.quantization not in (None, "None") and sd.method != "draft_model":
        return _refused(sd, f"an explicit draft quantization ({sd.quantization}) is not modelled (without one, "
                            "vLLM gives an MTP draft the target's quantization, which is what is priced)")
    if sd.kv_cache_dtype not in (None, "auto"):
        return _refused(sd, f"a draft kv_cache_dtype ({sd.kv_cache_dtype}) other than the target's is not modelled")
    if sd.method in ("ngram", "suffix"):
        where = "n-gram lookup over the prompt" if sd.method == "ngram" else "suffix trees (Arctic Inference)"
        return Draft(sd.method, int(sd.num_speculative_tokens), None, (), 0,
                     f"{sd.method} k={sd.num_speculative_tokens}: no draft weights or KV ({where}, on the CPU)")
    if sd.method == "mtp":
        return _mtp(spec, sd)
    return _draft_model(spec, sd, draft_spec)


def _mtp(spec: ModelSpec, sd: SpecDecode) -> Draft:
    n_mtp = len(spec.mtp_layers_kv)
    arch = MTP_ARCHITECTURES.get(spec.model_type)
    if spec.model_type not in MTP_TYPES or (arch and (spec.architectures or ("",))[0] != arch):
        what = "has no MTP layers" if not spec.mtp_params else "has MTP layers whose vLLM model file was not read"
        return _refused(sd, f"model_type {spec.model_type} {what} (modelled: the MTP layers of "
                            f"{', '.join(MTP_TYPES)})")
    if not n_mtp:
        return _refused(sd, "the config has no MTP layers (num_nextn_predict_layers 0): vLLM has no draft to load")
    if sd.num_speculative_tokens is None and n_mtp != 1:
        return _refused(sd, f"num_speculative_tokens left to vLLM's default (n_predict = {n_mtp}): give it "
                            "explicitly (the CUDA-graph sizes of a job are set per GPU, not per model)")
    k = sd.num_speculative_tokens or n_mtp
    if k > n_mtp and k % n_mtp:
        return _refused(sd, f"num_speculative_tokens {k} must be divisible by num_nextn_predict_layers {n_mtp} "
                            "(vLLM raises)")
    w = _weights_spec(spec, spec.mtp_tensors, f"{spec.model_type}-mtp")
    gib_note = f"{n_mtp} MTP layer{'s' if n_mtp > 1 else ''} (embedding and lm_head shared with the target)"
    return Draft("mtp", k, w, tuple(spec.mtp_layers_kv), n_mtp, f"mtp k={k}: {gib_note}")


def _draft_model(spec: ModelSpec, sd: SpecDecode, draft: ModelSpec | None) -> Draft:
    if draft is None:
        return _refused(sd, f"the draft model {sd.model!r} could not be resolved")
    if draft.unsupported_reason:
        return _refused(sd, f"draft {sd.model}: {draft.unsupported_reason}")
    if any(getattr(l, "state", None) is not None for l in draft.layers_kv):
        return _refused(sd, f"draft {sd.model} has recurrent-state layers; not modelled")
    if draft.vocab_size and spec.vocab_size and draft.vocab_size != spec.vocab_size:
        return _refused(sd, f"draft vocab_size {draft.vocab_size} != target vocab_size {spec.vocab_size}: vLLM "
                            "refuses (verify_equal_vocab_size_if_draft_model)")
    if draft.multimodal:
        return _refused(sd, "a multimodal draft model is not modelled (vLLM's DraftModelProposer raises for "
                            "multimodal models)")
    k = int(sd.num_speculative_tokens)
    return Draft("draft_model", k, draft, tuple(draft.layers_kv), draft.num_layers,
                 f"draft_model k={k}: {sd.model} ({draft.num_layers} layers, own embedding and lm_head)")


def _weights_spec(spec: ModelSpec, tensors, family: str) -> ModelSpec:
    """A one-layer spec of the draft tensors (layer index 0) with the target's sharding facts, so the
    estimator's weight table shards and quantizes them as the target's."""
    ts = [replace(t, layer=0) for t in tensors]
    return ModelSpec(model_type=spec.model_type, architectures=spec.architectures, family=family, dtype=spec.dtype,
                     hidden_size=spec.hidden_size, vocab_size=spec.vocab_size, num_layers=1,
                     num_attention_heads=spec.num_attention_heads, num_kv_heads=spec.num_kv_heads,
                     head_dim=spec.head_dim, is_mla=spec.is_mla, num_experts=spec.num_experts,
                     experts_per_token=spec.experts_per_token, num_shared_experts=spec.num_shared_experts,
                     rope_caches=(), tensors=ts, quantization_config=spec.quantization_config,
                     checkpoint_tensors=None)


def draft_tp_reason(sd: SpecDecode | None, tp: int) -> str | None:
    """vLLM's ``_verify_and_get_draft_tp`` plus what reportgen models (the draft at the target's TP)."""
    if sd is None or sd.draft_tensor_parallel_size is None or sd.draft_tensor_parallel_size == tp:
        return None
    if sd.draft_tensor_parallel_size != 1:
        return (f"draft_tensor_parallel_size {sd.draft_tensor_parallel_size} is neither 1 nor tp ({tp}): "
                "vLLM refuses")
    return (f"speculative decoding with draft_tensor_parallel_size 1 under tp {tp}: not modelled (V1 builds the "
            "draft with the target's parallel config)")


__all__ = ["SpecDecode", "Draft", "SpecConfigError", "parse_speculative_config", "resolve", "draft_tp_reason",
           "MODELLED_METHODS", "DEEPSEEK_MTP_TYPES", "MTP_TYPES"]
