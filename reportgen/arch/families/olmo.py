"""OLMo-2 / OLMo-3 decoders (olmo2, olmo3: vLLM ``olmo2.py`` Olmo2ForCausalLM) and OLMoE (olmoe, vLLM ``olmoe.py``).

One layer = q/k/v/o without biases + q_norm / k_norm over the WHOLE projection
(``num_heads * head_dim`` and ``num_kv_heads * head_dim``, not per head) + SwiGLU
MLP + two post-norms (``post_attention_layernorm``, ``post_feedforward_layernorm``;
no input norm).  Read from transformers 5.24 ``modeling_olmo3.py`` / ``modeling_olmo2.py``
and vLLM ``vllm/model_executor/models/olmo2.py``:

* vLLM builds ``q_norm = RMSNorm(hidden_size)`` and ``k_norm = RMSNorm(total_num_kv_heads * head_dim)``
  at full width on every rank and all-gathers q / k before normalising (``_apply_qk_norm``): the
  norms are REPLICATED, not TP-sharded.
* vLLM's native file takes ``head_dim = hidden_size // num_attention_heads`` and ``bias=False``
  everywhere; a config with another ``head_dim`` or ``attention_bias`` is built as transformers' class
  does (its ``head_dim``, q/k/v/o biases) and priced only from the release whose Transformers backend
  builds that class (``served_from``: olmo2 0.26, olmo3 0.29, olmoe 0.34 -- ``BACKEND_RELEASE``).

Per vLLM release (estimate/tf_backend.py): olmo2 is built by the native ``olmo2.py`` in 0.10 - 0.25 and by the
Transformers backend from 0.26 (vllm 0.26.0 sdist registry.py:660); olmo3 by ``olmo2.py`` (0.10 - 0.25),
``olmo3.py`` (0.26 - 0.28) and the backend from 0.29 (registry.py:691); olmoe by ``olmoe.py`` until 0.33 and
the backend (``TransformersMoEForCausalLM``) from 0.34 (registry.py:800).  The backend's per-rank shards are the
native ones (fused QKV, rowwise o_proj, GLU-fused MLP, FusedMoE experts, the whole-projection q/k norms full
width on every rank as ``TPAwareRMSNorm``: vllm 0.26.0 sdist transformers/fusers/rms_norm.py:80-112); it keeps
no get_rope cos_sin_cache (``tf_backend.spec_for_release``).
* olmo3: a layer is sliding (``sliding_window``) when ``layer_types[i] == "sliding_attention"``
  (vLLM's per-layer window), full otherwise; rope scaling applies to full layers only (sliding
  layers get the default rope: a second rotary cache when the config scales) -- transformers 5
  nests the rope parameters per layer type the same way, so rope.py's per-layer-type rule holds.

TP above ``num_key_value_heads`` (``k_norm_tp_rule``, ``ModelSpec.tp_invalid``; docs/decisions.md "TP above the
KV-head count per release"): vLLM's QKVParallelLinear then gives each rank one replicated KV head, which the
whole-projection ``k_norm`` cannot take.  The native files (olmo2.py / olmo3.py / olmoe.py; olmo_hybrid.py too)
all-gather k over the tp ranks -- tp x head_dim values -- into an ``RMSNorm(num_key_value_heads x head_dim)``:
vLLM 0.10 - 0.19 raise "Expected hidden_size to be ..." (RMSNorm.forward_static), 0.20 on a torch broadcast error
from ``vllm.ir`` rms_norm -- start-up fails at every tp > num_key_value_heads.  The Transformers backend's
``TPAwareRMSNorm`` raises "Cannot gather norm of width ..." unless ``num_key_value_heads`` is 1 (then every rank
holds the whole k and normalises it as is: priced, one replicated KV head a rank).  tp that does not divide
``num_attention_heads``, or neither divides ``num_key_value_heads``, is the generic rule (estimate/tables.py).

OLMoE (transformers ``modeling_olmoe.py``, vLLM ``olmoe.py``): pre-norm (``input_layernorm``,
``post_attention_layernorm``), the same whole-projection q/k norms (vLLM: replicated, all-gather),
router ``gate`` (E x H, replicated) and ``num_experts`` routed experts of ``intermediate_size``
(FusedMoE), no shared expert.  vLLM's native OlmoeForCausalLM always builds its own ``lm_head`` (it never
ties), so a tied config -- like ``attention_bias`` and a foreign ``head_dim`` -- is priced as transformers
builds it (tied head) from 0.34 on only.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.families.common import geometry, set_moe, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers, model_window_fallback
from reportgen.arch.spec import Component as C, ModelSpec


# the first vLLM release that builds each architecture through the Transformers backend (transformers' class, not
# the native file): vllm 0.26.0 sdist registry.py:660 (Olmo2ForCausalLM), 0.29.0 registry.py:691 (Olmo3ForCausalLM),
# 0.34.0 registry.py:800 (OlmoeForCausalLM) -- estimate/tf_backend.py BACKEND_FROM
BACKEND_RELEASE = {"olmo2": (0, 26), "olmo3": (0, 29), "olmoe": (0, 34)}


# vLLM's words at tp > num_key_value_heads, per release; {tp} / {width} (tp x head_dim) filled per layout
_GATHER = ("num_key_value_heads ({n_kv}) on vLLM {releases} ({where}): each rank holds one replicated KV head and "
           "{cls}._apply_qk_norm all-gathers k over the {{tp}} ranks ({{tp}} x {hd} = {{width}} values) into "
           "k_norm = RMSNorm(num_key_value_heads x head_dim = {w}): ")
_FORWARD_STATIC = ("RMSNorm raises ValueError(\"Expected hidden_size to be {w}, but found: {{width}}\") in the start-up's "
                   "profile run (vllm 0.10.0 sdist layernorm.py:132 .. 0.19.1 layernorm.py:242: the torch.compile "
                   "default runs the native RMSNorm; --enforce-eager runs the CUDA rms_norm kernel instead, which "
                   "never checks the weight's width and reads past it)")
_IR_NATIVE = ("RMSNorm calls vllm.ir rms_norm, whose native implementation (the torch.compile default: "
              "platforms/cuda.py get_default_ir_op_priority) multiplies by the weight and torch raises "
              "RuntimeError(\"The size of tensor a ({{width}}) must match the size of tensor b ({w}) at "
              "non-singleton dimension 1\") while compiling (vllm 0.20.0 .. 0.34.0 sdist ir/ops/layernorm.py:20; "
              "--enforce-eager runs the vllm_c kernel, which never checks the weight's width and reads past it)")
_BACKEND = ("num_key_value_heads ({n_kv}) on vLLM {first}+ (Transformers backend): each rank's k is one replicated KV "
            "head ({hd} wide) and the k_norm TPAwareRMSNorm ({w} wide) raises ValueError(\"Cannot gather norm of "
            "width {w}: a TP-sharded input of width {hd} does not tile it evenly across {{tp}} ranks (replicated or "
            "uneven sharding).\") (vllm 0.26.0 sdist transformers/fusers/rms_norm.py:94-100 .. 0.34.0 :121-127)")

# per family: (first release served, [(first release, last release or None, where, class), ...] for the native
# model files, each cited at its k_norm / _apply_qk_norm lines), the Transformers-backend release (BACKEND_RELEASE)
NATIVE_FILES = {
    "olmo2": ((0, 10), [("olmo2.py", "Olmo2Attention", "vllm 0.10.0 sdist olmo2.py:105,139-145 .. 0.25.1 "
                         "olmo2.py:113,160-167", (0, 25))]),
    "olmo3": ((0, 11), [("olmo2.py", "Olmo2Attention", "vllm 0.11.0 sdist olmo2.py:107,154-160 .. 0.25.1 "
                         "olmo2.py:113,160-167", (0, 25)),
                        ("olmo3.py", "Olmo3Attention", "vllm 0.26.0 .. 0.28.0 sdist olmo3.py:113,158-165", (0, 28))]),
    "olmoe": ((0, 10), [("olmoe.py", "OlmoeAttention", "vllm 0.10.0 sdist olmoe.py:151,176-182 .. 0.33.0 "
                         "olmoe.py:165,190-197", (0, 33))]),
    "olmo_hybrid": ((0, 18), [("olmo_hybrid.py", "OlmoHybridAttention", "vllm 0.18.0 sdist olmo_hybrid.py:637,"
                               "680-687 .. 0.34.0 olmo_hybrid.py:120,164-171", None)]),
}
IR_RMS_NORM = (0, 20)     # the first release whose RMSNorm (no residual) goes through vllm.ir rms_norm


def _release_range(first: tuple[int, int], last: tuple[int, int] | None) -> str:
    lo = f"{first[0]}.{first[1]}"
    return f"{lo}+" if last is None else f"{lo} - {last[0]}.{last[1]}"


def k_norm_tp_rule(spec: ModelSpec, family: str, n_kv: int, head_dim: int) -> None:
    """``spec.tp_invalid`` (the oldest release's failure) and its later forms (``from_release``; the Transformers
    backend's in ``backend_changes``) for tp > ``n_kv``: see the module docstring."""
    first, files = NATIVE_FILES[family]
    w = n_kv * head_dim
    # (first release, failure) -- native files split at the vllm.ir switch, then the backend
    steps: list[tuple[tuple[int, int], str]] = []
    start = first
    for where, cls, cite, last in files:
        for lo, hi, tail in ((start, min(last or (9, 9), (IR_RMS_NORM[0], IR_RMS_NORM[1] - 1)), _FORWARD_STATIC),
                             (max(start, IR_RMS_NORM), last, _IR_NATIVE)):
            if hi is not None and hi < lo:
                continue
            head = _GATHER.format(n_kv=n_kv, releases=_release_range(lo, hi), where=f"{where}: {cite}", cls=cls,
                                  hd=head_dim, w=w)
            steps.append((lo, head + tail.format(w=w)))
        start = (last[0], last[1] + 1) if last else None
    spec.tp_invalid = (n_kv, steps[0][1], head_dim)
    spec.from_release = tuple(spec.from_release) + tuple((lo, "tp_invalid", (n_kv, text, head_dim))
                                                         for lo, text in steps[1:])
    if family in BACKEND_RELEASE:
        b = BACKEND_RELEASE[family]
        # n_kv == 1: k is whole on every rank, TPAwareRMSNorm normalises it without a gather (rms_norm.py:121)
        spec.backend_changes = dict(spec.backend_changes, tp_invalid=None if n_kv == 1 else (
            n_kv, _BACKEND.format(n_kv=n_kv, first=f"{b[0]}.{b[1]}", hd=head_dim, w=w), head_dim))


def check(f: Fields, native_only: list[str]):
    """The shared geometry; what vLLM's native OLMo attention cannot build (a foreign head_dim, biases) goes to
    ``native_only`` -- transformers' class honours both, and the Transformers backend builds that class."""
    family = f.model_type
    g = geometry(f)
    if g.head_dim * g.n_heads != g.hidden:
        native_only.append(f"{family} with head_dim {g.head_dim} != hidden_size / num_attention_heads: vLLM's "
                           "native file ignores head_dim, transformers uses it")
    if f.flag("attention_bias"):
        native_only.append(f"{family} with attention_bias=true: vLLM's native {family} attention has no biases")
    return g


def native_only_from(spec: ModelSpec, family: str, native_only: list[str]) -> None:
    """Price a config only the Transformers backend builds from its first release on (``served_from``)."""
    if native_only:
        spec.served_from = (BACKEND_RELEASE[family], "; ".join(native_only))


def attention(ts: list, i: int, g, bias: bool = False) -> None:
    """q/k/v/o (biases per ``attention_bias``: transformers' class) and the whole-projection q/k norms
    (replicated) of layer ``i``."""
    p = f"model.layers.{i}.self_attn"
    B.attention(ts, i, p, g.hidden, g.n_heads, g.n_kv, g.head_dim, qkv_bias=bias, o_bias=bias)
    B.norm(ts, f"{p}.q_norm", g.n_heads * g.head_dim, i, comp=C.ATTENTION)
    B.norm(ts, f"{p}.k_norm", g.n_kv * g.head_dim, i, comp=C.ATTENTION)


def build_olmoe(f: Fields, spec: ModelSpec) -> None:
    native_only: list[str] = []
    g = check(f, native_only)
    bias = f.flag("attention_bias")
    if g.tie:
        native_only.append("olmoe with tie_word_embeddings=true: vLLM's native OlmoeForCausalLM always allocates "
                           "its own lm_head")
    n_exp = f.int("num_experts")
    inter = f.int("intermediate_size")
    set_moe(spec, f, n_exp)
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i)
        attention(ts, i, g, bias)
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
        B.router(ts, i, f"{p}.mlp.gate", g.hidden, n_exp)
        B.experts(ts, i, f"{p}.mlp.experts", g.hidden, inter, n_exp)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
    k_norm_tp_rule(spec, "olmoe", g.n_kv, g.head_dim)
    native_only_from(spec, "olmoe", native_only)


def build(f: Fields, spec: ModelSpec) -> None:
    native_only: list[str] = []
    g = check(f, native_only)
    bias = f.flag("attention_bias")
    inter = f.int("intermediate_size")
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        attention(ts, i, g, bias)
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)
        B.norm(ts, f"{p}.post_feedforward_layernorm", g.hidden, i)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    # olmo3 states the window per layer (layer_types, always derived by its config class); an olmo2
    # config carrying a sliding_window would get it on every layer (vLLM's cache_config fallback)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
    if f.model_type == "olmo3":
        spec.layers_kv = model_window_fallback(f, spec.layers_kv)
        # the backend (0.29 on) keeps transformers' Olmo3RotaryEmbedding: an inv_freq + original_inv_freq pair
        # (fp32, head_dim / 2) per layer type the config lists, even when both types share their rope parameters
        # (transformers 5.25 modeling_olmo3.py Olmo3RotaryEmbedding.__init__)
        types = sorted({t for t in (f.get("layer_types") or ()) if isinstance(t, str)}) or ["full_attention"]
        spec.backend_changes = {"rope_caches": ((2, (g.head_dim + 1) // 2, 4),) * len(types)}
    k_norm_tp_rule(spec, f.model_type, g.n_kv, g.head_dim)
    native_only_from(spec, f.model_type, native_only)
