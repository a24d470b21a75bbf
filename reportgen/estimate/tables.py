"""Per-model precompute: one row per (layout, weight dtype, KV dtype) with stage "slots".

Why slots: the matrix must be polars expressions over millions of cells, but
the worst rank is a max/min over pipeline stages.  Stages of one layout differ
only by a handful of numbers (weights, bytes per KV block, layers, whether it
runs the sampler), so each layout row carries up to ``K`` *distinct* stage
profiles side by side (``w0..wK``, ``bpb0..bpbK`` ...; first stage first, last
stage last).  The per-cell code then takes ``min_horizontal`` across slots --
no group-by, no Python per cell.

Everything that does not depend on the GPU or the cell axes (weights per stage,
KV groups and pages, activation coefficients, non-torch, CUDA graphs, the
model-level validity rules) is computed here once per layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportgen.arch.spec import Component, ModelSpec, Shard

from . import encoder, overheads as oh
from .kvcache import UnsupportedKvDtype, kv_element_bytes, kv_groups
from .layout import Layout, rank_label
from .weights import build_weight_table, stage_weights

GIB = float(1 << 30)
PLAIN_ACT = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """Dimensions the overhead model needs, read off the tensor list (exact, family-agnostic)."""

    hidden: int
    vocab: int
    mlp_cols: float       # dense (or shared-expert) MLP column-parallel width, unsharded (gate+up = 2I)
    moe_topk: int
    moe_cols3: float      # 3 x expert intermediate (gate, up, down), unsharded
    is_moe: bool
    multimodal: bool
    deepstack: int = 0    # Qwen3-VL deepstack levels (encoder.py)


def model_facts(spec: ModelSpec) -> ModelFacts:
    h = max(spec.hidden_size, 1)
    mlp: dict[int, float] = {}
    exp: dict[int, float] = {}
    for t in spec.tensors:
        if t.layer is None:
            continue
        if t.component in (Component.DENSE_MLP, Component.SHARED_EXPERTS) and t.shard is Shard.COLUMN \
                and len(t.shape) == 2:
            mlp[t.layer] = mlp.get(t.layer, 0) + t.numel / h
        elif t.component is Component.ROUTED_EXPERTS and len(t.shape) >= 2:
            exp[t.layer] = exp.get(t.layer, 0) + t.numel
    e = max(spec.num_experts, 1)
    moe_cols3 = (max(exp.values()) / (e * h)) if exp else 0.0
    return ModelFacts(h, spec.vocab_size, max(mlp.values(), default=0.0), spec.experts_per_token,
                      moe_cols3, bool(spec.num_experts and exp), spec.multimodal, encoder.deepstack_levels(spec))


def serving_dtype(spec: ModelSpec, weight_dtype: str) -> str:
    """The dtype vLLM computes in (``--dtype``): a plain what-if sets it; ``auto`` follows the
    checkpoint, except that float32 checkpoints are served in 16-bit (vLLM's auto-dtype rule:
    bfloat16 for Gemma-2/3 and most models on Ampere+; the log of google/gemma-2-9b-it, a
    float32 config, shows bf16 weights)."""
    key = weight_dtype.lower()
    if key in PLAIN_ACT:
        return {4: "float32"}.get(PLAIN_ACT[key], "float16" if "f16" in key or key == "float16" else "bfloat16")
    d = spec.dtype.lower()
    if PLAIN_ACT.get(d, 2) == 4 and key in ("checkpoint", "auto"):
        return "bfloat16"
    return d


def act_bytes_for(weight_dtype: str, spec_or_dtype) -> int:
    """Activation/serving dtype bytes (see ``serving_dtype``)."""
    if isinstance(spec_or_dtype, str):
        key = weight_dtype.lower()
        return PLAIN_ACT[key] if key in PLAIN_ACT else PLAIN_ACT.get(spec_or_dtype.lower(), 2)
    return PLAIN_ACT.get(serving_dtype(spec_or_dtype, weight_dtype), 2)


def scheme_for(spec: ModelSpec, weight_dtype: str):
    """The storage scheme costed for a weight-dtype axis value (quant module owns the bytes)."""
    from . import quant
    if weight_dtype.lower() in ("checkpoint", "auto"):
        if not spec.quantization_config and PLAIN_ACT.get(spec.dtype.lower(), 2) == 4:
            return quant.whatif_scheme("bf16", spec.dtype)      # fp32 checkpoint served in 16-bit
        return quant.checkpoint_scheme(spec)
    return quant.whatif_scheme(weight_dtype, spec.dtype)


def model_rule(spec: ModelSpec, lay: Layout) -> str | None:
    """PRODUCT §3 validity rules that depend on the model only (first broken rule, named)."""
    if spec.num_attention_heads and spec.num_attention_heads % lay.tp:
        return f"num_attention_heads ({spec.num_attention_heads}) % tp ({lay.tp}) != 0"
    n_kv = spec.num_kv_heads
    if not spec.is_mla and n_kv and n_kv % lay.tp and lay.tp % n_kv:
        return f"num_key_value_heads ({n_kv}) and tp ({lay.tp}): neither divides the other"
    if lay.pp > spec.num_layers:
        return f"pp ({lay.pp}) > num_hidden_layers ({spec.num_layers})"
    if lay.ep and not spec.num_experts:
        return "expert parallel needs a MoE model"
    if lay.ep and lay.tp * lay.dp > spec.num_experts:
        return f"expert parallel: tp*dp ({lay.tp * lay.dp}) > num_experts ({spec.num_experts})"
    return None


def non_torch_gib(lay: Layout, is_moe: bool) -> float:
    group = lay.tp * (lay.dp if is_moe else 1)
    if group > 1:
        return oh.NT_COMM_BASE + oh.NT_COMM_PER_RANK * group
    return oh.NT_PP_ONLY if lay.pp > 1 else oh.NT_SINGLE


def graph_gib(layers_on_stage: int, tp: int, hidden: int, is_moe: bool) -> float:
    """CUDA-graph memory of one stage (form and constants in overheads.py)."""
    return (oh.G_BASE + layers_on_stage * (oh.G_PER_LAYER + oh.G_PER_LAYER_WIDTH * hidden / 4096 / tp)
            + (oh.G_MOE if is_moe else 0.0))


def activation_coeffs(f: ModelFacts, lay: Layout, act_b: float, p=oh) -> dict[str, float]:
    """Bytes per batched token / per sampler row (forms in overheads.py; ``p`` = constants,
    overridable by the calibration script)."""
    moe_tp = 1 if lay.ep else lay.tp * lay.dp
    return {
        "a_fwd_t": act_b * (p.ALPHA_MLP * f.mlp_cols / lay.tp + p.BETA_HIDDEN * f.hidden),
        "a_hid_t": p.HIDDEN_KEPT * f.hidden * act_b,
        "a_smp_r": f.vocab * (act_b + p.SAMPLER_BYTES),
        "a_add_t": (p.MOE_WS * f.moe_topk * (f.moe_cols3 / moe_tp + f.hidden) * act_b if f.is_moe else 0.0)
                   + encoder.encoder_bytes_per_token(f.multimodal, f.hidden, act_b, f.deepstack)
                   + (oh.PP_BUFFERS * f.hidden * act_b if lay.pp > 1 else 0.0),
        "warm_r": oh.SAMPLER_WARMUP * f.vocab * 4.0,
    }


def activation_gib(c: dict[str, float], batched_tokens: int, max_num_seqs: int, last_stage: bool) -> float:
    """Scalar twin of the polars expression in ``exprs.gpu_pass`` (calibration, seed API)."""
    t, r = float(batched_tokens), float(min(max_num_seqs, batched_tokens))
    fwd = t * c["a_fwd_t"]
    core = max(fwd, t * c["a_hid_t"] + r * c["a_smp_r"]) if last_stage else fwd
    return (core + t * c["a_add_t"]) / GIB


GROUP_FIELDS = ("n_groups", "n_full", "bs_full", "n_slide", "window", "bs_slide", "n_chunk", "chunk",
                "bs_chunk", "token_block")
SLOT_FIELDS = ("w", "bpb", "g", "last", "label", "tokb")
COEFF_FIELDS = ("a_fwd_t", "a_hid_t", "a_smp_r", "a_add_t", "warm_r")
# one layout row = HEAD + BODY + K slots of SLOT_FIELDS (see ModelTables.row)
HEAD_FIELDS = ("tp", "pp", "dp", "ep", "weight_dtype", "kv_cache_dtype", "pre_status", "pre_reason")
BODY_FIELDS = ("weight_scheme", "kv_note", "nt", "g_max", *COEFF_FIELDS, *GROUP_FIELDS)
_EMPTY_BODY = (None,) * len(BODY_FIELDS)


class ModelTables:
    """Layout rows of one model, memoised: a job crosses hundreds of layouts with a few dtypes,
    and most of a row depends on fewer axes than the row has (dense models ignore dp and ep for
    weights; the KV groups ignore dp, ep and the weight dtype)."""

    def __init__(self, spec: ModelSpec, block_size: int = 16):
        self.spec = spec
        self.block_size = block_size
        self._schemes: dict = {}
        self._kv: dict = {}
        self._body: dict = {}
        self.facts = model_facts(spec) if not spec.unsupported_reason else None

    def _scheme(self, wd: str):
        if wd not in self._schemes:
            act_b = act_bytes_for(wd, self.spec)
            try:
                scheme = scheme_for(self.spec, wd)
                self._schemes[wd] = (scheme, build_weight_table(self.spec, scheme, act_b), act_b, None)
            except Exception as e:  # UnsupportedQuantization and friends: a named reason, not a crash
                self._schemes[wd] = (None, None, act_b, f"{type(e).__name__}: {e}")
        return self._schemes[wd]

    def _groups(self, tp: int, pp: int, kd: str, act_b: float):
        key = (tp, pp, kd, act_b)
        if key not in self._kv:
            try:
                eb = kv_element_bytes(kd, act_b, self.spec)
                self._kv[key] = (kv_groups(self.spec, tp, pp, kd, eb, self.block_size), None)
            except (UnsupportedKvDtype, ValueError) as e:
                self._kv[key] = (None, str(e))
        return self._kv[key]

    def _body_of(self, lay: Layout, wd: str, kd: str):
        """(error, body tuple, flat slots, n slots) for the parts of a row the rules do not touch."""
        moe = self.facts.is_moe
        key = (wd, kd, lay.tp, lay.pp, lay.dp if moe else 1, lay.ep and moe)
        hit = self._body.get(key)
        if hit is not None:
            return hit
        scheme, wtable, act_b, err = self._scheme(wd)
        g, kerr = (None, None) if err else self._groups(lay.tp, lay.pp, kd, act_b)
        if err or kerr:
            hit = (err or kerr, _EMPTY_BODY, (), 0)
        else:
            f = self.facts
            slots, seen, g_max = [], set(), 0.0
            for s, st in enumerate(stage_weights(wtable, lay)):
                layers = st.layers[1] - st.layers[0]
                last = s == lay.pp - 1
                prof = (round(st.bytes), g.stage_bytes_per_block[s], layers, last)
                if prof in seen:
                    continue
                seen.add(prof)
                gg = graph_gib(layers, lay.tp, f.hidden, f.is_moe)
                g_max = max(g_max, gg)
                slots.extend((st.bytes / GIB, g.stage_bytes_per_block[s], gg, last, rank_label(s, st.ep_rank),
                              g.stage_token_bytes[s]))
            co = activation_coeffs(f, lay, act_b)
            body = (getattr(scheme, "name", wd), g.note or None, non_torch_gib(lay, moe), g_max,
                    *(co[c] for c in COEFF_FIELDS), *(getattr(g, x) for x in GROUP_FIELDS))
            hit = (None, body, tuple(slots), len(slots) // len(SLOT_FIELDS))
        self._body[key] = hit
        return hit

    def row(self, lay: Layout, wd: str, kd: str) -> tuple[tuple, tuple, int]:
        """``(head + body, flat slots, n slots)`` for one (layout, weight dtype, KV dtype)."""
        head = (lay.tp, lay.pp, lay.dp, lay.ep, wd, kd)
        if self.spec.unsupported_reason:
            return head + ("unsupported", self.spec.unsupported_reason) + _EMPTY_BODY, (), 0
        err, body, slots, n = self._body_of(lay, wd, kd)
        if err:
            return head + ("unsupported", err) + body, (), 0
        rule = model_rule(self.spec, lay)
        return head + ("invalid_layout" if rule else None, rule) + body, slots, n


def max_len_limit(spec: ModelSpec) -> int | None:
    """The longest ``--max-model-len`` vLLM starts with: the arch layer's derived maximum
    (``spec.max_model_len_limit``, rope scaling applied -- arch/rope.py), else -- a spec built by
    hand -- ``max_position_embeddings``; None (or 0) = no limit."""
    limit = getattr(spec, "max_model_len_limit", None)
    if limit is None:
        limit = spec.max_position_embeddings
    return int(limit) if limit else None


def spec_axes(spec: ModelSpec) -> dict:
    """Model-level columns carried into every result row (``max_pos``: the max_model_len limit)."""
    return {"model_type": spec.model_type, "params_total": spec.params_total,
            "params_active": spec.params_active, "max_pos": max_len_limit(spec)}
