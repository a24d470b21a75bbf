"""The multimodal items vLLM's start-up profile encodes, as architecture facts of each tower family.

Qwen2-VL / Qwen2.5-VL and InternVL: a video sized by max_model_len (priced per length); Qwen3-VL / Qwen3.5
(vLLM qwen3_vl.py @4f5768c7) and LLaVA-OneVision: a video that never exceeds the image item (a spec note, and
Qwen3-VL's video-only item for ``limit_mm_per_prompt`` image=0).

Why here (the architecture layer) and not in ``estimate``: the families (qwen_vl, internvl, llava_onevision)
record on the spec how vLLM's processors size their largest dummy video and what the vision tower keeps
live per patch while encoding it -- facts of the model and of vLLM's processor, read from config fields.
``reportgen.estimate.encoder`` turns them into the encoder budget and ``exprs.encoder_lens`` prices them per
``max_model_len``; the data flows one way (architecture -> estimate).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from reportgen.arch.spec import ModelSpec

# towers whose dummy video vLLM sizes with ``Qwen2VLProcessingInfo`` (qwen2_5_vl.py subclasses it):
# family -> (``_MAX_FRAMES_PER_VIDEO``, the vision config's ``temporal_patch_size``, both checkpoints' 2)
QWEN2_VL_VIDEO = {"qwen2_vl": (14, 2), "qwen2_5_vl": (14, 2)}


def qwen2_vl_video_tokens(num_frames: int, frame_tokens: int, temporal_patch_size: int = 2) -> int:
    """``Qwen2VLProcessingInfo._get_vision_info`` (vLLM qwen2_vl.py @002d181a) at the largest image size:
    frames padded as vLLM writes it (``n + n % temporal_patch_size``), ``grid_t = max(padded // tps, 1)``,
    each temporal patch worth one largest image (``frame_tokens`` = ``get_max_image_tokens``)."""
    padded = num_frames + num_frames % temporal_patch_size
    return max(padded // temporal_patch_size, 1) * frame_tokens


def qwen2_vl_video_item_tokens(max_model_len: int, frame_tokens: int, temporal_patch_size: int = 2,
                               max_frames: int = 14) -> int:
    """The video item vLLM's ``MultiModalBudget`` asks for (vLLM qwen2_vl.py @002d181a,
    ``get_max_video_tokens(seq_len=max_model_len, mm_counts={"image": 1, "video": 1})`` -- budget.py
    @03ff0a31 passes one item per active modality), step by step as vLLM does it (the matrix uses the
    closed form ``video_patches``; tests check they agree):

    - ``_get_max_video_frames(seq_len)``: from 1 frame, add frames while the video's tokens stay <= seq_len
      (images are *not* subtracted at this commit; row N03F confirms it: 114,688 = 7 x 16,384 at
      max_model_len 128,000, where subtracting one 16,384-token image would give 6 x 16,384);
    - ``get_num_frames_with_most_features``: ``max(min(total // max(videos, 1), _MAX_FRAMES_PER_VIDEO), 1)``
      with videos = 1;
    - the tokens of that many frames (``qwen2_vl_video_tokens``).
    """
    n = 1
    while n < max_frames and qwen2_vl_video_tokens(n + 1, frame_tokens, temporal_patch_size) <= max_model_len:
        n += 1
    return qwen2_vl_video_tokens(max(min(n, max_frames), 1), frame_tokens, temporal_patch_size)


def video_patches(max_model_len: int, patch_tokens: int, max_patches: int, minus_tokens: int = 0) -> int:
    """Steps of the dummy video: ``clamp((max_model_len - minus_tokens) // patch_tokens, 1, max_patches)``.

    Qwen2-VL / Qwen2.5-VL (closed form of ``qwen2_vl_video_item_tokens`` for ``temporal_patch_size`` 2): n frames
    cost ``ceil(n / 2) x patch_tokens``, and vLLM takes the largest n <= ``_MAX_FRAMES_PER_VIDEO`` whose tokens stay
    <= max_model_len (at least one frame), so ``ceil(n / 2) = clamp(max_model_len // patch_tokens, 1, 7)``.
    InternVL (``internvl_video_frames``): frames of ``image_seq_length`` tokens after one image, no cap.  The
    matrix evaluates the same expression per max_model_len (``exprs.encoder_lens``)."""
    if patch_tokens <= 0 or max_patches <= 0:
        return 0
    return max(1, min((int(max_model_len) - int(minus_tokens)) // patch_tokens, max_patches))


def set_qwen2_vl_video(spec: ModelSpec, temporal_patch_size: int) -> None:
    """Record the dummy video vLLM profiles for a Qwen2-VL / Qwen2.5-VL tower (``QWEN2_VL_VIDEO``): one
    temporal patch = one largest image (``spec.mm_item_tokens``), at most ceil(14 / 2) = 7 patches.  The
    closed form needs ``temporal_patch_size`` 2 (every shipped checkpoint): another value leaves the video
    unmodelled and the encoder budget a lower bound, which the spec says."""
    frames, _ = QWEN2_VL_VIDEO[spec.family]
    if temporal_patch_size != 2 or not spec.mm_item_tokens:
        spec.notes.append(f"temporal_patch_size {temporal_patch_size}: vLLM's max_model_len-sized dummy video is not "
                          "modelled (the encoder budget and the profile peak are lower bounds)")
        return
    spec.mm_video_patch_tokens = spec.mm_item_tokens
    spec.mm_video_max_patches = -(-frames // temporal_patch_size)
    spec.notes.append(f"videos allowed: vLLM profiles one dummy video sized by max_model_len, {frames} frames at most "
                      f"= {spec.mm_video_max_patches} x {spec.mm_item_tokens:,} tokens (limit_mm_per_prompt video=0 "
                      "drops it)")


# Qwen3-VL / Qwen3.5 (vLLM qwen3_vl.py @4f5768c7, ``Qwen3VLProcessingInfo``; qwen3_5.py @36c110bd's
# ``Qwen3_5(Moe)ProcessingInfo`` subclass it unchanged): the dummy video's frames come from the *video* processor's ``smart_resize``, which spreads
# one pixel budget (``size["longest_edge"]``) over all frames, so the video cannot grow with max_model_len.
QWEN3_VL_MAX_FRAMES = 24_576            # ``_MAX_FRAMES_PER_VIDEO`` ("Official recommended max pixels is 24576 * 32 * 32")
# the published Qwen3-VL video_preprocessor_config.json ``size`` (shortest_edge, longest_edge): 4,096 / 25,165,824
# pixels (not read from the checkpoint, like ``qwen_vl.ITEM_PIXELS``)
QWEN3_VL_VIDEO_PIXELS = (4_096, 25_165_824)


def qwen3_vl_video_resize(num_frames: int, height: int, width: int, temporal_factor: int, factor: int,
                          min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """transformers 5.24 ``video_processing_qwen3_vl.smart_resize`` (the function vLLM imports as
    ``video_smart_resize``): one pixel budget for ``t_bar x h x w``, ``t_bar`` = ``round(frames / temporal_factor)
    x temporal_factor`` (Python's round: 2.5 -> 2), the frame shrunk by ``sqrt(frames x h x w / max_pixels)`` and
    floored to the factor when over budget, grown when under ``min_pixels``."""
    import math
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt(num_frames * height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def qwen3_vl_video_tokens(num_frames: int, side: int, patch: int, merge: int, tps: int,
                          min_pixels: int, max_pixels: int) -> int:
    """``Qwen3VLProcessingInfo._get_vision_info`` (vLLM qwen3_vl.py @4f5768c7) for a ``num_frames``-frame video of
    ``side x side`` frames through the video processor: ``qwen3_vl_video_resize``, frames padded to
    ``n + n % tps``, ``grid_t x grid_h x grid_w // merge**2`` tokens."""
    h, w = qwen3_vl_video_resize(num_frames, side, side, tps, patch * merge, min_pixels, max_pixels)
    padded = num_frames + num_frames % tps
    return max(padded // tps, 1) * (h // patch) * (w // patch) // (merge * merge)


def qwen3_vl_video_item(max_model_len: int, side: int, patch: int, merge: int, tps: int, min_pixels: int,
                        max_pixels: int, max_frames: int = QWEN3_VL_MAX_FRAMES) -> int:
    """The video item vLLM asks for at ``max_model_len`` (qwen3_vl.py @4f5768c7, step by step):
    ``_get_max_video_frames(seq_len, start_num_frames=2)`` adds frames from 2 while the next count's tokens stay
    <= seq_len (Qwen2-VL's loop; images are not subtracted), ``get_num_frames_with_most_features`` caps it at
    ``_MAX_FRAMES_PER_VIDEO`` = 24,576 with one video, ``get_max_video_tokens`` prices that many frames of the
    largest image size (``side``).  Past ~2 x seq_len frames the frame is at its 32 x 32 floor and tokens grow as
    frames / 2, so the loop ends; it is walked here only up to the cap (every count above it is capped)."""
    tokens = lambda n: qwen3_vl_video_tokens(n, side, patch, merge, tps, min_pixels, max_pixels)  # noqa: E731
    n = 2
    while n < max_frames and tokens(n + 1) <= max_model_len:
        n += 1
    return tokens(max(min(n, max_frames), 1))


@lru_cache(maxsize=64)
def qwen3_vl_video_steps(side: int, patch: int, merge: int, tps: int, min_pixels: int, max_pixels: int,
                         max_frames: int = QWEN3_VL_MAX_FRAMES) -> tuple[tuple[int, int], ...]:
    """``qwen3_vl_video_item`` as a step function of max_model_len: ``((from_len, tokens), ...)``, each step holding
    from ``from_len`` to the next one.

    The loop reaches m frames iff max_model_len >= the most tokens of 3 .. m frames, so it stops one frame short
    of each *record* count (one with more tokens than every smaller count): below the first record (3 frames) the
    video is 2 frames, between records i and i + 1 it is record i + 1's count minus one, past the last record the
    24,576-frame cap.  Records are found by a walk from 3 frames that stops when none can follow: once the pixel
    budget binds, n frames give at most ``(n + tps - 1) / (tps x n) x max_pixels / (patch x merge)**2`` tokens
    (a frame is at most ``max_pixels / n`` pixels), falling with n, and past ``max_pixels / (patch x merge)**2``
    frames every frame is at the ``patch x merge`` floor (``padded // tps`` tokens), where the walk goes on only if
    those can still beat the record.  ``qwen3_vl_video_item`` checks it count by count (tests agree)."""
    tokens = lambda n: qwen3_vl_video_tokens(n, side, patch, merge, tps, min_pixels, max_pixels)  # noqa: E731
    factor = patch * merge
    records: list[tuple[int, int]] = []          # (frames, tokens) beating every count from 3 frames
    best, n = 0, 3
    while n <= max_frames:
        t = tokens(n)
        if t > best:
            records.append((n, t))
            best = t
        binding = round(n / tps) * tps * side * side > max_pixels
        if binding and (n + 1) * factor * factor <= max_pixels and \
                (n + tps) / (tps * (n + 1)) * max_pixels / (factor * factor) <= best:
            floor = max_pixels // (factor * factor) + 1
            cap_tokens = (max_frames + max_frames % tps) // tps
            if floor > max_frames or cap_tokens <= best:
                break
            n = max(n + 1, floor)
            continue
        n += 1
    steps = [(1, tokens(2))]
    for i, (_, t) in enumerate(records):
        last = records[i + 1][0] - 1 if i + 1 < len(records) else max_frames
        steps.append((t, tokens(last)))
    return tuple(steps)


def set_qwen3_vl_video(spec: ModelSpec, side: int, patch: int, merge: int, tps: int,
                       video_pixels: tuple[int, int] = QWEN3_VL_VIDEO_PIXELS) -> None:
    """Qwen3-VL / Qwen3.5's dummy video against the largest image (``spec.mm_item_tokens``, frames of ``side``
    pixels).  At the published sizes the video is 12,100 tokens (2 frames of 3,520 x 3,520) below max_model_len
    16,200 and 12,288 (the 24,576-frame cap, 32 x 32 frames) from there: below the 16,384-token image, so the budget
    is the image at every max_model_len while images are allowed.  The video-only item (``--limit-mm-per-prompt
    image=0``) is recorded per modality as the largest step (exact from the last step's max_model_len on)."""
    lo, hi = video_pixels
    steps = qwen3_vl_video_steps(side, patch, merge, tps, lo, hi)
    most = max(t for _, t in steps)
    if not spec.mm_item_tokens:
        spec.notes.append(f"videos allowed: vLLM's dummy video is at most {most:,} tokens (qwen3_vl.py); the largest "
                          "image is not worked out for this model, so the encoder budget is max_num_batched_tokens (a "
                          "lower bound when the image is larger)")
        return
    if most > spec.mm_item_tokens:
        spec.notes.append(f"videos allowed: vLLM's dummy video can reach {most:,} tokens, more than the largest image "
                          f"({spec.mm_item_tokens:,}) -- not modelled, the encoder budget is a lower bound")
        return
    spec.mm_item_tokens_by_modality = {"image": spec.mm_item_tokens, "video": most}
    sizes = ", ".join(f"{t:,} from max_model_len {m:,}" if m > 1 else f"{t:,}" for m, t in steps)
    spec.notes.append(f"videos allowed: vLLM's dummy video is {sizes} tokens (the video processor spreads {hi:,} "
                      f"pixels over the frames), below the largest image ({spec.mm_item_tokens:,}): the encoder "
                      "budget is unchanged at any max_model_len")


# InternVL (vLLM interns1.py @01dc2879): no frame cap
VIDEO_UNCAPPED = 2**31 - 1


def internvl_video_frames(max_model_len: int, image_seq_length: int, max_image_tokens: int, images: int = 1) -> int:
    """``InternS1ProcessingInfo.get_num_frames_with_most_features`` (vLLM interns1.py @01dc2879) with one video:
    ``max((seq_len - max_image_tokens x images) // image_seq_length, 1)`` -- ``images`` is 1 while images are
    allowed (budget.py asks with one item per active modality), else 0.  Each dummy frame is one
    ``image_size`` tile (``_get_dummy_videos(width=image_size_w, height=image_size_h)``; transformers'
    ``InternVLVideoProcessor`` keeps every frame: ``do_sample_frames = False`` by default) and its placeholder
    holds ``image_seq_length`` video tokens (``get_replacement_interns1_video``, ``select_text`` on the video
    token), so the item is ``frames x image_seq_length`` tokens."""
    return max((int(max_model_len) - int(max_image_tokens) * int(images)) // int(image_seq_length), 1)


def set_internvl_video(spec: ModelSpec, image_seq_length: int) -> None:
    """Record InternVL's dummy video (``internvl_video_frames``): steps of ``image_seq_length`` tokens, no cap,
    one largest image (``spec.mm_item_tokens``) taken off max_model_len first."""
    spec.mm_video_patch_tokens = int(image_seq_length)
    spec.mm_video_max_patches = VIDEO_UNCAPPED
    spec.mm_video_minus_tokens = spec.mm_item_tokens
    spec.notes.append(f"videos allowed: vLLM profiles one dummy video of (max_model_len - {spec.mm_item_tokens:,}) // "
                      f"{image_seq_length} frames x {image_seq_length} tokens (interns1.py; limit_mm_per_prompt "
                      "video=0 drops it); the vision tower's own peak over it is not modelled (a lower bound)")


# LLaVA-OneVision (vLLM llava_onevision.py, the copy under search-index id 68745602020 -- the family's source)
LLAVA_ONEVISION_MAX_FRAMES = 16      # ``_MAX_FRAMES_PER_VIDEO``


def llava_onevision_video_tokens(max_model_len: int, frame_tokens: int,
                                 max_frames: int = LLAVA_ONEVISION_MAX_FRAMES) -> int:
    """``LlavaOnevisionProcessingInfo.get_max_video_tokens`` with one video: ``get_num_video_tokens`` =
    ``frame_tokens x n + 1`` (the newline), ``_get_max_video_frames`` the largest n (from 0) with that <=
    seq_len, ``get_num_frames_with_most_features`` = ``max(min(n, 16), 1)`` (images are not subtracted);
    ``frame_tokens`` = ``ceil(patch grid / spatial_pool_stride)**2`` (``_get_num_frame_tokens``, stride 2 by
    default).  At most ``16 x frame_tokens + 1`` tokens: 3,137 for SigLIP-384 / 14, below the 8,748-token
    largest image, so the video never sets the encoder budget there (``llava_onevision_video_note``)."""
    n = max(min((int(max_model_len) - 1) // int(frame_tokens), max_frames), 1)
    return frame_tokens * n + 1


def llava_onevision_video_note(spec: ModelSpec, frame_tokens: int) -> None:
    """Say whether LLaVA-OneVision's dummy video can set the budget: its largest (16 frames) against the image.
    When it cannot (every shipped checkpoint), the image item is exact with videos allowed; otherwise the
    budget is a lower bound (not priced per length: the +1 newline token is outside ``exprs.encoder_lens``'s
    form)."""
    most = llava_onevision_video_tokens(2**31 - 1, frame_tokens)
    if most <= spec.mm_item_tokens:
        spec.notes.append(f"videos allowed: vLLM's dummy video is at most {most:,} tokens (16 frames x {frame_tokens} + "
                          f"1), below the largest image ({spec.mm_item_tokens:,}): the encoder budget is unchanged")
    else:
        spec.notes.append(f"videos allowed: vLLM's dummy video can reach {most:,} tokens, more than the largest image "
                          f"({spec.mm_item_tokens:,}) -- not modelled, the encoder budget is a lower bound")


@dataclass(frozen=True)
class TowerPeak:
    """The vision tower's own memory peak while vLLM's profile run encodes the dummy items, per patch.

    ``profile_run`` (gpu_model_runner.py) encodes ``max(1, budget // item)`` items of the modality with the
    most tokens in **one** ``embed_multimodal`` call, i.e. ``encoded_tokens`` merged tokens = that many x
    ``merge_unit`` patches through the ViT at once (the window / full attention split only changes which
    patches attend to which, not the tensors' sizes).  Eager PyTorch frees a tensor when its last reference
    goes, so the peak is the largest set of live tensors inside one block:

    - ``attn``: elements (activation dtype) live at the attention's peak;
    - ``mlp`` + ``mlp_tp / tp``: at the MLP's peak (``mlp_tp``: the column-parallel intermediate);
    - ``fixed_bytes``: alive through the whole forward (the float32 pixel input, the float32 rotary table and
      the attention's cos / sin);
    - ``input_bytes``: the part of ``fixed_bytes`` that outlives the tower -- the dummy inputs themselves:
      ``profile_run`` (vllm/v1/worker/gpu_model_runner.py @000fc94b) holds ``batched_dummy_mm_inputs`` as a
      local until it returns, i.e. through the dummy text forward and sampler as well.
    The peak read off the code, not measured; the attention part is counted unsharded (a bound at TP > 1,
    where the QKV output is all-gathered anyway).  Torch's profile peak is the larger of this tower phase and
    the text phase that follows it (``encoder.profile_peak``)."""

    attn: int
    mlp: int
    mlp_tp: int
    fixed_bytes: int
    merge_unit: int
    input_bytes: int = 0

    def bytes_per_token(self, tp: int, act_b: float) -> float:
        """Bytes per merged (LLM) token of the encoded items on one rank (the tower phase)."""
        return self.merge_unit * (act_b * max(self.attn, self.mlp + self.mlp_tp / max(tp, 1)) + self.fixed_bytes)

    def input_bytes_per_token(self) -> float:
        """Bytes per merged token of the dummy inputs, still alive in the text phase."""
        return float(self.merge_unit * self.input_bytes)


def qwen_vl_tower_peak(family: str, hidden: int, intermediate: int, heads: int, patch_volume: int,
                       merge: int) -> TowerPeak:
    """``TowerPeak`` of the Qwen2-VL / Qwen2.5-VL ViT, read off vLLM qwen2_5_vl.py @002d181a (d = hidden,
    I = intermediate, hd = d / heads):

    - attention (``Qwen2_5_VisionAttention.forward``): the block input ``x`` (d) and ``norm1(x)``, held as
      the call's argument (d); ``qkv`` (3d; q, k, v are views of it, and the local name keeps it to the
      end); ``torch.cat([q, k])`` (2d, kept by its local name) and the rotated pair (2d); the attention
      output (d) and ``proj``'s (d): 11d;
    - MLP (``Qwen2_5_VisionBlock.forward``): ``norm2`` is the fused add-RMSNorm, in place on ``x`` (d) and
      ``x_attn`` (d); ``gate_up`` (2I, alive until ``mlp.forward`` returns), the SiLU-and-mul output (I),
      ``down_proj``'s (d): 3d + 3I.  Qwen2-VL's MLP is ``fc1 -> QuickGELU -> fc2`` (qwen2_vl.py
      ``Qwen2VisionMLP``, ``x = x + mlp(norm2(x))``): ``x``, ``norm2(x)`` and fc1 + act outputs, 2d + 2I; its
      attention is taken as Qwen2.5-VL's;
    - fixed: the dummy ``pixel_values_videos`` as the processor makes them, float32 (``C x tps x p^2`` x 4
      bytes per patch, cast to the tower dtype inside ``forward``), the float32 rotary table (hd / 2) and
      the attention's cos / sin (2 x hd / 2): 4 x (patch volume + 1.5 hd) bytes.
    """
    hd = hidden // max(heads, 1)
    gated = family == "qwen2_5_vl"
    return TowerPeak(attn=11 * hidden, mlp=(3 if gated else 2) * hidden, mlp_tp=(3 if gated else 2) * intermediate,
                     fixed_bytes=4 * patch_volume + 6 * hd, merge_unit=merge * merge, input_bytes=4 * patch_volume)


def siglip_tower_peak(hidden: int, intermediate: int, channels: int, patch: int, patches_per_token: int) -> TowerPeak:
    """``TowerPeak`` of a SigLIP tower (Gemma 3), read off vLLM siglip.py @0c028ba4 (``SiglipEncoderLayer``,
    ``SiglipAttention``, ``SiglipMLP``) with mm_encoder_attention.py / vit_attn_wrappers.py @03037b42
    (d = hidden, I = intermediate):

    - attention: ``residual`` (d), ``layer_norm1``'s output held as the call's argument (d), ``qkv_proj``'s
      output (3d; q, k, v are ``chunk`` views), ``MMEncoderAttention``'s output (d: the flash-attention path only
      views q / k / v; the SDPA path's final ``reshape`` of a transposed output copies it once more, d) and
      ``out_proj``'s (d): 7d, 8d on the SDPA path -- 8d is taken (whichever backend ``get_vit_attn_backend`` picks);
    - MLP: ``residual`` (d) and ``layer_norm2``'s output (d), then ``fc1`` (I) and its activation (I) alive
      together, or the activation and ``fc2`` (d): 2d + 2I (the second form, 3d + I / tp, never exceeds 8d);
    - fixed and kept: the float32 ``pixel_values`` (``C x p^2 x 4`` bytes per patch; gemma3_mm.py @e5fa9450
      passes them to the tower as the processor made them, the bf16 cast inside the patch embedding is freed
      after the convolution).
    ``patches_per_token``: tower patches per language-model token (Gemma 3: ``(image_size / patch)**2 /
    mm_tokens_per_image`` = 4,096 / 256 = 16, the projector's average pool)."""
    pixels = 4 * channels * patch * patch
    return TowerPeak(attn=8 * hidden, mlp=2 * hidden, mlp_tp=2 * intermediate, fixed_bytes=pixels,
                     merge_unit=patches_per_token, input_bytes=pixels)
