"""Speculative decoding (vLLM ``--speculative-config``): what a draft adds to GPU memory.

Why a module of its own: a pasted ``vllm serve ... --speculative-config '{...}'`` line must get vLLM's
answer, and the draft changes three terms at once -- weights (the draft's layers on every rank), the
KV pool (the draft's attention layers join the target's KV-cache group, so a token costs more bytes)
and the CUDA-graph set (capture sizes rounded to multiples of ``1 + num_speculative_tokens`` on Model Runner V1;
Model Runner V2, every model from 0.29, adds request-count decode sizes instead: ``capture_sizes.py``).

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
- ``vllm/model_executor/models/deepseek_v4_mtp.py`` @023da1fc (``DeepSeekV4MTP``, the draft of ``DeepseekV4ForCausalLM``;
  row 156 of tests/data/vllm_logs.csv starts it on vLLM 0.25.0): the layer is built
  by families/deepseek_v4.py (a sliding-only ``DeepseekV4DecoderLayer`` + enorm / hnorm / shared_head.norm,
  quantized ``e_proj`` / ``h_proj`` and float32 ``hc_head_*``); the proposer's ``hidden_states`` buffer is
  ``hc_mult x hidden_size`` wide (``spec.mtp_hidden_states``), and ``_maybe_share_lm_head`` also hands the
  draft the target's ``topk_indices_buffer`` (the draft's own is freed: not priced).
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
  none is left) -- on Model Runner V1 only (``not use_v2_model_runner``, vllm 0.25.0 sdist config/compilation.py
  :1425-1440); from 0.29 MRV2's request-count decode sizes and FULL graphs of whole requests (branch specgraphs,
  docs/decisions.md).  ``profiles.capture_sizes`` applies the rule of the job's release.  The k >= 2 drafter's own
  one-token decode graphs (0.34 config/vllm.py:708-730) are not priced.

- EAGLE / EAGLE-3 heads (``resolve`` -> ``_eagle``; tests/test_specdecode_eagle.py):
  ``vllm/model_executor/models/llama_eagle.py`` (@e1c4a552 and @00da9231, and the search index's copy
  with ``process_eagle_weight``, file id 184737178, commit not shown): ``EagleLlamaForCausalLM`` =
  ``num_hidden_layers`` vLLM
  ``LlamaDecoderLayer`` (layer 0's ``input_layernorm`` an Identity), ``fc = nn.Linear(2H, H)`` (plain:
  replicated, unquantized), a ``VocabParallelEmbedding`` whose weights ``load_weights`` skips at pp 1,
  no lm_head (the target's is always shared) and no final norm; with ``add_para_norm`` (HASS, @00da9231)
  two more RMSNorm(H), ``embedding_layernorm`` and ``hidden_states_layernorm``; ``llama_eagle3.py`` @00bd1493:
  ``Eagle3LlamaForCausalLM`` (also ``LlamaForCausalLMEagle3``) = layers whose layer-0 ``qkv_proj`` reads
  2H (``[embeds, hidden]``), with ``hidden_norm`` beside the two usual norms, a final ``norm``,
  ``fc = ReplicatedLinear(3 x target_hidden_size (or H), H)`` unless ``eagle_config.use_aux_hidden_state``
  is false, ``lm_head = ParallelLMHead(draft_vocab_size, H)`` and ``draft_id_to_target_id`` (int64,
  ``draft_vocab_size``: an nn.Parameter built whether or not ``d2t`` is loaded); ``qwen3_eagle3.py``
  @055e47c2 (``Eagle3Qwen3ForCausalLM``, a ``Qwen3ForCausalLM`` head under eagle3): the same around
  ``Qwen3DecoderLayer`` (q_norm / k_norm, no o_proj bias), ``num_aux_layers`` (or ``num_aux_hidden_states``,
  or the aux layer ids' count, else 3) target hidden states into fc, ``norm_before_fc`` (``input_norm``
  over the fc input) and ``fc_norm`` (one norm per aux state); its sliding-window draft layers are refused.
  ``llm_base_proposer.py`` @00c4f22d ``_maybe_share_embeddings`` (pp 1 only) / ``_maybe_share_lm_head``:
  the target's tensor replaces the draft's when the checkpoint has none (``models/utils.py``
  ``process_eagle_weight`` sets ``has_own_embed_tokens`` / ``has_own_lm_head`` from the weight *names*)
  or when ``torch.equal`` finds the two equal (tensor *values*; different shapes are never equal), the
  embedding only when the widths match.  reportgen prices the draft's copy -- the **upper bound** --
  unless the draft checkpoint's safetensors header listing (``estimate --weights checkpoint``) shows the
  tensor absent; the ``speculative`` column says which.  ``transformers_utils/configs/eagle.py`` (index
  copy): the class vLLM builds is ``Eagle`` / ``Eagle3`` + the draft's architecture (kept when it already
  starts with it or, EAGLE-3, ends with ``Eagle3``); other classes are refused (``EAGLE_REFUSED`` with the
  reason of the file read: ``llama4_eagle.py`` @06bfb261, ``deepseek_eagle.py`` @0c58615d, ``minicpm_eagle.py``
  @04028200; Qwen2 / Qwen3-VL / Mistral-Large-3 heads not read; speculators-format configs other than eagle3:
  ``speculators_config``), as are EAGLE heads on MLA targets and sliding draft layers (vLLM's Llama and Qwen3
  attention read the head's ``layer_types``).  The head's layers are built by the families' shared parts
  (``families/common.py`` ``geometry`` / ``decoder_layer`` / ``gqa_attention`` (``in_dim`` = 2H for EAGLE-3's
  first layer) / ``swiglu_mlp``), so a head layer is its family's layer with the EAGLE file's changes.
  Draft KV: one full-attention layer per draft layer (the draft's own KV heads and head size, at the
  target's TP) in the target's group.
- ``SpecDecodeBaseProposer.__init__`` (llm_base_proposer.py @00c4f22d): persistent GPU buffers of
  ``max_num_batched_tokens`` rows allocated with the runner (``proposer_buffers``: ``hidden_states`` and
  ``inputs_embeds`` in the model dtype at the draft's hidden size, int32 ``input_ids`` / ``arange``, int64
  ``positions`` / ``_slot_mapping_buffer``, two bool masks with extra input slots), priced for mtp,
  draft_model, eagle and eagle3 as per-token activation bytes; with EAGLE-3 the target's forward also keeps
  three auxiliary hidden states (``hidden + residual`` at three layers, alive to its end): 3 x target
  hidden per batched token in the forward peak.

Modelled (decisions.md "Speculative decoding"): the draft's weights on every rank (TP as the target),
its attention layers in the KV pool, its layers in the CUDA-graph term (uncalibrated: no start-up log
with a draft was runnable), the capture-size rounding, the proposer's buffers.  Not modelled, said in
the reason or the docs: EAGLE heads other than vLLM's Llama / Qwen3 ones (above), the later
llama_eagle3.py norms (``norm_before_fc`` / ``fc_norm`` / ``norm_output`` on a Llama head: refused), MTP of other families than
DeepSeek-V3 / V3.2 / V4, GLM-5 and GLM-4.5+ (their vLLM ``*_mtp.py`` files were not read -- refused),
``draft_tensor_parallel_size`` 1 under TP > 1, pipeline parallelism with a draft (``gpu_model_runner.py``
@000fc94b builds the drafter on the last PP rank only; ``_maybe_share_embeddings`` shares only at PP 1), hybrid (state-layer)
targets (the draft widens their conv state: ``StateGeometry.num_spec``), a draft ``kv_cache_dtype`` /
``quantization`` other than the target's (EAGLE / draft_model: a quantized draft checkpoint's own scheme
only for draft_model), probabilistic draft sampling, parallel drafting, the drafter's and rejection
sampler's transient buffers in the profile run (below the target's forward peak), the draft's rotary
cache when its rope parameters differ from the target's (vLLM's ``get_rope`` cache shares an equal one),
and the scheduler's lookahead slots (allocated per step at run time, not in the start-up KV check).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError
from reportgen.arch.families.common import decoder_layer, geometry, gqa_attention, swiglu_mlp
from reportgen.arch.fields import Fields
from reportgen.arch.spec import AttentionKind, Component, LayerKV, ModelSpec, Shard, Tensor

# vLLM's MTPModelTypes (speculative.py @002e77c1): legacy method names that mean "mtp"
MTP_METHOD_ALIASES = ("deepseek_mtp", "mimo_mtp", "mimo_v2_mtp", "glm4_moe_mtp", "glm4_moe_lite_mtp", "ernie_mtp",
                      "nemotron_h_mtp", "exaone_moe_mtp", "qwen3_next_mtp", "qwen3_5_mtp", "longcat_flash_mtp",
                      "pangu_ultra_moe_mtp", "step3p5_mtp", "bailing_hybrid_mtp")
MODELLED_METHODS = ("mtp", "draft_model", "eagle", "eagle3", "ngram", "suffix")
EAGLE_METHODS = ("eagle", "eagle3")
# methods whose draft is a separate checkpoint named by "model" (resolved like a model: draft_spec_for)
DRAFT_CHECKPOINT_METHODS = ("draft_model",) + EAGLE_METHODS
REFUSED_METHODS = {
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
# (and deepseek_v4 -> DeepSeekV4MTP, deepseek_v4_mtp.py @023da1fc: families/deepseek_v4.py builds its layer)
MTP_ARCHITECTURES = {"glm4_moe": "Glm4MoeForCausalLM", "deepseek_v4": "DeepseekV4ForCausalLM"}
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
    elif method == "draft_model" and model is not None and ("eagle-" in model.lower() or "eagle3" in model.lower()):
        # vLLM's detection chain tests the draft id before "draft_model" (speculative.py): an EAGLE name wins
        method = "eagle" if "eagle-" in model.lower() else "eagle3"
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
    if method in DRAFT_CHECKPOINT_METHODS:
        if not model:
            raise SpecConfigError(f"method {method} needs the draft model id in \"model\"")
        if k is None:
            raise SpecConfigError(f"method {method} needs num_speculative_tokens (the draft's config has no "
                                  "n_predict; vLLM raises without it)")
    if method == "mtp" and model is not None:
        raise SpecConfigError("method mtp with a separate \"model\": reportgen models the target checkpoint's own "
                              "MTP layers only (leave model out, as vLLM's default does)")
    dtp = raw.get("draft_tensor_parallel_size")
    if dtp is not None and (isinstance(dtp, bool) or not isinstance(dtp, int) or dtp < 1):
        raise SpecConfigError(f"draft_tensor_parallel_size: expected a whole number >= 1, got {dtp!r}")
    eager = raw.get("enforce_eager")
    return SpecDecode(method, model if method in DRAFT_CHECKPOINT_METHODS else None, k, dtp,
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
    # per max_num_batched_tokens token: the proposer's persistent buffers (model-dtype elements and fixed
    # bytes, ``proposer_buffers``) and what the target's forward keeps alive for the draft (EAGLE-3's three
    # auxiliary hidden states, model-dtype elements)
    buffer_elems_t: int = 0
    buffer_bytes_t: int = 0
    fwd_elems_t: int = 0


def proposer_buffers(hidden: int, extra_input_slots: bool) -> tuple[int, int]:
    """(model-dtype elements, fixed bytes) per ``max_num_batched_tokens`` token of the persistent buffers
    ``SpecDecodeBaseProposer.__init__`` allocates on the GPU (llm_base_proposer.py @00c4f22d), allocated with
    the model runner so inside vLLM's non-KV memory: ``hidden_states`` and ``inputs_embeds`` ([T, draft
    hidden] in the model dtype; ``get_inputs_embeds_size`` is the hidden size of a text draft), ``input_ids``
    and ``arange`` (int32), ``positions`` and ``_slot_mapping_buffer`` (int64), and with extra input slots
    (draft_model: ``pass_hidden_states_to_model`` false) the two bool token masks.  M-RoPE positions
    ([3, T + 1] int64 instead of [T]) and the per-request buffers (``max_num_seqs`` rows) are not counted."""
    return 2 * hidden, 4 + 4 + 8 + 8 + (2 if extra_input_slots else 0)


def _refused(sd: SpecDecode, why: str) -> Draft:
    return Draft(sd.method, sd.num_speculative_tokens or 0, label=f"{sd.method} (not modelled)",
                 reason=f"speculative decoding ({sd.method}): {why}")


def resolve(spec: ModelSpec, sd: SpecDecode, draft_spec: ModelSpec | None = None) -> Draft:
    """The draft of ``sd`` for the target ``spec`` (``draft_spec``: the draft model's own spec, method
    ``draft_model``).  A draft reportgen cannot price comes back with ``reason`` set."""
    if any(getattr(l, "state", None) is not None for l in spec.layers_kv):
        return _refused(sd, "a hybrid target's recurrent-state layers hold num_speculative_tokens more conv rows "
                            "and vLLM's spec-decode state blocks differ; not modelled")
    if sd.quantization not in (None, "None") and sd.method not in DRAFT_CHECKPOINT_METHODS:
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
    if sd.method in EAGLE_METHODS:
        return _eagle(spec, sd, draft_spec)
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
    if any(l.compressed is not None for l in spec.layers_kv) and len(_draft_groups(spec)) > 1:
        return _refused(sd, f"{n_mtp} MTP layers whose sliding caches fall in different KV-cache groups: vLLM's "
                            "validate_same_kv_cache_group asserts one group for all draft layers")
    w = _weights_spec(spec, spec.mtp_tensors, f"{spec.model_type}-mtp")
    gib_note = f"{n_mtp} MTP layer{'s' if n_mtp > 1 else ''} (embedding and lm_head shared with the target)"
    be, bb = proposer_buffers(spec.hidden_size, False)
    be += (spec.mtp_hidden_states or spec.hidden_size) - spec.hidden_size   # DeepSeek-V4: hc_mult x H hidden_states
    return Draft("mtp", k, w, tuple(spec.mtp_layers_kv), n_mtp, f"mtp k={k}: {gib_note}", buffer_elems_t=be,
                 buffer_bytes_t=bb)


def _draft_groups(spec: ModelSpec) -> set[int]:
    """DeepSeek-V4: the KV-cache groups (estimate/compressed.py) the MTP layers' caches land in."""
    from . import compressed as cm

    n = len(spec.layers_kv)
    groups = cm.kv_groups(cm.layer_caches(list(spec.layers_kv) + list(spec.mtp_layers_kv)))
    return {gi for gi, g in enumerate(groups) for c in g.caches if c.layer >= n}


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
    be, bb = proposer_buffers(draft.hidden_size, True)
    return Draft("draft_model", k, draft, tuple(draft.layers_kv), draft.num_layers,
                 f"draft_model k={k}: {sd.model} ({draft.num_layers} layers, own embedding and lm_head)",
                 buffer_elems_t=be, buffer_bytes_t=bb)


@dataclass(frozen=True, eq=False)
class EagleDraftConfig:
    """An EAGLE / EAGLE-3 head as ``draft_spec_for`` resolves it: the draft's config.json (``config``), its
    id, and -- when reportgen has the draft checkpoint's safetensors header listing -- the tensor names in it
    (``checkpoint_names``; None = not known).  The tensors are built per target (``resolve``): whether vLLM
    shares the embedding depends on the target's hidden size."""

    model: str
    config: dict
    checkpoint_names: frozenset | None = None


# the draft classes vLLM's EAGLEConfig names (configs/eagle.py: "Eagle" / "Eagle3" + the draft's architecture,
# unless it already starts with it or, EAGLE-3, ends with "Eagle3") that reportgen models
EAGLE_CLASSES = {"eagle": ("EagleLlamaForCausalLM",),                                # llama_eagle.py
                 "eagle3": ("Eagle3LlamaForCausalLM", "LlamaForCausalLMEagle3",       # llama_eagle3.py
                            "Eagle3Qwen3ForCausalLM")}                                # qwen3_eagle3.py


# head classes whose vLLM file was read and is not priced, with what stops it
EAGLE_REFUSED = {
    # llama4_eagle.py @06bfb261
    "EagleLlama4ForCausalLM": "llama4_eagle.py (@06bfb261) builds one Llama4DecoderLayer named at the target's layer "
    "count (start_layer_id), so whether the draft layer is MoE or dense (interleave_moe_layer_step) and whether its "
    "attention is chunked-local (no_rope_layers, padded by that count) follow the target's depth; a MoE draft layer "
    "and a chunked-attention draft KV group are not modelled",
    # deepseek_eagle.py @0c58615d
    "EagleDeepseekV3ForCausalLM": "deepseek_eagle.py (@0c58615d) builds DeepseekV2DecoderLayer(s) named from the "
    "target's layer count, so each draft layer is MoE or dense by first_k_dense_replace / moe_layer_freq at that "
    "index (an MoE draft layer with its routed experts) and has MLA attention, beside enorm / hnorm / norm, "
    "fc (2H -> H) and its own lm_head; a draft with MoE layers is not modelled",
    # minicpm_eagle.py @04028200
    "EagleMiniCPMForCausalLM": "minicpm_eagle.py (@04028200) drafts for MiniCPM targets, which reportgen does not "
    "model, and builds the head's linears with the target's quantization config (vllm_config.quant_config)",
}


def eagle_class(method: str, arch: str) -> str:
    """vLLM's ``EAGLEConfig`` architecture rename for ``method`` (configs/eagle.py)."""
    if method == "eagle":
        return arch if arch.startswith("Eagle") else f"Eagle{arch}"
    return arch if arch.startswith("Eagle3") or arch.endswith("Eagle3") else f"Eagle3{arch}"


def speculators_config(cfg: dict):
    """A speculators-format head config (``speculators_model_type``, the layer's config in
    ``transformer_layer_config``) as vLLM's ``SpeculatorsConfig.extract_transformers_pre_trained_config``
    turns it into the draft's config (configs/speculators/base.py and algos.py ``update_eagle3``, index copies
    ids 54215747661 / 66701344259): the layer config plus ``draft_vocab_size``, ``target_hidden_size``,
    ``norm_before_residual``, ``norm_before_fc``, ``fc_norm``, ``norm_output``, the aux layer ids, and the
    class by the layer's model_type (qwen3 -> Eagle3Qwen3ForCausalLM, llama -> Eagle3LlamaForCausalLM; older
    vLLM releases build every eagle3 speculator as Eagle3LlamaForCausalLM).  A reason string when the
    config is not an EAGLE-3 speculator reportgen follows."""
    kind = cfg.get("speculators_model_type")
    if kind != "eagle3":
        return f"a speculators-format {kind!r} config is not modelled (modelled: eagle3)"
    layer = cfg.get("transformer_layer_config") or cfg.get("transformer_config")
    if not isinstance(layer, dict):
        return "a speculators-format config without transformer_layer_config"
    out = dict(layer)
    out["draft_vocab_size"] = cfg.get("draft_vocab_size")
    if cfg.get("target_hidden_size") is not None:
        out["target_hidden_size"] = cfg["target_hidden_size"]
    out["norm_before_residual"] = cfg.get("norm_before_residual", True)
    for k in ("norm_before_fc", "fc_norm", "norm_output"):
        out[k] = cfg.get(k, False)
    model_type = out.get("model_type", "llama")
    classes = {"qwen3": "Eagle3Qwen3ForCausalLM", "llama": "Eagle3LlamaForCausalLM"}
    if model_type not in classes:
        return f"a speculators eagle3 layer of model_type {model_type!r} (vLLM raises: llama or qwen3 only)"
    out["architectures"] = [classes[model_type]]
    if cfg.get("eagle_aux_hidden_state_layer_ids"):
        out["eagle_aux_hidden_state_layer_ids"] = cfg["eagle_aux_hidden_state_layer_ids"]
    return out


def _eagle(spec: ModelSpec, sd: SpecDecode, ed) -> Draft:
    """An EAGLE (``llama_eagle.py``) or EAGLE-3 (``llama_eagle3.py``) head, as vLLM builds and shares it.

    Every module below is allocated when the draft is built; ``_maybe_share_embeddings`` /
    ``_maybe_share_lm_head`` (llm_base_proposer.py) then replace the draft's embedding / lm_head by the
    target's -- freeing the draft's -- when the checkpoint has no such tensor (``process_eagle_weight``
    sets ``has_own_*`` from the weight names) or when ``torch.equal`` finds it equal to the target's.  The
    equality is a property of the weights, not of any config: where the checkpoint has (or may have) the
    tensor, the draft's copy is priced (the upper bound) and the label says so."""
    if ed is None:
        return _refused(sd, f"the draft model {sd.model!r} could not be resolved")
    if not isinstance(ed, EagleDraftConfig):
        return _refused(sd, f"the draft {sd.model!r} was not resolved as an EAGLE head")
    cfg = ed.config
    if "speculators_model_type" in cfg or "transformer_layer_config" in cfg or "transformer_config" in cfg:
        cfg = speculators_config(cfg)
        if isinstance(cfg, str):
            return _refused(sd, f"draft {ed.model}: {cfg}")
    arch = eagle_class(sd.method, (cfg.get("architectures") or ["?"])[0])
    if arch in EAGLE_REFUSED:
        return _refused(sd, f"draft {ed.model}: vLLM builds it as {arch}: {EAGLE_REFUSED[arch]}")
    if spec.is_mla:
        return _refused(sd, "an EAGLE head on an MLA target: the draft's GQA cache beside the target's latent "
                            "cache is not modelled")
    if arch not in EAGLE_CLASSES[sd.method]:
        return _refused(sd, f"draft {ed.model}: vLLM builds it as {arch}, whose model file reportgen has not "
                            f"followed (modelled: {', '.join(EAGLE_CLASSES[sd.method])})")
    qwen3 = arch == "Eagle3Qwen3ForCausalLM"
    eagle_cfg = cfg.get("eagle_config") or {}
    later = [k for k in ("norm_before_fc", "fc_norm", "norm_output") if cfg.get(k) or eagle_cfg.get(k)]
    if later and not qwen3:
        return _refused(sd, f"draft {ed.model}: {', '.join(later)} set -- norms that later llama_eagle3.py versions "
                            "add (vLLM PR #42143 and after), not in the version reportgen follows (@00bd1493)")
    if cfg.get("quantization_config") is not None:
        return _refused(sd, f"draft {ed.model}: a quantized EAGLE checkpoint (its own quantization_config) is "
                            "not modelled")
    try:
        f = Fields(None, cfg)
        g = geometry(f)                         # the fields every family reads (head_dim null -> H // heads)
        inter = f.int("intermediate_size")
    except ConfigError as e:
        return _refused(sd, f"draft {ed.model}: config lacks a usable {e}")
    h, n_kv, hd, n_layers, vocab = g.hidden, g.n_kv, g.head_dim, g.n_layers, g.vocab
    eagle3 = sd.method == "eagle3"
    # vLLM's Llama and Qwen3 attention read the head's layer_types (llama_eagle3.py @00bd1493 stores
    # target_layer_count "for proper layer_types indexing in draft models"): a sliding draft layer
    if any(t == "sliding_attention" for t in (cfg.get("layer_types") or [])[:n_layers]):
        return _refused(sd, f"draft {ed.model}: sliding-window draft layers (a KV group of their own beside the "
                            "target's full-attention group; vLLM wants one group for all draft layers) are not modelled")
    names = ed.checkpoint_names
    has = (lambda key: None) if names is None else (lambda key: any(key in n for n in names))
    # vLLM llama.py LlamaDecoderLayer: attention_bias (or bias) on qkv and o, qkv_bias overriding qkv;
    # llama_eagle3.py rebuilds qkv_proj with bias = attention_bias
    # (qwen3_eagle3.py @055e47c2: Qwen3Attention, o_proj without bias, q_norm / k_norm over head_dim)
    ab = bool(cfg.get("attention_bias") or cfg.get("bias")) and not qwen3
    qkv_b = bool(cfg.get("attention_bias")) if eagle3 else bool(cfg.get("qkv_bias", ab))
    # the head's layers are its family's decoder layers (families/common.py), built by the same parts: EAGLE's
    # layer 0 without input_layernorm (an Identity in vLLM), EAGLE-3's layer 0 reading [embeds, hidden] (2H)
    # and a hidden_norm in every layer
    parts = dict(qkv_bias=qkv_b, o_bias=ab, qk_norm="head" if qwen3 else None)
    attention = gqa_attention(g, **parts)
    first = gqa_attention(g, **parts, in_dim=2 * h) if eagle3 else attention
    mlp = swiglu_mlp(h, inter, bias=bool(cfg.get("mlp_bias")))
    ts: list = []
    for i in range(n_layers):
        decoder_layer(ts, i, h, attention=first if i == 0 else attention, mlp=mlp, input_norm=eagle3 or i > 0)
        if eagle3:
            B.norm(ts, f"model.layers.{i}.hidden_norm", h, i)
    notes = []
    aux = 0
    if eagle3:
        B.norm(ts, "model.norm", h, None)
        if eagle_cfg.get("use_aux_hidden_state", True):
            n_aux = 3
            if qwen3:       # qwen3_eagle3.py: num_aux_layers / num_aux_hidden_states / len(aux layer ids), else 3
                ids = cfg.get("eagle_aux_hidden_state_layer_ids") or eagle_cfg.get("eagle_aux_hidden_state_layer_ids")
                n_aux = int(cfg.get("num_aux_layers") or cfg.get("num_aux_hidden_states") or (len(ids) if ids else 3))
            # the target's forward returns the auxiliary hidden states (hidden + residual at n_aux layers),
            # alive to its end: n_aux x target hidden per batched token in the profile run's forward
            aux = n_aux * spec.hidden_size
            t_h = int(cfg.get("target_hidden_size") or h)
            fc_in = n_aux * t_h                                     # ReplicatedLinear over the aux hidden states
            B.linear(ts, "model.fc", fc_in, h, Shard.REPLICATED, Component.OTHER, None, quantizable=True)
            if qwen3 and bool(eagle_cfg.get("norm_before_fc", cfg.get("norm_before_fc", False))):
                B.norm(ts, "model.input_norm", fc_in, None)
            if qwen3 and cfg.get("fc_norm"):
                for j in range(n_aux):
                    B.norm(ts, f"model.fc_norm.{j}", t_h, None)
            notes.append(f"fc {fc_in}->{h}")
        dv = int(cfg.get("draft_vocab_size") or vocab)
        own_head = has("lm_head")
        if own_head is False:
            notes.append("lm_head shared (not in the checkpoint)")
        else:
            ts.append(Tensor("lm_head.weight", (dv, h), Shard.VOCAB, Component.LM_HEAD, None))
            if dv != spec.vocab_size:               # torch.equal on tensors of other shapes is False: certain
                notes.append(f"own lm_head {dv} rows")
            else:
                notes.append(f"own lm_head {dv} rows (upper bound: shared when torch.equal with the target's)")
        # draft_id_to_target_id: an int64 nn.Parameter of draft_vocab_size, built whether or not d2t is loaded
        ts.append(Tensor("draft_id_to_target_id", (dv,), Shard.REPLICATED, Component.OTHER, None, dtype_bytes=8))
    else:
        B.linear(ts, "model.fc", 2 * h, h, Shard.REPLICATED, Component.OTHER, None, quantizable=False)  # nn.Linear
        if cfg.get("add_para_norm"):                             # HASS heads (llama_eagle.py @00da9231)
            B.norm(ts, "model.embedding_layernorm", h, None)
            B.norm(ts, "model.hidden_states_layernorm", h, None)
        notes.append(f"fc {2 * h}->{h}, lm_head shared")
    # the embedding: EAGLE's load_weights skips embed_tokens at pp 1 but still marks has_own_embed_tokens, so
    # torch.equal then compares the target's with an unloaded tensor: kept unless the checkpoint lacks it
    target_h = spec.hidden_size
    own_embed = has("embed_tokens")
    if own_embed is False and target_h == h:
        notes.append("embedding shared (not in the checkpoint)")
    else:
        ts.append(Tensor("model.embed_tokens.weight", (vocab, h), Shard.VOCAB, Component.EMBEDDING, None))
        if target_h != h:
            notes.append(f"own embedding (hidden {h} != target's {target_h})")
        else:
            notes.append("own embedding (upper bound: vLLM shares it when the checkpoint lacks it or torch.equal "
                         "finds it equal to the target's" + ("" if names is not None else
                                                              "; no safetensors header listing of the draft") + ")")
    w = ModelSpec(model_type=str(cfg.get("model_type") or "llama"), architectures=(arch,), family=f"{sd.method}-head",
                  dtype=spec.dtype, hidden_size=h, vocab_size=vocab, num_layers=n_layers, num_attention_heads=g.n_heads,
                  num_kv_heads=n_kv, head_dim=hd, rope_caches=(), tensors=ts,
                  quantization_config=cfg.get("quantization_config"), checkpoint_tensors=None)
    kv = tuple(LayerKV(AttentionKind.FULL, n_kv, hd, hd) for _ in range(n_layers))
    k = int(sd.num_speculative_tokens)
    be, bb = proposer_buffers(h, False)
    return Draft(sd.method, k, w, kv, n_layers,
                 f"{sd.method} k={k}: {ed.model} ({n_layers} layer{'s' if n_layers > 1 else ''}; {'; '.join(notes)})",
                 buffer_elems_t=be, buffer_bytes_t=bb, fwd_elems_t=aux)


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


def draft_from_config(sd: SpecDecode, config: dict, model_id: str, extra=None, checkpoint_names=None):
    """The ``draft_spec`` of a resolved draft config: a ModelSpec (method draft_model: the draft is a whole
    model) or an ``EagleDraftConfig`` (eagle / eagle3: the head's tensors are built per target by
    ``resolve``).  ``checkpoint_names``: the draft checkpoint's tensor names when known."""
    if sd.method in EAGLE_METHODS:
        return EagleDraftConfig(model_id, dict(config),
                                None if checkpoint_names is None else frozenset(checkpoint_names))
    from reportgen.arch import build_spec

    return build_spec(config, model_id=model_id, extra=extra)


def draft_tp_reason(sd: SpecDecode | None, tp: int) -> str | None:
    """vLLM's ``_verify_and_get_draft_tp`` plus what reportgen models (the draft at the target's TP)."""
    if sd is None or sd.draft_tensor_parallel_size is None or sd.draft_tensor_parallel_size == tp:
        return None
    if sd.draft_tensor_parallel_size != 1:
        return (f"draft_tensor_parallel_size {sd.draft_tensor_parallel_size} is neither 1 nor tp ({tp}): "
                "vLLM refuses")
    return (f"speculative decoding with draft_tensor_parallel_size 1 under tp {tp}: not modelled (V1 builds the "
            "draft with the target's parallel config)")


__all__ = ["SpecDecode", "Draft", "EagleDraftConfig", "draft_from_config", "EAGLE_METHODS", "DRAFT_CHECKPOINT_METHODS", "SpecConfigError", "parse_speculative_config", "resolve", "draft_tp_reason",
           "MODELLED_METHODS", "DEEPSEEK_MTP_TYPES", "MTP_TYPES"]
