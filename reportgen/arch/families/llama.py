"""Llama-shaped dense decoders: llama, mistral, ministral3, ernie4_5, exaone, qwen2, qwen3, granite, seed_oss, arcee.

One layer = GQA attention (q/k/v/o) + SwiGLU MLP + two RMSNorms; the families
differ only in biases and q/k norms, read from the modeling code of
transformers 5.24:

* llama, granite: q/k/v/o bias = ``attention_bias``; gate/up/down bias = ``mlp_bias``
* mistral: no biases at all (the model code ignores ``attention_bias``)
* ministral3 (Ministral 3, the text model of a mistral3 composite): mistral's maths in transformers
  ``modeling_ministral3.py``; vLLM's registry maps ``Ministral3ForCausalLM`` to its mistral.py
  (Llama layers); ``llama_4_scaling_beta`` in the rope parameters adds no parameters
* ernie4_5: vLLM ``ernie45.py`` (commit 063345cac6c62c5d00d369d93eb75bba6a169162) is LlamaForCausalLM
  with o_proj's bias dropped and non-neox rope; transformers' biases follow ``use_bias``, vLLM's Llama
  ones ``attention_bias`` / ``mlp_bias`` -- any bias flag set is refused, none means identical shapes
* exaone (EXAONE-3.x): transformers builds it with the Llama classes; vLLM ``exaone.py`` (commit
  0531c2226a6a25cd96ccc856f3bda3f0bb4efb5f) has the same shapes under other names (``wte``, ``h``,
  ``attn.attention.out_proj``, ``mlp.c_fc_0/1``, ``c_proj``, ``ln_1/2``, ``ln_f``): q/k/v/o bias =
  ``attention_bias`` (vLLM also ``bias``, refused), MLP bias = ``mlp_bias``, silu only, tie honoured
* qwen2: q/k/v bias always, o without
* qwen3: q/k/v/o bias = ``attention_bias``; per-head RMSNorm ``q_norm`` / ``k_norm`` (head_dim)
* seed_oss: transformers q/k/v bias = ``attention_bias`` (default true), o bias = ``attention_out_bias``,
  MLP bias = ``mlp_bias``; vLLM ``seed_oss.py`` hard-codes q/k/v bias on, o and MLP biases off and
  reads ``head_dim`` (class default 128) -- any other combination is built as transformers' class and
  priced from 0.32 only (the Transformers backend; ``served_from``), refused before

* arcee (AFM, vLLM ``arcee.py``: LlamaAttention + ArceeMLP): llama's biases, but a ReLU^2 MLP of
  ``up_proj`` (COLUMN) and ``down_proj`` (ROW) only -- no gate; vLLM reads ``qkv_bias`` (transformers
  does not), so a config carrying it (or ``bias``) is priced as transformers builds it from 0.32 only
  (``served_from``)

Granite's multipliers and Llama-3's rope scaling add no parameters.

Per vLLM release, seed_oss and arcee: ``seed_oss.py`` / ``arcee.py`` in 0.10 - 0.31; the Transformers backend
from 0.32 (vllm 0.32.0 sdist registry.py:726 / 711; their config classes' plans are the llama one, arcee's
up_proj colwise / down_proj rowwise).  From that release vLLM instantiates the transformers class itself (vllm
sdist ``model_executor/models/transformers/``): the same per-rank shards (fused QKV with a rowwise output
projection, GLU-fused or ``base_model_tp_plan`` MLPs, replicated norms) and KV geometry, but no ``get_rope``
cos_sin_cache -- ``estimate/served.py`` ``spec_for_version`` replaces ``rope_caches`` by the rotary module's
fp32 ``inv_freq`` buffers for those releases (``estimate/tf_backend.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention, swiglu_mlp
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Tensor


@dataclass(frozen=True, slots=True)
class Biases:
    qkv: bool
    o: bool
    mlp: bool
    qk_norm: bool = False


# vLLM 0.32 serves ArceeForCausalLM / SeedOssForCausalLM through its Transformers backend (vllm 0.32.0 sdist
# registry.py:711 / 726): a config only transformers' class builds is priced from then on (``served_from``)
BACKEND_RELEASE = (0, 32)


def biases(model_type: str, f: Fields, native_only: list[str] | None = None) -> Biases:
    """The biases vLLM builds.  arcee / seed_oss: transformers' (what the backend builds from 0.32); where the
    native file builds other biases the difference goes to ``native_only``."""
    native_only = [] if native_only is None else native_only
    if model_type == "exaone":
        act = f.get("hidden_act")
        if act != "silu":
            raise Unsupported(f"exaone with activation {act!r}: vLLM's ExaoneGatedMLP accepts silu only")
        if f.raw.get("bias"):
            raise Unsupported("exaone with bias=true: transformers ignores it, vLLM loads attention biases")
        ab = f.flag("attention_bias")
        return Biases(ab, ab, f.flag("mlp_bias"))
    if model_type in ("llama", "granite", "arcee"):
        if model_type == "arcee" and "qkv_bias" in f.raw:
            native_only.append("arcee with qkv_bias: vLLM's native arcee.py reads it, transformers ignores it")
        ab = f.flag("attention_bias")
        return Biases(ab, ab, f.flag("mlp_bias"))
    if model_type in ("mistral", "ministral3"):
        for name in ("attention_bias", "mlp_bias", "bias"):
            if f.raw.get(name):
                raise Unsupported(f"mistral with {name}=true: transformers ignores it, vLLM loads a bias")
        return Biases(False, False, False)
    if model_type == "ernie4_5":
        for name in ("use_bias", "attention_bias", "mlp_bias", "bias"):
            if f.raw.get(name):
                raise Unsupported(f"ernie4_5 with {name}=true: vLLM's ernie45.py (Llama layers, o_proj bias dropped) "
                                  "and transformers build different biases")
        return Biases(False, False, False)
    if model_type == "qwen2":
        return Biases(True, False, False)
    if model_type == "qwen3":
        ab = f.flag("attention_bias")
        return Biases(ab, ab, False, qk_norm=True)
    if model_type == "seed_oss":
        if not f.flag("attention_bias", True):
            native_only.append("seed_oss with attention_bias=false: vLLM's native seed_oss.py always loads q/k/v "
                               "biases")
        for name in ("attention_out_bias", "mlp_bias"):
            if f.flag(name):
                native_only.append(f"seed_oss with {name}=true: vLLM's native seed_oss.py has no such bias")
        # transformers 5.25 modeling_seed_oss.py: q/k/v attention_bias, o_proj attention_out_bias, MLP mlp_bias
        return Biases(f.flag("attention_bias", True), f.flag("attention_out_bias"), f.flag("mlp_bias"))
    raise Unsupported(f"model_type {model_type} is not a llama-shaped family")


def build(f: Fields, spec: ModelSpec) -> None:
    model_type = f.model_type
    native_only: list[str] = []
    if model_type in ("llama", "arcee") and f.raw.get("bias"):
        why = f"{model_type} with bias=true: transformers ignores it, vLLM's native file loads attention biases"
        if model_type == "llama":
            raise Unsupported(why)
        native_only.append(why)
    g = geometry(f)
    b = biases(model_type, f, native_only)
    inter = f.int("intermediate_size")

    def relu2_mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.plain_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP, bias=b.mlp, names=("up_proj", "down_proj"))

    mlp = relu2_mlp if model_type == "arcee" else swiglu_mlp(g.hidden, inter, bias=b.mlp)

    attention = gqa_attention(g, qkv_bias=b.qkv, o_bias=b.o, qk_norm="head" if b.qk_norm else None)
    decoder_stack(spec, f, g, attention=attention, mlp=mlp)
    if native_only:
        if model_type not in ("arcee", "seed_oss"):
            raise Unsupported(native_only[0])
        spec.served_from = (BACKEND_RELEASE, "; ".join(native_only))
