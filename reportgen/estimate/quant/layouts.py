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


@dataclass(frozen=True)
class Nvfp4MoeBackend:
    """How vLLM's NVFP4 MoE backends hold a rank's routed experts after loading.

    vLLM ``model_executor/layers/quantization/utils/flashinfer_fp4_moe.py`` @296ce48d,
    ``prepare_nvfp4_moe_layer_for_fi_or_cutlass`` (``fused_moe/oracle/nvfp4.py`` @edd45a17
    ``convert_to_nvfp4_moe_kernel_format`` runs it for VLLM_CUTLASS, FLASHINFER_CUTLASS and
    FLASHINFER_CUTEDSL; FLASHINFER_TRTLLM shuffles instead and MARLIN repacks):

    * ``w13_scale = swizzle_blockscale(w13_scale)`` -- the fp8 block scales ``(E, rows, K/16)``
      zero-padded to ``(E, round_up(rows, 128), round_up(K/16, 4))`` (the 128x4 tiles of
      ``nvfp4_utils.swizzle_blockscale``: ``M_padded = round_up_multiple(M, 128)``,
      ``K_padded = round_up_multiple(K, 4)``);
    * ``pad_size = w13_scale.size(1) - w13.size(1)``; when > 0 a non-gated MoE (``is_act_and_mul``
      False: Nemotron-H's relu2 experts) pads ``w13`` to the padded rows, ``w2`` by ``pad_size``
      fp4 values along its reduction axis (``pad(w2, (0, pad_size // 2))`` bytes) and ``w2_scale``
      by ``pad_size // 16`` columns (a gated MoE raises NotImplementedError instead: its start
      fails, not priced here);
    * ``w2_scale = swizzle_blockscale(w2_scale)``.

    ``row_align`` / ``scale_col_align``: 128 / 4 for those backends, 1 / 1 (= the checkpoint's
    shapes) for ``"checkpoint"``.  ``gated``: the experts' w13 is gate + up (``2 x intermediate``
    rows); set per model by ``checkpoint_scheme``.
    """

    name: str
    row_align: int = 1
    scale_col_align: int = 1
    gated: bool = True


# ``checkpoint_scheme(mxfp4_backend=...)`` keys for NVFP4 experts (``nvfp4_moe_backend`` picks one per GPU)
NVFP4_MOE_LAYOUTS = {
    "nvfp4_cutlass": Nvfp4MoeBackend("nvfp4_cutlass", 128, 4),
    "nvfp4_checkpoint": Nvfp4MoeBackend("nvfp4_checkpoint"),
}


def nvfp4_moe_backend(capability: tuple[int, int] | None) -> str:
    """The ``NVFP4_MOE_LAYOUTS`` key of the expert layout vLLM's NVFP4 MoE backend leaves on a GPU.

    ``fused_moe/oracle/nvfp4.py`` @edd45a17 ``select_nvfp4_moe_backend`` tries FLASHINFER_TRTLLM,
    FLASHINFER_CUTEDSL, FLASHINFER_CUTLASS, VLLM_CUTLASS, MARLIN in that order.  The FlashInfer kernels
    support the Blackwell family 100 only (``flashinfer_fp4_moe.py`` @296ce48d ``_supports_current_device``:
    ``is_device_capability_family(100)``; TRT-LLM there also no non-gated MoE, ``_supports_no_act_and_mul``
    False), so on SM 12.x the pick is a CUTLASS one (row 170's 0.20.2 log on an RTX 5090: "Using 'VLLM_CUTLASS'
    NvFp4 MoE backend"; later builds' FLASHINFER_CUTLASS on SM 12.x -- third-party start-up notes, search file ids
    69789932161 / 62486461506 -- goes through the same padding, and fails the
    start with "Intermediate size padding for w1 and w3 ... not currently supported" for a gated MoE whose
    per-rank ``2 x intermediate`` is no multiple of 128 -- not modelled as a refusal) -> "nvfp4_cutlass".  On
    SM 10.x the gated pick is TRT-LLM's shuffled layout (the loaded element count) and a non-gated MoE's depends
    on the release (TRT-LLM takes non-gated experts in a later copy of the function, search file id 51831413103,
    which passes ``is_gated_activation``), so SM 10.x keeps the checkpoint shapes, as below SM 10 (MARLIN repacks the loaded shapes; its intermediate
    padding to 64 / 128 is newer than the releases read) and for an unknown GPU: "nvfp4_checkpoint".
    """
    if capability is not None and capability[0] == 12:
        return "nvfp4_cutlass"
    return "nvfp4_checkpoint"


def nvfp4_expert_rank_parts(out: int, in_: int, moe_tp: int, down: bool, fused_gate_up: bool,
                            backend: Nvfp4MoeBackend, group: int = 16, input_scale: bool = True) -> dict[str, int]:
    """Bytes of one expert's NVFP4 matrix on one rank after ``prepare_nvfp4_moe_layer_for_fi_or_cutlass``.

    ``out, in_`` are the unsharded checkpoint dims (gate_up / up: ``(rows, hidden)``, column-split by
    ``moe_tp``; down: ``(hidden, intermediate)``, its reduction axis split).  For a non-gated MoE the
    intermediate is padded to the scale tile (``pad_size``) in the weights too; the per-tensor global and
    input scales (``weight_scale_2`` / ``input_scale``, float32) stay one each, as ``Nvfp4.parts``.
    """
    ra, ca = backend.row_align, backend.scale_col_align
    if down:
        rows, k = out, ceil(in_ / moe_tp)
        k_w = k if backend.gated else round_up(k, ra)          # w2 padded by pad_size along K (non-gated)
    else:
        rows = 2 * ceil(out / 2 / moe_tp) if fused_gate_up else ceil(out / moe_tp)
        k = k_w = in_
    w_rows = rows if (down or backend.gated) else round_up(rows, ra)   # w13 padded (non-gated)
    p = {"weight": w_rows * ceil(k_w / 2),
         "scale": round_up(rows, ra) * round_up(ceil(k_w / group), ca),
         "global_scale": FP32}
    if input_scale:
        p["input_scale"] = FP32
    return p
