"""Storage layouts: the bytes one quantized weight matrix occupies, part by part.

Why a layout per storage format (not "bits per parameter"): every format stores
more than its nominal bits -- per-channel / per-group / per-block scales, packed
zero points, activation-order indices, global scales -- and the extra depends on
the matrix *shape* (ceil over blocks and groups), not on its element count.
Peers that multiply parameters by 4/8 bits are off by the scale overhead, and
peers that count packed int32 elements as parameters are off by 8x (see
research-peers.md §8 item 4).  Here each layout returns the exact byte count of
each stored part of one ``(out_features, in_features)`` matrix, following the
parameter shapes and dtypes vLLM allocates for that format (which are the
checkpoint's shapes; kernel-specific repacking after loading is discussed per
layout where it changes the size).

Everything is pure integer arithmetic on the shape: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

FP32 = 4      # scales vLLM keeps in float32 (fp8 / int8 weight scales, global scales)
INT32 = 4     # packing word of AWQ / GPTQ / compressed-tensors pack-quantized


def _pack_words(n: int, bits: int) -> int:
    """int32 words holding ``n`` values of ``bits`` bits (GPTQ packs 3-bit across words)."""
    return ceil(n * bits / 32)


@dataclass(frozen=True)
class Plain:
    """Unquantized: every element at ``element_bytes`` (bf16/fp16 = 2, fp32 = 4)."""

    element_bytes: int

    def parts(self, out: int, in_: int) -> dict[str, int]:
        return {"weight": out * in_ * self.element_bytes}


@dataclass(frozen=True)
class Fp8:
    """fp8 e4m3 weight (1 B/element) + float32 scales.

    ``strategy``: "tensor" (one scale per checkpoint tensor -- vLLM keeps one per
    logical shard of a fused layer, which is one per HF tensor), "channel" (one
    per output row, vLLM allocates ``(out, 1)`` float32), or "block" (one per
    ``block_out x block_in`` tile, ``ceil`` on both axes as DeepSeek-V3's
    ``weight_scale_inv``).  ``static_input``: a calibrated float32 input scale
    per tensor (activation_scheme "static", ModelOpt FP8).
    """

    strategy: str = "channel"
    block: tuple[int, int] = (128, 128)
    static_input: bool = False

    def parts(self, out: int, in_: int) -> dict[str, int]:
        if self.strategy == "tensor":
            scale = FP32
        elif self.strategy == "channel":
            scale = out * FP32
        elif self.strategy == "block":
            bo, bi = self.block
            scale = ceil(out / bo) * ceil(in_ / bi) * FP32
        else:  # pragma: no cover - guarded by the parsers
            raise ValueError(f"fp8 strategy {self.strategy!r}")
        p = {"weight": out * in_, "scale": scale}
        if self.static_input:
            p["input_scale"] = FP32
        return p


@dataclass(frozen=True)
class Int8:
    """int8 weight (W8A8, compressed-tensors int-quantized) + float32 weight scales.

    vLLM's W8A8 int8 scheme allocates the weight scale as float32 (``(out, 1)``
    per channel, one per tensor otherwise) whatever the model dtype.  A static
    input scale adds one float32; asymmetric activations add an int8 input
    zero point (static only) and the kernel's int32 ``azp_adj`` per output row.
    """

    strategy: str = "channel"
    static_input: bool = False
    input_asym: bool = False

    def parts(self, out: int, in_: int) -> dict[str, int]:
        p = {"weight": out * in_, "scale": out * FP32 if self.strategy == "channel" else FP32}
        if self.static_input:
            p["input_scale"] = FP32
            if self.input_asym:
                p["input_zero_point"] = 1
        if self.input_asym:
            p["azp_adj"] = out * INT32
        return p


@dataclass(frozen=True)
class IntGroup:
    """Integer weights packed into int32 words with per-group scales (AWQ / GPTQ / wNa16).

    ``packing`` fixes which axis is packed, because the zero points follow it:
      * "gptq": qweight ``(ceil(in*bits/32), out)`` int32, qzeros ``(groups, ceil(out*bits/32))``
      * "awq":  qweight ``(in, ceil(out*bits/32))`` int32, qzeros ``(groups, ceil(out*bits/32))``
      * "ct":   compressed-tensors pack-quantized: weight_packed ``(out, ceil(in*bits/32))``
                int32, zero point ``(ceil(out*bits/32), groups)`` int32, and a
                ``weight_shape`` int64[2] (16 bytes) per matrix.
    ``group_size`` None or -1 means one group over the whole input (per channel).
    Scales are ``(groups, out)`` at ``scale_bytes`` (the model dtype, fp16/bf16,
    which is what vLLM allocates).  ``g_idx``: an int32 group index per input
    column (GPTQ ``desc_act`` / compressed-tensors ``actorder: group``).

    GPTQ is counted as loaded: qweight + scales + qzeros (+ g_idx with
    desc_act).  Two Marlin details move it by < 1 %: for symmetric GPTQ the
    Marlin kernel frees qzeros after loading (-1/256 B per weight at 4-bit,
    ~0.75 %), and with desc_act it adds int32 sort indices (+4 B per input
    column).  Checkpoints also ship g_idx without desc_act; vLLM drops it.
    """

    bits: int
    group_size: int | None
    zero_points: bool
    scale_bytes: int = 2
    packing: str = "gptq"
    g_idx: bool = False

    def groups(self, in_: int) -> int:
        if not self.group_size or self.group_size < 0:
            return 1
        return ceil(in_ / self.group_size)

    def parts(self, out: int, in_: int) -> dict[str, int]:
        g = self.groups(in_)
        if self.packing == "awq":
            weight = in_ * _pack_words(out, self.bits) * INT32
        elif self.packing == "ct":
            weight = out * _pack_words(in_, self.bits) * INT32
        else:
            weight = _pack_words(in_, self.bits) * out * INT32
        p = {"weight": weight, "scale": g * out * self.scale_bytes}
        if self.zero_points:
            p["zero_point"] = g * _pack_words(out, self.bits) * INT32
        if self.g_idx:
            p["g_idx"] = in_ * INT32
        if self.packing == "ct":
            p["weight_shape"] = 2 * 8
        return p


@dataclass(frozen=True)
class Nvfp4:
    """NVFP4: e2m1 nibbles (2 per byte), one fp8 e4m3 scale per 16 inputs, fp32 global scales.

    Same layout for ModelOpt NVFP4 (weight, weight_scale, weight_scale_2,
    input_scale) and compressed-tensors nvfp4-pack-quantized (weight_packed,
    weight_scale, weight_global_scale, input_global_scale).  Weight-only NVFP4
    (W4A16) has no input global scale.  Counted unpadded: vLLM's cutlass path
    swizzles the block scales into 128x4 tiles, which only pads rows to a
    multiple of 128 and scale columns to a multiple of 4 (nil for usual dims).
    """

    group_size: int = 16
    input_scale: bool = True

    def parts(self, out: int, in_: int) -> dict[str, int]:
        p = {
            "weight": out * ceil(in_ / 2),
            "scale": out * ceil(in_ / self.group_size),
            "global_scale": FP32,
        }
        if self.input_scale:
            p["input_scale"] = FP32
        return p


@dataclass(frozen=True)
class Mxfp4:
    """MXFP4 (OCP MX, gpt-oss experts): e2m1 nibbles + one uint8 e8m0 scale per 32 inputs.

    In the checkpoint these are ``<name>_blocks`` (uint8, ``(out, in/32, 16)``)
    and ``<name>_scales`` (uint8, ``(out, in/32)``).  vLLM allocates exactly
    these shapes, except that its MoE backends pad the per-rank intermediate
    and hidden sizes, and the Triton backend re-tiles weights and scales after
    loading -- per-rank effects, see ``Mxfp4MoeBackend``, ``MXFP4_MOE_PADDING``
    and ``Scheme.expert_rank_bytes``.
    """

    block: int = 32

    def parts(self, out: int, in_: int) -> dict[str, int]:
        nb = ceil(in_ / self.block)
        return {"weight": out * nb * self.block // 2, "scale": out * nb}


@dataclass(frozen=True)
class Bnb4:
    """bitsandbytes 4-bit (nf4 / fp4): nibbles + absmax per 64 elements of the flattened matrix.

    Plain: absmax float32 per block + the 16-entry float32 code book.
    Nested (``bnb_4bit_use_double_quant``): absmax itself quantized to uint8,
    with a float32 absmax per 256 blocks, a 256-entry float32 code book and a
    float32 offset -- the QuantState tensors vLLM keeps on the GPU.
    """

    nested: bool = False
    block: int = 64
    nested_block: int = 256

    def parts(self, out: int, in_: int) -> dict[str, int]:
        n = out * in_
        nblocks = ceil(n / self.block)
        p = {"weight": ceil(n / 2), "code": 16 * FP32}
        if self.nested:
            p["scale"] = nblocks  # uint8 absmax
            p["nested_scale"] = ceil(nblocks / self.nested_block) * FP32
            p["nested_code"] = 256 * FP32
            p["offset"] = FP32
        else:
            p["scale"] = nblocks * FP32
        return p


@dataclass(frozen=True)
class Bnb8:
    """bitsandbytes LLM.int8(): int8 weight + one float32 absmax (SCB) per output row."""

    def parts(self, out: int, in_: int) -> dict[str, int]:
        return {"weight": out * in_, "scale": out * FP32}


@dataclass(frozen=True)
class Mxfp4MoeBackend:
    """How one of vLLM's MXFP4 MoE backends holds a rank's routed experts after loading.

    vLLM allocates the experts in ``Mxfp4MoEMethod.create_weights`` with the per-rank
    intermediate size rounded up to ``intermediate_align`` and the hidden size to
    ``hidden_align`` (``oracle/mxfp4.py::mxfp4_round_up_hidden_size_and_intermediate_size``
    in 0.19), then ``process_weights_after_loading`` converts them to the kernel format
    (``convert_to_mxfp4_moe_kernel_format``).  Only the Triton conversion changes the
    byte count beyond that padding:

    * ``value_align`` -- (output-row alignment, packed-byte alignment along the
      reduction axis) of the swizzled fp4 weight that *replaces* the loaded one
      (``_swizzle_mxfp4`` -> triton_kernels ``HopperMXValueLayout``); None = kept as loaded.
    * ``scale_align`` -- (output-row alignment, 32-group alignment) of the swizzled
      e8m0 scales held in the PrecisionConfig; None = no swizzled copy.
    * ``keeps_loaded_scales`` -- the loaded ``w13_weight_scale`` / ``w2_weight_scale``
      parameters stay registered next to the swizzled copy (Triton replaces only the
      weights and biases).
    * ``bias_bytes`` -- element size of the expert biases after loading (Triton and
      FlashInfer TRT-LLM cast them to float32); None = the model dtype.

    Expert biases are ``(E, 2 x intermediate_per_rank_padded)`` for gate_up and
    ``(E, hidden_padded)`` for down on *every* rank (the down bias is not split by TP).
    """

    name: str
    intermediate_align: int = 1
    hidden_align: int = 1
    value_align: tuple[int, int] | None = None
    scale_align: tuple[int, int] | None = None
    keeps_loaded_scales: bool = False
    bias_bytes: int | None = None

    @property
    def padding(self) -> tuple[int, int]:
        """(intermediate-per-rank alignment, hidden alignment) of ``create_weights``."""
        return self.intermediate_align, self.hidden_align


# vLLM's MXFP4 MoE backends (the name is what ``checkpoint_scheme(mxfp4_backend=...)`` takes).
# Which one vLLM picks depends on the GPU, which the scheme does not know:
#   * vLLM >= 0.19 (triton_kernels vendored in vllm/third_party): SM90 (H100/H200) -> "triton"
#     (oracle/mxfp4.py priority list: FLASHINFER_TRTLLM (SM100 only), CK (ROCm), TRITON for
#     (9, 0) <= capability < (11, 0)); logs of 0.19.0 on H100 print "Using 'TRITON' Mxfp4 MoE
#     backend" and "Model loading took 13.64 GiB" (gpt-oss-20b TP1) / 7.01 GiB (TP2).
#   * SM100 (B200/GB200) with FlashInfer -> "sm100_flashinfer" (TRT-LLM MXFP4 x BF16).
#   * SM80 (A100), SM89 and SM120: the Triton kernels are gated to SM90-SM10x -> "marlin"
#     (gpt-oss-20b TP1 on A100, vLLM 0.19.0: 13.72 GiB logged; marlin gives 13.70).
#   * VLLM_USE_FLASHINFER_MOE_MXFP4_BF16=1 on SM90 -> "sm90_flashinfer" (FlashInfer CUTLASS).
#   * vLLM 0.11-0.14 on H100 used the pip triton_kernels v3.5.0, whose Hopper swizzle only
#     pads to its (16-row, 32-byte) tile -> "triton_legacy" (gpt-oss-20b / 120b TP1: 13.47 /
#     64.38 GiB logged; it gives 13.44 / 64.33).
# The Triton value swizzle of the vendored triton_kernels (HopperMXValueLayout.swizzle_data,
# "Pre-pad both matrix dims to multiples of 64") pads the rows and the packed reduction bytes
# (128 fp4 values) to 64; its scale swizzle (HopperMXScaleLayout, num_warps 8) pads rows to
# 2 * num_warps * 2 * 8 = 256 and the 32-groups to 2.  The loaded scales stay as well.
MXFP4_MOE_PADDING = {
    "triton": Mxfp4MoeBackend("triton", 64, 1, value_align=(64, 64), scale_align=(256, 2),
                              keeps_loaded_scales=True, bias_bytes=4),
    "triton_legacy": Mxfp4MoeBackend("triton_legacy", 64, 1, value_align=(16, 32), scale_align=(256, 2),
                                     keeps_loaded_scales=True, bias_bytes=4),
    "marlin": Mxfp4MoeBackend("marlin", 128, 256),
    "sm90_flashinfer": Mxfp4MoeBackend("sm90_flashinfer", 128, 128),
    "sm100_flashinfer": Mxfp4MoeBackend("sm100_flashinfer", 256, 256, bias_bytes=4),
    "none": Mxfp4MoeBackend("none"),
}
DEFAULT_MXFP4_BACKEND = "triton"   # vLLM >= 0.19 on H100 / H200, the reference rows' GPU


def mxfp4_moe_backend(capability: tuple[int, int] | None, version: tuple[int, ...] | None = None,
                      fp8_activations: bool = False) -> str:
    """The ``MXFP4_MOE_PADDING`` key of the backend vLLM picks with ``moe_backend="auto"`` and no env override.

    ``capability`` is the GPU's CUDA compute capability (catalog column ``compute_capability``),
    ``version`` vLLM's (None = current), ``fp8_activations`` the W4A8 experts of DeepSeek-V4
    (``DeepseekV4FP8Config``: MXFP4 weights x fp8 block-128 activations); gpt-oss is W4A16.

    * W4A16 (gpt-oss), vLLM ``fused_moe/oracle/mxfp4.py`` @001eda31 ``select_mxfp4_moe_backend``: priority
      FLASHINFER_TRTLLM_MXFP4_BF16 (SM100 family) > CK (ROCm) > TRITON (``(9, 0) <= capability < (11, 0)``) >
      FLASHINFER_CUTLASS > TRITON_UNFUSED > MARLIN: SM 10.x -> "sm100_flashinfer", SM 9.x -> "triton"
      ("triton_legacy" before 0.15: the pip triton_kernels v3.5.0 of 0.11-0.14), everything else (SM 8.x,
      SM 12.x) -> "marlin".
    * W4A8 (DeepSeek-V4): ``DeepGemmFP4Experts`` (``fused_moe/experts/deep_gemm_moe.py`` @bf1a7d17:
      ``_supports_current_device`` = DeepGEMM and capability family 100 or 120; quant scheme
      ``(kMxfp4Static, kFp8Dynamic128Sym)``) runs ``m_grouped_fp8_fp4_gemm_nt_contiguous`` on the loaded
      ``(E, N, K/2)`` weights viewed as int8: no padding, no swizzled copy -> "none" (row 156's log on
      SM 12.0: ``Using DeepGemmFP4Experts``; the checkpoint layout gives its weights to -0.26 %).  On SM 9.x
      the W4A8 path was not read: the Triton layout stays (the previous default).
    * ``capability`` None (ROCm / not given): the previous default, "triton" (CK's 256/256 padding is not
      modelled per GPU here).
    """
    if capability is None:
        return DEFAULT_MXFP4_BACKEND
    major = capability[0]
    if fp8_activations:
        return "none" if major in (10, 12) else DEFAULT_MXFP4_BACKEND
    if major == 10:
        return "sm100_flashinfer"
    if major in (9,):
        return "triton_legacy" if version is not None and tuple(version[:2]) < (0, 15) else "triton"
    return "marlin"


def round_up(x: int, align: int) -> int:
    return ceil(x / align) * align


def _mxfp4_rank_matrix(rows: int, in_: int, backend: Mxfp4MoeBackend) -> dict[str, int]:
    """One expert matrix of ``rows x in_`` (already padded by create_weights) after loading."""
    nb = ceil(in_ / 32)                      # 32-groups along the reduction axis
    weight, scale = rows * nb * 16, rows * nb
    if backend.value_align is None:
        return {"weight": weight, "scale": scale}
    ra, ka = backend.value_align
    p = {"weight": round_up(rows, ra) * round_up(nb * 16, ka)}
    sr, sg = backend.scale_align or (1, 1)
    p["scale"] = round_up(rows, sr) * round_up(nb, sg)
    if backend.keeps_loaded_scales:
        p["loaded_scale"] = scale
    return p


def mxfp4_expert_rank_parts(out: int, in_: int, moe_tp: int, down: bool, fused_gate_up: bool,
                            padding) -> dict[str, int]:
    """Bytes of one expert's MXFP4 matrix on one rank, after the backend's padding and conversion.

    ``out, in_`` are the unsharded checkpoint dims; experts are column-parallel
    on gate/up (out split by ``moe_tp``) and row-parallel on down (in split).
    ``padding`` is an ``Mxfp4MoeBackend`` (or a bare ``(intermediate, hidden)`` alignment pair).
    """
    backend = padding if isinstance(padding, Mxfp4MoeBackend) else Mxfp4MoeBackend("custom", *padding)
    ai, ah = backend.padding
    if down:
        o, i = round_up(out, ah), round_up(ceil(in_ / moe_tp), ai)
    elif fused_gate_up:
        o, i = 2 * round_up(ceil(out / 2 / moe_tp), ai), round_up(in_, ah)
    else:
        o, i = round_up(ceil(out / moe_tp), ai), round_up(in_, ah)
    return _mxfp4_rank_matrix(o, i, backend)


def mxfp4_expert_bias_rank_bytes(size: int, moe_tp: int, down: bool, fused_gate_up: bool,
                                 padding, model_dtype_bytes: int) -> int:
    """Bytes of one expert's bias on one rank: ``w13_bias`` is ``2 x intermediate_per_rank``
    (padded), ``w2_bias`` the whole (padded) hidden size on every rank."""
    backend = padding if isinstance(padding, Mxfp4MoeBackend) else Mxfp4MoeBackend("custom", *padding)
    ai, ah = backend.padding
    if down:
        n = round_up(size, ah)
    elif fused_gate_up:
        n = 2 * round_up(ceil(size / 2 / moe_tp), ai)
    else:
        n = round_up(ceil(size / moe_tp), ai)
    return n * (backend.bias_bytes or model_dtype_bytes)


# --- NVFP4 MoE experts: the backend vLLM's ``moe_backend="auto"`` picks per GPU, and its layout -----------------
# vLLM ``vllm/model_executor/layers/fused_moe/oracle/nvfp4.py`` @01362014 ``select_nvfp4_moe_backend``: with
# ``moe_backend="auto"`` the first kernel class whose ``is_supported_config`` accepts (device, quant scheme
# (kNvfp4Static, kNvfp4Dynamic), activation, parallel config) wins, in the order FLASHINFER_TRTLLM,
# FLASHINFER_CUTEDSL, FLASHINFER_CUTEDSL_BATCHED (batched activation format only), FLASHINFER_CUTLASS,
# VLLM_CUTLASS, MARLIN, ...  What each accepts (docs/decisions.md "NVFP4 MoE backend per GPU"):
# * FLASHINFER_TRTLLM: the SM 10.x family (``TrtLlmNvFp4Experts*._supports_current_device``).
# * FLASHINFER_CUTLASS (``experts/flashinfer_cutlass_moe.py`` @03063c09 ``FlashInferExperts``): SM 9.0, the
#   10.x and 12.x families, NVFP4 from capability 10.0 on, activations SILU / RELU2_NO_MUL / SWIGLUOAI.  The
#   12.x family was not there at @01f004eb (old path ``fused_moe/flashinfer_cutlass_moe.py``) and was by
#   vllm#39825 (2026-04-14, which narrowed it to exact SM 12.0 for flashinfer <= 0.6.7's missing bf16 Relu2
#   kernel on SM 12.1); vllm#33417 (merged 2026-01-30) added it after 0.15.0 failed on SM 12.0.
# * VLLM_CUTLASS (``CutlassExpertsFp4``): the 10.x / 11.x / 12.x families, any gated activation (row 170's log,
#   Gemma 4's gelu_tanh at 0.20.2: "Using 'VLLM_CUTLASS' NvFp4 MoE backend").
# * MARLIN: anything else with a capability (SM 8.x / 9.x: weight-only NVFP4).
# FlashInfer is assumed installed (vLLM's official image ships it); without it SM 10.x / 12.x would take
# VLLM_CUTLASS.  Per version: ``nvfp4_moe_backend``.
FI_CUTLASS_ACTIVATIONS = ("silu", "relu2_no_mul", "swigluoai")
# the ``moe_backend`` value (vllm_args.MOE_BACKENDS, map_nvfp4_backend) -> this module's NVFP4 backend name
NVFP4_BACKEND_OF_FLAG = {"cutlass": "nvfp4_cutlass", "flashinfer_cutlass": "nvfp4_flashinfer_cutlass",
                         "flashinfer_trtllm": "nvfp4_flashinfer_trtllm", "marlin": "nvfp4_marlin"}


@dataclass(frozen=True)
class Nvfp4MoeBackend:
    """How one of vLLM's NVFP4 MoE backends holds a rank's routed experts after loading
    (``convert_to_nvfp4_moe_kernel_format`` -> ``prepare_nvfp4_moe_layer_for_fi_or_cutlass``,
    ``quantization/utils/flashinfer_fp4_moe.py``, the same in the stored versions @296ce48d and the
    ``RoutedExperts`` one read beside the oracle @01362014):

    * ``swizzled``: the block scales go through ``swizzle_blockscale`` (rows padded to 128, 16-groups to 4:
      nvfp4_utils) or FlashInfer's ``nvfp4_block_scale_interleave`` (TRT-LLM; the same 128 x 4 tiles); the
      swizzled copy replaces the loaded scales.
    * ``pad_rows_to``: the CUTLASS kernels (vLLM's and FlashInfer's) pad w13's rows to the swizzled scale's
      (``pad_size = w13_scale.size(1) - w13.size(1)``, i.e. to 128): a non-gated w13 (relu2) is padded with
      zero rows and w2 with as many zero columns (and scale columns); a gated w13 that would need it makes vLLM
      raise NotImplementedError ("Intermediate size padding for w1 and w3 ... not currently supported").
    * ``align_gated`` / ``align_plain``: FLASHINFER_TRTLLM's ``align_fp4_moe_weights_for_fi``: the per-rank
      intermediate rounded up to 64 (gated: 2 x 64 rows, the block-scale shuffle's 128) or 128 (non-gated);
      ``hidden_align``: its ``align_trtllm_fp4_moe_hidden_dim_for_fi`` (hidden size to 256, zero columns of
      w13 and zero rows of w2).  Both as in the ``RoutedExperts``-era file (search file id 61514964001) and the
      ``FusedMoE``-era one (51831413103, gated alignment 16 there); @296ce48d had neither (not modelled per
      version: the newest form from 0.19 on).
    * None of them: Marlin (weight-only repack; its byte count was not read: the checkpoint's bytes).

    ``gated``: the model's w13 is gate + up (``is_act_and_mul``); set per model by ``checkpoint_scheme``.
    """

    name: str
    swizzled: bool = False
    pad_rows_to: int = 0
    align_gated: int = 0
    align_plain: int = 0
    hidden_align: int = 0
    gated: bool = True


NVFP4_MOE_BACKENDS = {
    "nvfp4_flashinfer_trtllm": Nvfp4MoeBackend("nvfp4_flashinfer_trtllm", swizzled=True, align_gated=64,
                                               align_plain=128, hidden_align=256),
    "nvfp4_flashinfer_cutlass": Nvfp4MoeBackend("nvfp4_flashinfer_cutlass", swizzled=True, pad_rows_to=128),
    "nvfp4_cutlass": Nvfp4MoeBackend("nvfp4_cutlass", swizzled=True, pad_rows_to=128),
    "nvfp4_marlin": Nvfp4MoeBackend("nvfp4_marlin"),
}


# first release whose NVFP4 oracle serves SM 12.x: vllm 0.15.1 sdist (wheel .py files)
# model_executor/layers/fused_moe/flashinfer_cutlass_moe.py:93-103 (the 12.x family in the device check); 0.15.0 (no
# sdist read) is the release vllm#33417 fixed ("FlashInfer CUTLASS MoE fails on SM 12.x", merged 2026-01-30); the
# 0.14.1 sdist is pre-oracle (``select_nvfp4_moe_backend`` -> VLLM_CUTLASS, the ``< (0, 15)`` branch)
NVFP4_SM12_FROM = (0, 15, 1)


def nvfp4_moe_backend(capability: tuple[int, int] | None, version: tuple[int, ...] | None = None,
                      activation: str = "silu", w4a16: bool = False) -> str | None:
    """The ``NVFP4_MOE_BACKENDS`` key of the backend vLLM's ``moe_backend="auto"`` picks for NVFP4 experts on a
    GPU of ``capability`` (None: not known -- the checkpoint's bytes and the fitted terms, as before).
    ``version``: vLLM (major, minor), None = the newest; ``activation``: the experts' vLLM ``MoEActivation`` name
    (silu, relu2_no_mul, gelu_tanh ...); ``w4a16``: weight-only NVFP4 (no input scales).

    * weight-only NVFP4 -> Marlin on every GPU: every FlashInfer kernel and ``CutlassExpertsFp4`` take only the
      (kNvfp4Static, kNvfp4Dynamic) scheme (vllm#31085's 2026-06 debug log on SM 12.0 shows the oracle passing
      FLASHINFER_CUTLASS over for a W4A16 checkpoint and landing on MARLIN).
    * vLLM <= 0.14 (``select_nvfp4_moe_backend()`` before the oracle, search file id 18153936169):
      ``cutlass_fp4_supported()`` -> VLLM_CUTLASS unless ``VLLM_USE_FLASHINFER_MOE_FP4`` (default off), else
      Marlin.
    * 0.15 (the oracle, vllm#32414): SM 12.x was refused by FlashInfer CUTLASS's device check and 0.15.0 failed
      there (vllm#33417, merged 2026-01-30, added the 12.x family): None (not modelled).  The vllm 0.15.1 sdist
      already has the 12.x family (fused_moe/flashinfer_cutlass_moe.py:93-103) and the 0.16.0 selection order
      (oracle/nvfp4.py differs only in the kernel factory), so 0.15.1 picks as 0.16 does (``NVFP4_SM12_FROM``,
      branch patchver: versions carry their patch); 0.15.0 (no sdist here) stays None.
    * 0.16 on: SM 10.x -> FLASHINFER_TRTLLM; SM 12.x -> FLASHINFER_CUTLASS for SiLU / relu2 / SwiGLU-OAI experts,
      else VLLM_CUTLASS; SM 11.x (Thor; FlashInfer CUTLASS excludes it) -> VLLM_CUTLASS; anything else -> Marlin.
      SM 12.1 is taken as 12.0 (vllm#39825 narrowed FlashInfer CUTLASS to exact 12.0 for flashinfer <= 0.6.7
      for a while; @03063c09 has the 12.x family again)."""
    if capability is None:
        return None
    v = tuple(version[:3]) if version is not None else None
    major = capability[0]
    if w4a16 or major not in (10, 11, 12):
        return "nvfp4_marlin"
    if v is not None and v < (0, 15):
        return "nvfp4_cutlass"
    if major == 10:
        return "nvfp4_flashinfer_trtllm"
    if major == 11:
        return "nvfp4_cutlass"
    if v is not None and v < NVFP4_SM12_FROM:
        return None
    return "nvfp4_flashinfer_cutlass" if activation in FI_CUTLASS_ACTIVATIONS else "nvfp4_cutlass"


def nvfp4_expert_rank_parts(out: int, in_: int, moe_tp: int, down: bool, fused_gate_up: bool,
                            backend: Nvfp4MoeBackend, group: int = 16) -> dict[str, int]:
    """Bytes of one expert's NVFP4 matrix on one rank in ``backend``'s layout (global / input scales not
    included: ``Nvfp4.parts`` counts them per expert).  ``out, in_``: the unsharded checkpoint dims (gate_up /
    up are column-parallel, down row-parallel over ``moe_tp``); ``fused_gate_up``: this matrix is the fused
    gate + up (a separate gate or up matrix of a gated model is half of w13's rows)."""
    gated = backend.gated
    n = ceil((in_ if down else (out // 2 if fused_gate_up else out)) / moe_tp)   # the rank's intermediate
    hidden = round_up(out if down else in_, backend.hidden_align or 1)
    if backend.align_gated or backend.align_plain:
        n = round_up(n, backend.align_gated if gated else backend.align_plain)
    elif backend.pad_rows_to and not gated and n % backend.pad_rows_to:
        n = round_up(n, backend.pad_rows_to)      # w13 = n rows (non-gated), padded to the swizzled scale's
    rows13 = 2 * n if fused_gate_up else n
    rows, k = (hidden, n) if down else (rows13, hidden)
    groups = ceil(k / group)
    if backend.swizzled:
        return {"weight": rows * ceil(k / 2), "scale": round_up(rows, 128) * round_up(groups, 4)}
    return {"weight": rows * ceil(k / 2), "scale": rows * groups}




def nvfp4_layout_refusal(backend: Nvfp4MoeBackend, intermediate: int, moe_tp: int) -> str | None:
    """vLLM's refusal of a gated NVFP4 MoE whose rank's w13 rows need the CUTLASS kernels' padding
    (``prepare_nvfp4_moe_layer_for_fi_or_cutlass``: ``pad_size > 0`` with ``is_act_and_mul`` raises
    NotImplementedError "Intermediate size padding for w1 and w3 ... not currently supported"); None = loads."""
    if not backend.pad_rows_to or not backend.gated:
        return None
    rows13 = 2 * ceil(intermediate / moe_tp)
    if rows13 % backend.pad_rows_to == 0:
        return None
    return (f"vLLM's {backend.name.removeprefix('nvfp4_')} NVFP4 MoE backend (the one it picks for this GPU) "
            f"cannot load gated experts whose w13 has {rows13} rows per rank: its block-scale swizzle pads rows to "
            f"{backend.pad_rows_to} and prepare_nvfp4_moe_layer_for_fi_or_cutlass raises NotImplementedError "
            f"(intermediate size padding for w1 and w3); a different tp / expert parallelism or --moe-backend "
            f"changes it")


# --- An explicit --moe-backend the GPU or the experts' quantization cannot run: vLLM refuses the start -----------
# vLLM ``fused_moe/oracle/nvfp4.py`` @01362014 ``select_nvfp4_moe_backend``: with ``moe_backend != "auto"``
# ``map_nvfp4_backend`` raises ValueError("moe_backend='X' is not supported for NvFP4 MoE. Expected one of [...]")
# for a name without an NVFP4 kernel, then ``_return_or_raise`` raises ValueError("NvFp4 MoE backend 'X' does not
# support the deployment configuration since kernel does not support <what>.") when the kernel class's
# ``is_supported_config`` (modular_kernel.py: current device > no act_and_mul > activation > quantization scheme)
# refuses -- no fall-back to another kernel.  The explicit flag came with vllm#33807 (2026-02, "If MoEBackend is
# specified by the user and isn't valid for the given quantization format, it will error"): first in the vllm 0.17.0
# sdist -- engine/arg_utils.py:1238 (``--moe-backend``) and fused_moe/oracle/nvfp4.py:113-125 / :196-199
# (``map_nvfp4_backend``, ``runner_backend = config.moe_backend``); the 0.16.0 sdist has neither (was (0, 16)).
# ``fused_moe/oracle/mxfp4.py`` @001eda31 ``select_mxfp4_moe_backend`` does the same for MXFP4 (the oracle of
# vllm#37128, 2026-03: vllm 0.19.0 sdist, fused_moe/oracle/mxfp4.py:262 ``runner_backend = config.moe_backend``, the
# file's first release); of its kernels only the Triton one's device gate is modelled:
# ``_triton_kernel_moe_supports_current_device`` keeps "the original ``(9, 0) <= cap < (11, 0)`` window on CUDA".
MOE_BACKEND_FLAG_FROM = {"nvfp4": (0, 17), "mxfp4": (0, 19)}
# map_nvfp4_backend's keys among vllm_args.MOE_BACKENDS -> vLLM's NvFp4MoeBackend name
NVFP4_FLAG_KERNELS = {"cutlass": "VLLM_CUTLASS", "flashinfer_trtllm": "FLASHINFER_TRTLLM",
                      "flashinfer_cutlass": "FLASHINFER_CUTLASS", "flashinfer_cutedsl": "FLASHINFER_CUTEDSL",
                      "marlin": "MARLIN", "emulation": "EMULATION"}
# the kernel classes' ``is_supported_config`` as read (docs/decisions.md "NVFP4 MoE backend per GPU"):
# (capability majors, SM 9.0 too, gated only, activations (None = any), W4A4 scheme only)
_NVFP4_KERNEL_GATES = {
    "flashinfer_trtllm": ((10,), False, False, None, True),             # experts/trtllm_nvfp4_moe.py @01f6dc6a
    "flashinfer_cutedsl": ((10,), False, True, ("silu",), True),        # experts/flashinfer_cutedsl_moe.py @03a45964
    "flashinfer_cutlass": ((10, 12), True, False, FI_CUTLASS_ACTIVATIONS, True),   # flashinfer_cutlass_moe @03063c09
    "cutlass": ((10, 11, 12), False, False, None, True),                 # CutlassExpertsFp4
}


def moe_backend_refusal(requested: str, kind: str, capability: tuple[int, int] | None,
                        version: tuple[int, ...] | None = None, activation: str = "silu",
                        w4a16: bool = False) -> str | None:
    """vLLM's refusal of an explicit ``--moe-backend requested`` for routed experts of ``kind`` ("nvfp4", "mxfp4";
    anything else: None) on a GPU of CUDA ``capability`` under vLLM ``version`` ((major, minor), None = newest);
    ``activation``: the experts' ``MoEActivation`` name (``tables.moe_activation``); ``w4a16``: weight-only NVFP4.
    None = vLLM starts it (or reportgen cannot tell: "auto", no capability -- AMD, a GPU given by its memory, a
    catalog row without the column --, a version before the oracle took the flag, a backend whose gate was not
    read: marlin and emulation are taken as running everywhere).  The refusal quotes vLLM's exception and names
    the fix (``--moe-backend auto`` and the explicit values that run)."""
    if requested == "auto" or capability is None or kind not in MOE_BACKEND_FLAG_FROM:
        return None
    v = tuple(version[:2]) if version is not None else None
    if v is not None and v < MOE_BACKEND_FLAG_FROM[kind]:
        return None
    sm = f"SM {capability[0]}.{capability[1]}"
    if kind == "mxfp4":
        if requested != "triton" or (9, 0) <= tuple(capability) < (11, 0):
            return None
        why = ("ValueError: Mxfp4 MoE backend 'TRITON' does not support the deployment configuration since kernel "
               "does not support current device (fused_moe/oracle/mxfp4.py select_mxfp4_moe_backend; the Triton "
               "MoE kernels run on CUDA capability 9.0 to 10.x only)")
        return _refusal_text(requested, "MXFP4", sm, why, mxfp4_moe_backend(capability, version), ["marlin"])
    if requested not in NVFP4_FLAG_KERNELS:
        why = (f"ValueError: moe_backend='{requested}' is not supported for NvFP4 MoE. Expected one of "
               f"{list(NVFP4_FLAG_KERNELS)} (fused_moe/oracle/nvfp4.py map_nvfp4_backend)")
    else:
        what = _nvfp4_gate(requested, capability, activation, w4a16)
        if what is None:
            return None
        why = (f"ValueError: NvFp4 MoE backend '{NVFP4_FLAG_KERNELS[requested]}' does not support the deployment "
               f"configuration since kernel does not support {what} (fused_moe/oracle/nvfp4.py "
               f"select_nvfp4_moe_backend)")
    runs = [b for b in NVFP4_FLAG_KERNELS if b in _NVFP4_KERNEL_GATES and _nvfp4_gate(b, capability, activation, w4a16)
            is None] + ["marlin"]
    auto = nvfp4_moe_backend(capability, version, activation, w4a16)
    return _refusal_text(requested, "NVFP4", sm, why, auto.removeprefix("nvfp4_") if auto else None, runs)


def _nvfp4_gate(requested: str, capability: tuple[int, int], activation: str, w4a16: bool) -> str | None:
    """What the NVFP4 kernel class of ``requested`` refuses first (``is_supported_config``'s order), or None."""
    gate = _NVFP4_KERNEL_GATES.get(requested)
    if gate is None:                      # marlin, emulation: every CUDA GPU reportgen's catalog holds
        return None
    majors, sm90, gated_only, acts, w4a4_only = gate
    if capability[0] not in majors and not (sm90 and tuple(capability) == (9, 0)):
        return "current device"
    if gated_only and activation == "relu2_no_mul":
        return "no act_and_mul MLP layer"
    if acts is not None and activation not in acts:
        return f"{activation} activation"
    # FlashInfer CUTLASS takes (kNvfp4Static, kNvfp4Dynamic) from capability 10.0 only; every FlashInfer kernel and
    # CutlassExpertsFp4 take no weight-only (W4A16) NVFP4
    if (w4a4_only and w4a16) or capability[0] < 10:
        return "quantization scheme"
    return None


def _refusal_text(requested: str, kind: str, sm: str, why: str, auto: str | None, runs: list[str]) -> str:
    pick = f" (vLLM picks {auto} here)" if auto else ""
    runs = list(dict.fromkeys(runs))
    alt = f"--moe-backend {runs[0]}" if len(runs) == 1 else f"one of --moe-backend {', '.join(runs)}"
    return (f"vLLM refuses --moe-backend {requested} for this model's {kind} routed experts on {sm} at engine "
            f"construction: {why}; use --moe-backend auto{pick} or {alt}")


# --- Unquantized (bf16 / fp16) routed experts on SM 10.x: FlashInfer TRT-LLM pads the rank's intermediate -------
# vLLM's unquantized MoE oracle (``fused_moe/oracle/unquantized.py`` ``_get_priority_backends``) tries
# FLASHINFER_TRTLLM first on CUDA in every sdist 0.20.0-0.34.0 (0.20.0 :67-68, 0.34.0 :69-74); from 0.23.0 SM 9.x
# moves it to the back (0.23.0 :73, 0.34.0 :78-80: "On Hopper (SM90), the FlashInfer unquantized MoE kernels are
# slower than Triton").  Its kernel (``experts/trtllm_bf16_moe.py``) runs only on the 10.x family
# (``_supports_current_device``: ``is_device_capability_family(100)``, 0.20.0 :51, 0.34.0 :122), with SiLU (gated;
# 0.24+ also RELU2_NO_MUL, non-gated) and a routing method among ``BF16_TRTLLM_ROUTING`` -- softmax top-k without
# renormalisation (``RoutingMethodType.Default``, ``fused_moe/config.py`` ``get_routing_method_type``) is not
# one of them, so such a model stays on Triton.  When it is picked, ``convert_to_unquantized_kernel_format`` pads
# the rank's intermediate to a multiple of 128 (``align_moe_weights_for_fi(..., min_alignment=128)``, new zero
# tensors that replace the loaded ones; 0.31+ also ``unquantized_round_up_hidden_size_and_intermediate_size``
# before allocating, the same size): for non-gated experts from 0.24.0 (:274-281 ``if not is_act_and_mul``), for
# every expert from 0.29.0 (:351-352; 0.34.0 :444-445).  0.20-0.23 (no padding) and gated experts before 0.29
# keep the checkpoint's shapes.  SM 12.x takes FLASHINFER_CUTLASS (halves swapped, same bytes), SM 8.x / 9.x Triton.
@dataclass(frozen=True)
class Bf16MoeBackend:
    """vLLM's layout of unquantized routed experts on one rank under ``name``: the rank's intermediate size
    (w13's rows per half, w2's columns) rounded up to ``intermediate_align``; the hidden size is kept."""

    name: str
    intermediate_align: int


BF16_TRTLLM_BACKEND = "bf16_flashinfer_trtllm"
BF16_MOE_BACKENDS = {BF16_TRTLLM_BACKEND: Bf16MoeBackend(BF16_TRTLLM_BACKEND, 128)}
# first release that pads: (gated experts, non-gated experts)
BF16_TRTLLM_PAD_FROM = {True: (0, 29), False: (0, 24)}
# ``TrtLlmBf16Experts(Monolithic)._supports_routing_method`` (0.23.0 :79-84 .. 0.34.0 :296-302); MiniMax2 from 0.32.0
BF16_TRTLLM_ROUTING = frozenset({"DeepSeekV3", "Llama4", "Renormalize", "RenormalizeNaive", "SigmoidRenorm",
                                 "Sigmoid"})
BF16_TRTLLM_MINIMAX2_FROM = (0, 32)


def unquantized_moe_backend(capability: tuple[int, int] | None, version: tuple[int, ...] | None, routing: str,
                            activation: str = "silu", moe_backend: str = "auto") -> str | None:
    """The ``BF16_MOE_BACKENDS`` key whose per-rank layout vLLM holds unquantized routed experts in on a GPU of
    ``capability`` under vLLM ``version`` ((major, minor); None = the newest), or None where the checkpoint's
    shapes stand (any other GPU, a release that does not pad them, a routing or activation the kernel refuses:
    vLLM then runs Triton / FlashInfer CUTLASS on the loaded shapes).  ``routing``: vLLM's ``RoutingMethodType``
    name of the experts (``ModelSpec.moe_routing``; "" = not worked out for the family: None);
    ``activation``: ``schemes.moe_activation``; ``moe_backend``: the job's --moe-backend (only auto and
    flashinfer_trtllm reach this kernel)."""
    if capability is None or capability[0] != 10 or not routing or moe_backend not in ("auto", "flashinfer_trtllm"):
        return None
    v = tuple(version[:2]) if version is not None else None
    gated = activation != "relu2_no_mul"
    if gated and activation != "silu":
        return None
    if v is not None and v < BF16_TRTLLM_PAD_FROM[gated]:
        return None
    if routing not in BF16_TRTLLM_ROUTING and not (
            routing == "MiniMax2" and (v is None or v >= BF16_TRTLLM_MINIMAX2_FROM)):
        return None
    return BF16_TRTLLM_BACKEND


def bf16_expert_rank_shape(out: int, in_: int, moe_tp: int, down: bool, fused_gate_up: bool,
                           backend: Bf16MoeBackend) -> tuple[int, int]:
    """(rows, columns) of one unquantized expert matrix on one rank in ``backend``'s layout; ``out, in_``: the
    unsharded checkpoint dims (gate / up / gate_up column-parallel, down row-parallel over ``moe_tp``)."""
    a = backend.intermediate_align
    if down:
        return out, round_up(ceil(in_ / moe_tp), a)
    if fused_gate_up:
        return 2 * round_up(ceil(out / 2 / moe_tp), a), in_
    return round_up(ceil(out / moe_tp), a), in_
