"""Phi-4-multimodal, Hugging Face format (``phi4_multimodal``, ``Phi4MultimodalForCausalLM``).

Follows vLLM ``vllm/model_executor/models/phi4_multimodal.py`` @f8cc4535 (read in full at
f8cc4535048bc8c56280b93a1b143ab74ed311be) and its tower ``idefics2_vision_model.py`` @68137261; shapes
are transformers 5.24 ``modeling_phi4_multimodal.py`` (a flat config: the text fields at the top level,
``vision_config`` and ``audio_config`` sub-configs, class defaults when absent).

* Language model: vLLM builds ``Phi3ForCausalLM`` on the same config (``init_vllm_registered_model(...,
  architectures=["Phi3ForCausalLM"])``), i.e. ``families/phi.py``'s phi3 stack (fused ``qkv_proj`` /
  ``gate_up_proj`` split by shard class, RMSNorms, lm_head tied by ``tie_word_embeddings``).
* Image tower (``Phi4MMImageEmbedding``): ``Idefics2VisionTransformer(vision_config,
  require_post_norm=False, num_hidden_layers_override=n + feature_layer + 1`` (negative index) or
  ``feature_layer + 1``), no ``quant_config``: patch Conv2d + position embedding replicated, per layer
  LayerNorms replicated, ``qkv_proj`` a multi-head QKVParallelLinear (COLUMN), ``out_proj`` / ``fc2`` row,
  ``fc1`` column.  Its ``load_weights`` skips ``head.``, ``post_layernorm.`` and layers past the
  override: transformers builds all three (``Phi4MultimodalVisionModel`` always has the pooling head), so
  they are ``spec.unloaded_params``.  ``global_img_feature_extensor`` / ``sub_img_feature_extensor``
  plain parameters (replicated).  Projector ``img_projection`` (``Phi4MMProjector``: ``up``
  ColumnParallelLinear, ``down`` RowParallelLinear, both biased, no quant_config; the checkpoint's
  ``img_projection_up`` / ``_down``).
* Audio tower (``Phi4MMAudioEmbedding``): the conformer encoder -- ``encoder_embedding.global_mean`` /
  ``global_invstd`` (vLLM ``nn.Parameter``s, transformers buffers: ``allocated_only``), the NeMo conv
  subsampling and the relative attention bias (transformers' own modules, replicated), per block two
  macaron MLPs (LayerNorm, ``gate_up_proj`` MergedColumnParallelLinear, ``down_proj`` row, biased),
  attention (q/k/v -> multi-head QKVParallelLinear COLUMN, ``o_proj`` row, biased), the conv module
  (transformers' ``Phi4MultimodalAudioConvModule``: GLU point-wise conv, depthwise-separable conv,
  point-wise conv, LayerNorm -- replicated) and two LayerNorms; built without quant_config.  Projectors
  ``speech_projection`` and ``vision_speech_projection`` (``Phi4MMProjector``; the checkpoint's
  ``up_proj_for_speech`` / ``down_proj_for_speech`` / ``..._for_vision_speech``).
* Towers and projectors are ``Component.VISION`` (vision / audio), ``layer=None``, never quantizable.
  vLLM builds both towers whatever ``--limit-mm-per-prompt`` says (no ``_mark_tower_model`` at this
  commit): ``estimate/encoder.TOWERS_ALWAYS_BUILT``.

LoRA (decided): the transformers model has no LoRA parameters (``modeling_phi4_multimodal.py`` has no
adapter modules; the meta-device count is the base model only), and the HF-format checkpoint ships the
vision and speech abilities as separate PEFT adapters (``vision-lora``, ``speech-lora``) that vLLM
applies per request under ``--enable-lora`` (``SupportsLoRA``; ``max_lora_rank`` 320 for the speech
adapter).  vLLM's LoRA GPU buffers (stacked A/B tensors of ``max_loras x max_lora_rank`` per wrapped
language-model linear, plus the punica metadata) are allocated by its ``vllm/lora`` code, which was not
read at a commit consistent with this file: they are NOT priced, and the spec's notes say so.

Encoder budget: ``mm_item_tokens`` is the largest item vLLM profiles -- ``get_image_size_with_most_features``
(``image_size`` x ``image_size * dynamic_hd``) through ``_compute_num_image_tokens``, with the image
processor's ``dynamic_hd`` 36 (transformers' and the published processor's) and the 241,000-sample dummy
audio (``_AUDIO_MAX_SOUNDFILE_SIZE`` at 16 kHz, compression rate 8, downsample 1); the larger wins.
For the shipped geometry: ``(36 + 1) * 16 * 17 + 1`` = 10,065 image tokens vs 188 audio tokens.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families import multimodal, phi, vision
from reportgen.arch.fields import Fields, prevalidate
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor

V = C.VISION
IMAGE = "model.embed_tokens_extend.image_embed"
AUDIO = "model.embed_tokens_extend.audio_embed"
TOWER = f"{IMAGE}.img_processor"
_LAYER = re.compile(r"\.encoder\.layers\.(\d+)\.")
# the image processor's dynamic_hd (transformers Phi4MultimodalImageProcessorFast and the published
# preprocessor config) and the audio item vLLM profiles (phi4_multimodal.py: _AUDIO_MAX_SOUNDFILE_SIZE, 16 kHz
# feature extractor with audio_compression_rate 8, audio_downsample_rate 1)
DYNAMIC_HD = 36
AUDIO_SAMPLES, AUDIO_COMPRESSION, AUDIO_DOWNSAMPLE = 241_000, 8, 1
LORA_NOTE = ("LoRA not priced: Phi-4-multimodal's vision and speech abilities are PEFT adapters vLLM serves with "
             "--enable-lora (vision-lora / speech-lora, --max-lora-rank 320); their GPU buffers (max_loras x "
             "max_lora_rank A/B stacks per language-model linear) are not in this estimate")


def precheck(config: Mapping[str, Any]) -> None:
    """Before parsing: the sub-configs are objects of the right type; the fields vLLM reads are in range, and
    the biases vLLM's Phi3 stack would add (``attention_bias`` / ``mlp_bias``, which transformers' text model
    ignores) are absent."""
    for sub, kind in (("vision_config", "phi4_multimodal_vision"), ("audio_config", "phi4_multimodal_audio")):
        raw = config.get(sub)
        if raw is None:
            continue
        if not isinstance(raw, Mapping):
            raise ConfigError(sub, f"must be an object, got {type(raw).__name__}")
        mt = raw.get("model_type", kind)
        if mt != kind:
            raise Unsupported(f"phi4_multimodal with a {mt!r} {sub} is not supported")
        prevalidate(raw, f"{sub}.")
        if sub == "audio_config" and raw.get("head_dim") is not None:
            raise Unsupported("phi4_multimodal with audio_config.head_dim: transformers sizes the audio attention by "
                              "it, vLLM's Phi4MultimodalAudioAttention by hidden_size // num_attention_heads")
    for name in ("attention_bias", "mlp_bias"):
        if config.get(name):
            raise Unsupported(f"phi4_multimodal with {name}: vLLM's Phi3 (Llama) layers add biases transformers' "
                              "Phi4Multimodal text model does not have")


def image_tower(v: Fields) -> tuple[list[Tensor], int, int, int]:
    """(tensors vLLM loads, checkpoint parameters it skips, layers kept, tower hidden size)."""
    n = v.int("num_hidden_layers")
    idx = v.get("feature_layer", -2)
    if not isinstance(idx, int) or isinstance(idx, bool):
        raise v.err("feature_layer", f"must be an integer, got {idx!r}")
    keep = n + idx + 1 if idx < 0 else idx + 1
    if not 0 <= keep <= n:
        raise v.err("feature_layer", f"{idx} is outside the tower's {n} layers (vLLM builds {keep})")
    full: list[Tensor] = []
    h = vision.siglip(full, v, TOWER, head=True)   # Phi4MultimodalVisionModel: SigLIP with its pooling head
    kept, unloaded = [], 0
    for t in full:
        m = _LAYER.search(t.name)
        if (m and int(m.group(1)) >= keep) or ".post_layernorm." in t.name or ".head." in t.name:
            unloaded += t.numel
        else:
            kept.append(t)
    return kept, unloaded, keep, h


def _rep(ts: list[Tensor], name: str, shape: tuple[int, ...], **kw) -> None:
    ts.append(Tensor(name, shape, S.REPLICATED, V, None, **kw))


def _conv(ts: list[Tensor], name: str, out_c: int, in_per_group: int, *kernel: int) -> None:
    _rep(ts, f"{name}.weight", (out_c, in_per_group, *kernel))
    _rep(ts, f"{name}.bias", (out_c,))


def _ln(ts: list[Tensor], name: str, dim: int) -> None:
    B.norm(ts, name, dim, None, comp=V, bias=True)


def nemo_final_size(input_size: int, time_reduction: int) -> int:
    """transformers ``Phi4MultimodalAudioConfig.__post_init__``: the frequency bins left after subsampling."""
    size = input_size
    for _ in range(int(math.log2(time_reduction))):
        size = math.floor((size - 1) / 2 + 1)
    return size


def audio_tower(ts: list[Tensor], a: Fields, prefix: str = f"{AUDIO}.encoder") -> int:
    """The conformer encoder (``Phi4MultimodalAudioModel``); returns its hidden size."""
    h = a.int("hidden_size")
    inter = a.int("intermediate_size")
    heads = a.int("num_attention_heads")
    if h % heads:
        raise a.err("num_attention_heads", f"{heads} does not divide hidden_size {h} (vLLM's "
                                           "Phi4MultimodalAudioAttention raises)")
    n_blocks = a.int("num_blocks")
    tr = a.int("time_reduction")
    if tr % 2:
        raise a.err("time_reduction", f"must be a multiple of 2, got {tr}")
    chans = a.int("nemo_conv_channels")
    inp = a.int("input_size")
    ext, dsep, mult, k = (a.int("ext_pw_out_channel"), a.int("depthwise_separable_out_channel"),
                          a.int("depthwise_multiplier"), a.int("kernel_size"))
    buckets = a.int("bias_max_distance") * (1 if a.flag("bias_symmetric") else 2)
    # mean / variance normalisation: buffers in transformers, nn.Parameters in vLLM (Phi4MMAudioMeanVarianceNormLayer)
    for name in ("global_mean", "global_invstd"):
        _rep(ts, f"{prefix}.encoder_embedding.{name}", (inp,), allocated_only=True)
    # NeMo conv subsampling: conv.0 (1 -> C), then per further halving a depthwise conv and a point-wise conv
    e = f"{prefix}.embed"
    _conv(ts, f"{e}.conv.0", chans, 1, 3, 3)
    for j in range(int(math.log2(tr)) - 1):
        _conv(ts, f"{e}.conv.{2 + 3 * j}", chans, 1, 3, 3)
        _conv(ts, f"{e}.conv.{3 + 3 * j}", chans, chans, 1, 1)
    B.linear(ts, f"{e}.out", chans * nemo_final_size(inp, tr), h, S.REPLICATED, V, None, bias=True)
    _rep(ts, f"{prefix}.relative_attention_bias_layer.bias_values.weight", (buckets, heads))
    for i in range(n_blocks):
        p = f"{prefix}.encoders.{i}"
        for ff in ("feed_forward_in", "feed_forward_out"):
            _ln(ts, f"{p}.{ff}.layer_norm", h)
            B.linear(ts, f"{p}.{ff}.gate_up_proj", h, 2 * inter, S.COLUMN, V, None, bias=True)
            B.linear(ts, f"{p}.{ff}.down_proj", inter, h, S.ROW, V, None, bias=True)
        for name in ("q_proj", "k_proj", "v_proj"):
            B.linear(ts, f"{p}.self_attn.{name}", h, h, S.COLUMN, V, None, bias=True)
        B.linear(ts, f"{p}.self_attn.o_proj", h, h, S.ROW, V, None, bias=True)
        c = f"{p}.conv"
        _ln(ts, f"{c}.layer_norm", h)
        _conv(ts, f"{c}.glu.ext_pw_conv_1d", 2 * ext, h, 1)
        _rep(ts, f"{c}.glu.b1", (1, ext, 1))
        _rep(ts, f"{c}.glu.b2", (1, ext, 1))
        _conv(ts, f"{c}.dw_sep_conv_1d.dw_conv", h * mult, 1, k)
        _conv(ts, f"{c}.dw_sep_conv_1d.pw_conv", dsep, h * mult, 1)
        _conv(ts, f"{c}.ext_pw_conv_1d", ext, h, 1)
        _ln(ts, f"{p}.layer_norm_att", h)
        _ln(ts, f"{p}.layer_norm", h)
    return h


def projector(ts: list[Tensor], up: str, down: str, in_f: int, h_t: int) -> None:
    """``Phi4MMProjector``: ``up`` ColumnParallelLinear, GELU, ``down`` RowParallelLinear, biased."""
    B.linear(ts, up, in_f, h_t, S.COLUMN, V, None, bias=True)
    B.linear(ts, down, h_t, h_t, S.ROW, V, None, bias=True)


def image_item_tokens(image_size: int, patch: int, dynamic_hd: int = DYNAMIC_HD) -> int:
    """vLLM ``Phi4MMProcessingInfo._compute_num_image_tokens`` for its largest image (``image_size`` wide,
    ``image_size * dynamic_hd`` high: one column of ``dynamic_hd`` crops, no padding); 0 when vLLM's own
    assertions (image size a multiple of the patch, an even patch grid) would fail."""
    if image_size % patch or (image_size // patch) % 2:
        return 0
    half = image_size // patch // 2
    # hd patches + hd newlines + global patches + separator + global newlines
    return dynamic_hd * half * half + dynamic_hd * half + half * half + 1 + half


def audio_item_tokens(samples: int = AUDIO_SAMPLES) -> int:
    """vLLM ``get_audio_num_frames`` (400-sample window, 160 hop) then ``_compute_audio_embed_size``."""
    frames = (samples - 400) // 160 + 1
    compressed = -(-frames // AUDIO_COMPRESSION)          # ceil
    return -(-compressed // AUDIO_DOWNSAMPLE)


def build(f: Fields, spec: ModelSpec) -> None:
    vis, aud = multimodal.sub_fields(f, spec, "vision_config", "audio_config")
    phi.build(f, spec)                          # the phi3 stack (f.model_type is not "phi")
    ts = spec.tensors
    h_t = spec.hidden_size
    kept, unloaded, keep, h_v = image_tower(vis)
    ts.extend(kept)
    _rep(ts, f"{IMAGE}.global_img_feature_extensor", (1, 1, h_v))
    _rep(ts, f"{IMAGE}.sub_img_feature_extensor", (1, 1, 1, h_v))
    projector(ts, f"{IMAGE}.img_projection_up", f"{IMAGE}.img_projection_down", h_v, h_t)
    h_a = audio_tower(ts, aud)
    a_in = h_a * aud.int("downsample_rate")
    for kind in ("speech", "vision_speech"):
        projector(ts, f"{AUDIO}.up_proj_for_{kind}", f"{AUDIO}.down_proj_for_{kind}", a_in, h_t)
    # vLLM builds towers and projectors without quant_config: they stay in the model dtype
    ts[:] = [dataclasses.replace(t, quantizable=False) if t.component is V and t.quantizable else t for t in ts]
    tower_heads = (vis.int("num_attention_heads"), aud.int("num_attention_heads"))

    spec.unloaded_params += unloaded
    n = vis.int("num_hidden_layers")
    spec.notes.append(f"vLLM builds the image tower up to feature_layer={vis.get('feature_layer', -2)!r} ({keep} of "
                      f"{n} layers) without post_layernorm and the pooling head: {unloaded:,} checkpoint parameters "
                      "are not loaded")
    spec.notes.append(f"vision and audio tower attention is split by heads ({tower_heads[0]} / {tower_heads[1]}): "
                      "vLLM needs tensor-parallel sizes that divide both")
    spec.notes.append(LORA_NOTE)
    image = image_item_tokens(vis.int("image_size"), vis.int("patch_size"))
    # per modality: vLLM's MultiModalBudget (budget.py @03ff0a31) takes the max over the modalities left by the limits
    spec.mm_item_tokens_by_modality = {"image": image, "audio": audio_item_tokens()}
    spec.mm_item_tokens = max(image, audio_item_tokens())
    spec.notes.append(f"largest multimodal item: {spec.mm_item_tokens:,} tokens (image {image:,} at dynamic_hd "
                      f"{DYNAMIC_HD}, audio {audio_item_tokens():,})")
    spec.multimodal = True
