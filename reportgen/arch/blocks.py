"""Building blocks: the tensors of a linear, a norm, an attention block, an MLP, an expert bank.

Why here and not in each family: the sharding class of a tensor is a vLLM
fact about its role (PRODUCT §3), not about the family.  Families only say
*which* blocks a layer has and with which widths / biases; the block decides
the shapes (``(out_features, in_features)`` like the checkpoint) and the
shard class:

* Q, gate, up, MLA q_b / kv_b  -> COLUMN (bias too)
* o, down                      -> ROW (bias REPLICATED: added after the all-reduce)
* K, V (weight and bias)       -> KV
* norms, routers, MLA down-projections and their norms -> REPLICATED
* embedding, lm_head           -> VOCAB
* routed experts               -> EXPERT, one entry per tensor kind, ``count`` = experts,
  shape of ONE expert; gate and up are FUSED (``gate_up_proj``, ``(2*I, H)``) as vLLM's
  FusedMoE w13 stores them.

Component classes follow the oracle's naming so the per-component counts can
be tested: q/k norms and attention sinks belong to ATTENTION, decoder-layer
norms to NORM, the qwen2-moe ``shared_expert_gate`` to ROUTER.
"""

from __future__ import annotations

from reportgen.arch.spec import Component, Shard, Tensor

C = Component
S = Shard


def linear(ts: list[Tensor], name: str, in_f: int, out_f: int, shard: Shard, comp: Component,
           layer: int | None, *, bias: bool = False, count: int = 1, quantizable: bool = True) -> None:
    """A Linear weight ``(out, in)`` and optionally its bias ``(out,)``."""
    ts.append(Tensor(f"{name}.weight", (out_f, in_f), shard, comp, layer, count, quantizable))
    if bias:
        bias_shard = S.REPLICATED if shard is S.ROW else shard
        ts.append(Tensor(f"{name}.bias", (out_f,), bias_shard, comp, layer, count, False))


def norm(ts: list[Tensor], name: str, dim: int, layer: int | None, *, comp: Component = C.NORM,
         bias: bool = False) -> None:
    """RMSNorm (weight) or LayerNorm (weight + bias): replicated on every rank."""
    ts.append(Tensor(f"{name}.weight", (dim,), S.REPLICATED, comp, layer))
    if bias:
        ts.append(Tensor(f"{name}.bias", (dim,), S.REPLICATED, comp, layer))


def embedding(ts: list[Tensor], vocab: int, hidden: int, name: str = "model.embed_tokens") -> None:
    ts.append(Tensor(f"{name}.weight", (vocab, hidden), S.VOCAB, C.EMBEDDING, None))


def lm_head(ts: list[Tensor], vocab: int, hidden: int, *, tied: bool, bias: bool = False) -> None:
    """Untied: its own (vocab, hidden) weight.  Tied: nothing but a bias if the head has one (phi).

    Not marked quantizable: AWQ/GPTQ/FP8 checkpoints keep lm_head in the
    unquantized dtype unless the scheme says otherwise (estimate.quant decides).
    """
    if not tied:
        ts.append(Tensor("lm_head.weight", (vocab, hidden), S.VOCAB, C.LM_HEAD, None))
    if bias:
        ts.append(Tensor("lm_head.bias", (vocab,), S.VOCAB, C.LM_HEAD, None))


def attention(ts: list[Tensor], layer: int | None, prefix: str, hidden: int, n_q: int, n_kv: int,
              head_dim: int, *, qkv_bias: bool = False, o_bias: bool = False, fused_qkv: bool = False,
              o_name: str = "o_proj", comp: Component = C.ATTENTION, quantizable: bool = True,
              in_dim: int | None = None) -> None:
    """q/k/v/o of grouped-query attention.  ``in_dim``: the width q/k/v read when it is not ``hidden``
    (an EAGLE-3 head's first layer reads ``[embeds, hidden]``, 2 x hidden); o always writes ``hidden``.

    ``fused_qkv`` (phi3 ``qkv_proj``): one checkpoint tensor, split here into
    its Q part (COLUMN) and K / V parts (KV) with exact row counts.
    """
    q_out, kv_out = n_q * head_dim, n_kv * head_dim
    qkv_in = hidden if in_dim is None else in_dim
    if fused_qkv:
        names = (f"{prefix}.qkv_proj[q]", f"{prefix}.qkv_proj[k]", f"{prefix}.qkv_proj[v]")
    else:
        names = (f"{prefix}.q_proj", f"{prefix}.k_proj", f"{prefix}.v_proj")
    linear(ts, names[0], qkv_in, q_out, S.COLUMN, comp, layer, bias=qkv_bias, quantizable=quantizable)
    linear(ts, names[1], qkv_in, kv_out, S.KV, comp, layer, bias=qkv_bias, quantizable=quantizable)
    linear(ts, names[2], qkv_in, kv_out, S.KV, comp, layer, bias=qkv_bias, quantizable=quantizable)
    linear(ts, f"{prefix}.{o_name}", q_out, hidden, S.ROW, comp, layer, bias=o_bias, quantizable=quantizable)


def gated_mlp(ts: list[Tensor], layer: int | None, prefix: str, hidden: int, inter: int, comp: Component,
              *, bias: bool = False, fused: bool = False) -> None:
    """SwiGLU-style gate/up/down.  ``fused`` (phi3 ``gate_up_proj``) is split into its two COLUMN halves."""
    if fused:
        linear(ts, f"{prefix}.gate_up_proj[gate]", hidden, inter, S.COLUMN, comp, layer, bias=bias)
        linear(ts, f"{prefix}.gate_up_proj[up]", hidden, inter, S.COLUMN, comp, layer, bias=bias)
    else:
        linear(ts, f"{prefix}.gate_proj", hidden, inter, S.COLUMN, comp, layer, bias=bias)
        linear(ts, f"{prefix}.up_proj", hidden, inter, S.COLUMN, comp, layer, bias=bias)
    linear(ts, f"{prefix}.down_proj", inter, hidden, S.ROW, comp, layer, bias=bias)


def plain_mlp(ts: list[Tensor], layer: int | None, prefix: str, hidden: int, inter: int, comp: Component,
              *, bias: bool = True, names: tuple[str, str] = ("fc1", "fc2"), quantizable: bool = True) -> None:
    """Two-matrix MLP (GELU): fc1 COLUMN, fc2 ROW."""
    linear(ts, f"{prefix}.{names[0]}", hidden, inter, S.COLUMN, comp, layer, bias=bias, quantizable=quantizable)
    linear(ts, f"{prefix}.{names[1]}", inter, hidden, S.ROW, comp, layer, bias=bias, quantizable=quantizable)


def experts(ts: list[Tensor], layer: int, prefix: str, hidden: int, inter: int, n_experts: int,
            *, bias: bool = False) -> None:
    """Routed experts: fused gate_up ``(2*I, H)`` and down ``(H, I)``, ``count`` = number of experts.

    Expert biases (gpt-oss) keep the EXPERT shard: they live with their expert.
    """
    linear(ts, f"{prefix}.gate_up_proj", hidden, 2 * inter, S.EXPERT, C.ROUTED_EXPERTS, layer,
           bias=bias, count=n_experts)
    linear(ts, f"{prefix}.down_proj", inter, hidden, S.EXPERT, C.ROUTED_EXPERTS, layer,
           bias=bias, count=n_experts)


def router(ts: list[Tensor], layer: int, name: str, hidden: int, n_experts: int, *, bias: bool = False) -> None:
    """The MoE gate: replicated, never quantized."""
    linear(ts, name, hidden, n_experts, S.REPLICATED, C.ROUTER, layer, bias=bias, quantizable=False)


def moe(ts: list[Tensor], layer: int, prefix: str, hidden: int, inter: int, n_experts: int, shared_inter: int = 0) -> None:
    """A routed MoE MLP: router ``gate``, ``experts`` of width ``inter`` and, when ``shared_inter``, one
    fused ``shared_experts`` SwiGLU of that width (DeepSeek-style; shared experts are COLUMN / ROW)."""
    router(ts, layer, f"{prefix}.gate", hidden, n_experts)
    experts(ts, layer, f"{prefix}.experts", hidden, inter, n_experts)
    if shared_inter:
        gated_mlp(ts, layer, f"{prefix}.shared_experts", hidden, shared_inter, C.SHARED_EXPERTS)
