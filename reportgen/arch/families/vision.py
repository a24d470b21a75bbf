"""Vision towers of the supported multimodal models: SigLIP (Gemma-3), Pixtral (Mistral-3), Llama-4's.

All tensors are component VISION with ``layer=None`` (the tower is not part
of the decoder stack's pipeline stages).  Sharding follows vLLM's
implementations: attention q/k/v column-parallel (multi-head: K/V split by
heads like Q), output row-parallel, MLP fc1/gate/up column, fc2/down row;
patch embeddings, position embeddings and norms replicated.

Shapes are the transformers 5.24 ones (verified against the meta-device
oracle: gemma-3-12b 421,290,864; Mistral-Small-3.1 438,958,080 including the
projectors, which live in multimodal.py).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, Shard as S, Tensor

V = C.VISION


def _rep(ts: list[Tensor], name: str, shape: tuple[int, ...]) -> None:
    ts.append(Tensor(name, shape, S.REPLICATED, V, None))


def _heads(f: Fields, hidden: int) -> int:
    n = f.int("num_attention_heads")
    if hidden % n:
        raise f.err("num_attention_heads", f"{n} does not divide hidden_size {hidden}")
    return n


def tower_dims(f: Fields, with_image: bool = True) -> tuple[int, int, int, int, int, int | None]:
    """The fields every vision tower reads: hidden, intermediate, layers, channels, patch, image."""
    h = f.int("hidden_size")
    inter = f.int("intermediate_size")
    n_layers = f.int("num_hidden_layers")
    _heads(f, h)
    ch, patch = f.int("num_channels"), f.int("patch_size")
    image = f.int("image_size") if with_image else None
    if image is not None and image < patch:
        raise f.err("image_size", f"{image} is smaller than patch_size {patch}")
    return h, inter, n_layers, ch, patch, image


def siglip_mlp_quantizable(h: int, inter: int) -> bool:
    """vLLM ``siglip.py`` @0c028ba4 ``SiglipMLP``: fc1 / fc2 get the ``quant_config`` only when ``hidden_size``
    and ``intermediate_size`` are both multiples of 64 (bitsandbytes / torchao excepted; a bitsandbytes checkpoint
    of a so400m tower would quantize them, see docs/architecture.md).  so400m (1152 / 4304): not quantized."""
    return h % 64 == 0 and inter % 64 == 0


def encoder_layer(ts: list[Tensor], p: str, h: int, inter: int, *,
                  norms: tuple[str, str] = ("layer_norm1", "layer_norm2"), out: str = "out_proj",
                  mlp_quantizable: bool = True, attn_bias: bool = True) -> None:
    """One pre-LayerNorm encoder layer under ``p`` (CLIP / SigLIP / Idefics names by default, Llama-4's given):
    LayerNorm, q/k/v and output projection (biased unless ``attn_bias`` is false: Mllama's), LayerNorm,
    biased fc1/fc2 MLP."""
    B.norm(ts, f"{p}.{norms[0]}", h, None, comp=V, bias=True)
    for name in ("q_proj", "k_proj", "v_proj"):
        B.linear(ts, f"{p}.self_attn.{name}", h, h, S.COLUMN, V, None, bias=attn_bias)
    B.linear(ts, f"{p}.self_attn.{out}", h, h, S.ROW, V, None, bias=attn_bias)
    B.norm(ts, f"{p}.{norms[1]}", h, None, comp=V, bias=True)
    B.plain_mlp(ts, None, f"{p}.mlp", h, inter, V, bias=True, quantizable=mlp_quantizable)


def siglip(ts: list[Tensor], f: Fields, prefix: str = "vision_tower.vision_model", *,
           head: bool | None = None, vllm_mlp_rule: bool = False) -> int:
    """SigLIP vision transformer (``SiglipVisionModel``; also Idefics2/3's tower, ``head=False``); returns its
    hidden size.  ``head`` None = the config's ``vision_use_head`` (default true).  ``vllm_mlp_rule``: the MLPs
    (encoder layers and pooling head) are quantizable only as vLLM's ``SiglipMLP`` builds them
    (``siglip_mlp_quantizable``); q/k/v and out_proj always are (``SiglipAttention`` passes ``quant_config``)."""
    h, inter, n_layers, ch, patch, image = tower_dims(f)
    mlp_q = siglip_mlp_quantizable(h, inter) if vllm_mlp_rule else True
    _rep(ts, f"{prefix}.embeddings.patch_embedding.weight", (h, ch, patch, patch))
    _rep(ts, f"{prefix}.embeddings.patch_embedding.bias", (h,))
    _rep(ts, f"{prefix}.embeddings.position_embedding.weight", ((image // patch) ** 2, h))
    for i in range(n_layers):
        encoder_layer(ts, f"{prefix}.encoder.layers.{i}", h, inter, mlp_quantizable=mlp_q)
    B.norm(ts, f"{prefix}.post_layernorm", h, None, comp=V, bias=True)
    if head is None:
        head = f.flag("vision_use_head", True)
    if head:
        # attention-pooling head: probe, nn.MultiheadAttention (fused in_proj), LayerNorm, MLP
        _rep(ts, f"{prefix}.head.probe", (1, 1, h))
        _rep(ts, f"{prefix}.head.attention.in_proj_weight", (3 * h, h))
        _rep(ts, f"{prefix}.head.attention.in_proj_bias", (3 * h,))
        _rep(ts, f"{prefix}.head.attention.out_proj.weight", (h, h))
        _rep(ts, f"{prefix}.head.attention.out_proj.bias", (h,))
        B.norm(ts, f"{prefix}.head.layernorm", h, None, comp=V, bias=True)
        B.plain_mlp(ts, None, f"{prefix}.head.mlp", h, inter, V, bias=True, quantizable=mlp_q)
    return h


def gemma3_siglip(ts: list[Tensor], f: Fields) -> int:
    """Gemma 3's tower: vLLM ``gemma3_mm.py`` @e5fa9450 builds ``SiglipVisionModel(config.vision_config,
    quant_config)`` (whole: ``post_layernorm`` kept), so q/k/v / out_proj take an fp8 / int4 scheme and the MLPs
    follow ``SiglipMLP``'s multiple-of-64 rule (so400m: 4304 -> bf16)."""
    return siglip(ts, f, vllm_mlp_rule=True)


def pixtral(ts: list[Tensor], f: Fields, prefix: str = "vision_tower") -> int:
    """Pixtral vision encoder (RMSNorms, SwiGLU, no biases, 2-D RoPE without parameters)."""
    h, inter, n_layers, ch, patch, _ = tower_dims(f, with_image=False)
    _rep(ts, f"{prefix}.patch_conv.weight", (h, ch, patch, patch))
    B.norm(ts, f"{prefix}.ln_pre", h, None, comp=V)
    for i in range(n_layers):
        p = f"{prefix}.transformer.layers.{i}"
        B.norm(ts, f"{p}.attention_norm", h, None, comp=V)
        for name in ("q_proj", "k_proj", "v_proj"):
            B.linear(ts, f"{p}.attention.{name}", h, h, S.COLUMN, V, None)
        B.linear(ts, f"{p}.attention.o_proj", h, h, S.ROW, V, None)
        B.norm(ts, f"{p}.ffn_norm", h, None, comp=V)
        B.gated_mlp(ts, None, f"{p}.feed_forward", h, inter, V)
    return h


def llama4_vision(ts: list[Tensor], f: Fields, prefix: str = "vision_model") -> int:
    """Llama-4 vision encoder + its pixel-shuffle MLP adapter; returns ``vision_output_dim``."""
    h, inter, n_layers, ch, patch, image = tower_dims(f)
    B.linear(ts, f"{prefix}.patch_embedding.linear", ch * patch * patch, h, S.COLUMN, V, None)
    _rep(ts, f"{prefix}.class_embedding", (h,))
    _rep(ts, f"{prefix}.positional_embedding_vlm", ((image // patch) ** 2 + 1, h))
    B.norm(ts, f"{prefix}.layernorm_pre", h, None, comp=V, bias=True)
    B.norm(ts, f"{prefix}.layernorm_post", h, None, comp=V, bias=True)
    for i in range(n_layers):
        encoder_layer(ts, f"{prefix}.model.layers.{i}", h, inter, norms=("input_layernorm", "post_attention_layernorm"),
                      out="o_proj")
    # pixel-shuffle adapter: fc1 intermediate_size -> projector_input_dim, fc2 output -> output (no biases)
    p_in, p_out = f.int("projector_input_dim"), f.int("projector_output_dim")
    B.linear(ts, f"{prefix}.vision_adapter.mlp.fc1", inter, p_in, S.COLUMN, V, None)
    B.linear(ts, f"{prefix}.vision_adapter.mlp.fc2", p_out, p_out, S.ROW, V, None)
    return f.int("vision_output_dim")
