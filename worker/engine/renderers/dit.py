"""The `dit` renderer: the dubbing DiT re-renders the masked lower face of a segment from the dub audio.

The whole frame goes through the model at a working resolution (the network needs the context: lighting,
pose, occluders), or, when a small face in a large frame would shrink below the size the model knows, a
window around the face several faces wide (`plan_view`). Only the generated region is upsampled back to the
source size, unblended, and the engine composites it by the soft mask (once: a generated pixel's final
weight is its mask value). The previous
segment's output for the overlapping frames, blended as the engine showed it, conditions the model as motion
frames, so the motion continues across the seam.

Which checkpoint: the model a dub names (an id of `model.catalog`, or a checkpoint folder), else
REDUB_MODEL_PATH, else the checkpoint shipped in the package. Faces are scaled so the lower face is about as
large as in training (the card's `face_pixels`); segments longer than the model was trained on (its card's
`max_frames`) are rendered as chained windows, each continuing the previous one's motion.

Settings (environment): REDUB_MODEL_PATH, REDUB_DIT_WORKING_SIZE (the largest longer side of the working
frame in pixels, default 384; 0 = no cap), REDUB_DIT_SEED (default 0), REDUB_DIT_DEVICE (default: cuda when
available, else cpu), REDUB_DIT_DTYPE (float32 or bfloat16; default bfloat16 on a GPU, float32 on the CPU,
where bfloat16 pays on CPUs with AMX), REDUB_DIT_GUIDANCE (audio guidance scale, default 1.0 = none; s > 1
costs a second transformer pass per step), REDUB_DIT_REFERENCE_FRAMES (identity frames shown to the model,
default 2; 0 = none), REDUB_ALLOW_UNTRAINED_MODEL (default off: a checkpoint whose model card is missing or
says `trained: false` is refused, so random weights never render a customer's video by mistake).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from worker.engine.errors import CANCELED, INVALID_OPTION, MODEL_UNAVAILABLE, EngineError
from worker.engine.renderers.base import AUDIO_SAMPLE_RATE, SegmentInput

if TYPE_CHECKING:
    from model.cards import ModelCard
    from model.pipeline_dubbing import DubbingPipeline

log = logging.getLogger(__name__)

DEFAULT_WORKING_SIZE = 384
# The lower face's height in working pixels that faces are scaled to when the card does not say
# (`face_pixels`): the middle of the range the first checkpoints' training crops showed (25 to 64 pixels).
DEFAULT_FACE_PIXELS = 40
# Small faces are scaled up to the target by at most this much (the model's working pixels then hold no
# more detail than the source, but the face is the size the model knows).
MAX_UPSCALE = 2.0
# A view cut around a face spans at least this many of its mask boxes each way (training crops: 1.6 to 5).
CONTEXT_BOXES = 3
MIN_WORKING_SIDE = 128
# Frames of a window's output that the next window of the same segment is given as motion frames (fewer
# for short windows: a quarter of the window).
WINDOW_OVERLAP = 4
DEFAULT_REFERENCE_FRAMES = 2
# A pixel darker than this fraction of its mouth box's median luma counts as mouth interior (an open mouth).
DARK_FRACTION = 0.5
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# Real audio around the segment: the edge frames' windows reach past it, and the encoder hears context.
AUDIO_CONTEXT_SECONDS = 1.0


def _int_setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EngineError(INVALID_OPTION, f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise EngineError(INVALID_OPTION, f"{name} must not be negative, got {value}")
    return value


def _float_setting(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise EngineError(INVALID_OPTION, f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise EngineError(INVALID_OPTION, f"{name} must be a number of at least {minimum}, got {raw!r}")
    return value


def _dtype_setting(name: str) -> torch.dtype | None:
    """None: the loader's default (bf16 on a GPU, fp32 on the CPU)."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw not in DTYPES:
        raise EngineError(INVALID_OPTION, f"{name} must be one of {', '.join(DTYPES)}, got {raw!r}")
    return DTYPES[raw]


def _flag_setting(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise EngineError(INVALID_OPTION, f"{name} must be 1 or 0, got {raw!r}")


def check_trained(path: Path) -> ModelCard | None:
    """Refuse a checkpoint that is not known to be trained, unless REDUB_ALLOW_UNTRAINED_MODEL is set."""
    from model.cards import MODEL_CARD_NAME, read_model_card

    allowed = _flag_setting("REDUB_ALLOW_UNTRAINED_MODEL")
    try:
        card = read_model_card(path)
    except ValueError as error:
        raise EngineError(MODEL_UNAVAILABLE, f"checkpoint {path} has a bad model card: {error}") from error
    anyway = "set REDUB_ALLOW_UNTRAINED_MODEL=1 to render with it anyway"
    if card is None and not allowed:
        raise EngineError(
            MODEL_UNAVAILABLE,
            f"checkpoint {path} has no model card ({MODEL_CARD_NAME}), so nothing says it was trained; "
            f"{anyway}",
        )
    if card is not None and not card.trained and not allowed:
        raise EngineError(MODEL_UNAVAILABLE, f"checkpoint {path} is untrained (random weights); {anyway}")
    if card is None or not card.trained:
        log.warning("rendering with a checkpoint not known to be trained", extra={"model_path": str(path)})
    return card


def resolve_checkpoint(model: str | None) -> Path:
    """The checkpoint folder of a model id or path; None: REDUB_MODEL_PATH, else the shipped checkpoint."""
    from model.catalog import available_models, shipped_model_path

    if model is None:
        raw_path = os.environ.get("REDUB_MODEL_PATH", "").strip()
        path = Path(raw_path) if raw_path else shipped_model_path()
    else:
        entry = available_models().get(model)
        if entry is not None and entry.path is not None:
            path = entry.path
        elif (Path(model) / "model_index.json").is_file():
            path = Path(model)
        else:
            known = ", ".join(name for name, item in available_models().items() if item.path is not None)
            raise EngineError(INVALID_OPTION, f"unknown model {model!r}; the dit models here: {known}")
    if not (path / "model_index.json").is_file():
        raise EngineError(MODEL_UNAVAILABLE, f"no dubbing checkpoint at {path} (model_index.json missing)")
    return path


@dataclass(frozen=True)
class View:
    """The part of the frame the model sees, in source pixels, and the working size it is resampled to."""

    top: int
    bottom: int
    left: int
    right: int
    work_height: int
    work_width: int

    def is_whole(self, height: int, width: int) -> bool:
        return (self.top, self.bottom, self.left, self.right) == (0, height, 0, width)


def plan_view(
    height: int,
    width: int,
    box: tuple[int, int, int, int],
    longer_side: int,
    multiple: int,
    face_pixels: int = DEFAULT_FACE_PIXELS,
) -> View:
    """What the model sees of a `height` x `width` frame whose masks cover `box` (top, bottom, left, right).

    The scale brings the lower face (the box's height) to `face_pixels`, the size the model was trained on
    (at most MAX_UPSCALE). The whole frame is seen when it fits in `longer_side` working pixels at that
    scale (0: no cap); otherwise a window around the face that does, at least CONTEXT_BOXES boxes wide, so a
    small face in a large frame keeps its size instead of shrinking to a few pixels with the frame. A view
    whose longer side would be under MIN_WORKING_SIDE is scaled up to it (never past the source size).
    """
    top, bottom, left, right = box
    box_height, box_width = bottom - top, right - left
    scale = min(MAX_UPSCALE, face_pixels / max(1, box_height))
    view_height, view_width = height, width
    if longer_side and max(height, width) * scale > longer_side:
        # A window around the face: as large as the cap allows at the face's scale, and never so small that
        # the face loses its surroundings (then the scale gives way instead).
        side = longer_side / scale
        view_height = min(height, max(round(side), CONTEXT_BOXES * box_height))
        view_width = min(width, max(round(side), CONTEXT_BOXES * box_width))
        scale = min(scale, longer_side / max(view_height, view_width))
    scale = max(scale, min(1.0, MIN_WORKING_SIDE / max(view_height, view_width)))
    view_top = int(np.clip(round((top + bottom - view_height) / 2), 0, height - view_height))
    view_left = int(np.clip(round((left + right - view_width) / 2), 0, width - view_width))

    def fit(side: int) -> int:
        return max(multiple, multiple * math.floor(side * scale / multiple + 0.5))

    return View(
        view_top,
        view_top + view_height,
        view_left,
        view_left + view_width,
        fit(view_height),
        fit(view_width),
    )


def _stop_when_canceled(
    should_cancel: Callable[[], bool] | None,
) -> Callable[[Any, int, torch.Tensor, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None:
    """A step callback that ends the sampling loop after the step during which the dub was canceled."""
    if should_cancel is None:
        return None

    def check(_pipeline: Any, _step: int, _timestep: torch.Tensor, tensors: dict[str, torch.Tensor]) -> Any:
        if should_cancel():
            raise EngineError(CANCELED, "the dub was canceled")
        return tensors

    return check


def mask_bounding_box(masks: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) around every pixel any frame may change, or None if there is none."""
    covered: np.ndarray = np.any(masks > 0, axis=0)  # (height, width)
    rows = np.flatnonzero(np.any(covered, axis=1))
    columns = np.flatnonzero(np.any(covered, axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1


@functools.lru_cache(maxsize=2)
def _load_pipeline(path: Path, device: str | None, dtype: torch.dtype | None) -> DubbingPipeline:
    # Once per process: every dub creates its renderer, but a worker must not reload weights per job.
    from model.checkpoints import load_pipeline

    return load_pipeline(path, device=device, dtype=dtype)


class DitRenderer:
    name = "dit"
    changes_pixels = True

    def __init__(self, model: str | None = None) -> None:
        path = resolve_checkpoint(model)
        card = check_trained(path)
        self.max_frames = card.max_frames if card is not None else None
        self.face_pixels = (card.face_pixels if card is not None else None) or DEFAULT_FACE_PIXELS
        self.working_longer_side = _int_setting("REDUB_DIT_WORKING_SIZE", DEFAULT_WORKING_SIZE)
        self.seed = _int_setting("REDUB_DIT_SEED", 0)
        self.guidance_scale = _float_setting("REDUB_DIT_GUIDANCE", 1.0, minimum=1.0)
        self.reference_count = _int_setting("REDUB_DIT_REFERENCE_FRAMES", DEFAULT_REFERENCE_FRAMES)
        device = os.environ.get("REDUB_DIT_DEVICE", "").strip() or None
        dtype = _dtype_setting("REDUB_DIT_DTYPE")
        try:
            self.pipeline = _load_pipeline(path.resolve(), device, dtype)
        except (OSError, ValueError, RuntimeError) as error:
            raise EngineError(MODEL_UNAVAILABLE, f"cannot load the checkpoint at {path}: {error}") from error
        self.device = self.pipeline.transformer.device
        log.info("dit renderer ready", extra={"model_path": str(path), "device": str(self.device)})

    def render(self, segment: SegmentInput) -> np.ndarray:
        frames, masks = segment.frames, segment.masks
        box = mask_bounding_box(masks)
        if box is None:
            return frames
        height, width = frames.shape[1:3]
        view = plan_view(
            height, width, box, self.working_longer_side, self.pipeline.size_multiple, self.face_pixels
        )
        if view.is_whole(height, width):
            return self._render_view(segment, (view.work_height, view.work_width), box)
        rows, columns = slice(view.top, view.bottom), slice(view.left, view.right)
        previous = segment.previous_frames
        cropped = dataclasses.replace(
            segment,
            frames=frames[:, rows, columns],
            masks=masks[:, rows, columns],
            previous_frames=None if previous is None else previous[:, rows, columns],
        )
        local_box = (box[0] - view.top, box[1] - view.top, box[2] - view.left, box[3] - view.left)
        result = frames.copy()
        result[:, rows, columns] = self._render_view(cropped, (view.work_height, view.work_width), local_box)
        return result

    def _render_view(
        self, segment: SegmentInput, work_size: tuple[int, int], box: tuple[int, int, int, int]
    ) -> np.ndarray:
        """The segment's frames (already cut to the view) rendered at `work_size`."""
        frames, masks = segment.frames, segment.masks
        frame_count = len(frames)
        work_height, work_width = work_size
        # The person's own unmasked frames, so teeth, lips and beard stay theirs: chosen once per segment.
        chosen = choose_reference_frames(frames, masks, self.reference_count)
        references = None
        if len(chosen):
            references = self._to_working(frames[chosen], len(chosen), work_height, work_width)

        # Windows no longer than the model was trained on, each given the last frames of the one before.
        window = frame_count if self.max_frames is None else max(2, self.max_frames)
        overlap = min(WINDOW_OVERLAP, max(1, (window - 1) // 4))
        result = frames.copy()
        previous = segment.previous_frames
        start = 0
        while True:
            stop = min(frame_count, start + window)
            generated = self._render_window(
                segment, start, stop, previous, references, (work_height, work_width), box
            )
            result[start:stop] = generated
            if stop == frame_count:
                return result
            previous = generated[stop - start - overlap :]
            start = stop - overlap

    def _render_window(
        self,
        segment: SegmentInput,
        start: int,
        stop: int,
        previous: np.ndarray | None,
        references: torch.Tensor | None,
        work_size: tuple[int, int],
        box: tuple[int, int, int, int],
    ) -> np.ndarray:
        """Generated frames [start, stop) of the segment (source pixels outside the mask's box)."""
        frames, masks = segment.frames[start:stop], segment.masks[start:stop]
        frame_count = stop - start
        work_height, work_width = work_size
        # The causal VAE needs 1 + 4k frames: repeat the last frame, drop the extra output afterwards.
        multiple = self.pipeline.frame_multiple
        padded_count = 1 + multiple * math.ceil((frame_count - 1) / multiple)

        # (1, padded_count, 3, work_height, work_width) in [0, 1]
        frame_tensor = self._to_working(frames, padded_count, work_height, work_width)
        # (1, padded_count, work_height, work_width)
        mask_tensor = self._masks_to_working(masks, padded_count, work_height, work_width)
        motion = None
        if previous is not None and len(previous):
            shown = shown_frames(frames[: len(previous)], previous[:frame_count], masks)
            motion = self._to_working(shown, len(shown), work_height, work_width)

        audio, audio_offset = self._audio_clip(segment, start, padded_count)
        from model.pipeline_dubbing import DubbingPipelineOutput

        generator = torch.Generator(device="cpu").manual_seed(self.seed + segment.segment.index + start)
        output = self.pipeline(
            frame_tensor,
            mask_tensor,
            audio,
            frame_rate=segment.frame_rate,
            audio_offset=audio_offset,
            reference_frames=references,
            motion_frames=motion,
            generator=generator,
            guidance_scale=self.guidance_scale,
            # The engine blends by the soft mask at the source size: blending here too would weigh a
            # generated pixel by mask² (0.25 where the mask is 0.5).
            composite_output=False,
            callback_on_step_end=_stop_when_canceled(segment.should_cancel),
        )
        assert isinstance(output, DubbingPipelineOutput) and isinstance(output.frames, torch.Tensor)
        generated = output.frames[0, :frame_count]  # (frames, 3, work_height, work_width)
        return paste_upsampled_box(frames, generated, box)

    # -- helpers --

    def _to_working(self, frames: np.ndarray, count: int, height: int, width: int) -> torch.Tensor:
        # (frames, height, width, 3) uint8 -> (1, count, 3, height, width) float in [0, 1]
        tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
        if tensor.shape[0] < count:
            tensor = torch.cat([tensor, tensor[-1:].expand(count - tensor.shape[0], -1, -1, -1)])
        if tensor.shape[2:] != (height, width):
            tensor = torch.nn.functional.interpolate(
                tensor, size=(height, width), mode="bilinear", antialias=True, align_corners=False
            )
        return tensor.clamp(0, 1)[None].to(self.device)

    def _masks_to_working(self, masks: np.ndarray, count: int, height: int, width: int) -> torch.Tensor:
        # (frames, height, width) -> (1, count, height, width). Area averaging keeps every working pixel that
        # the mask touches above 0, and the pipeline hides all of those from the model.
        tensor = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32))[:, None]
        if tensor.shape[0] < count:
            tensor = torch.cat([tensor, tensor[-1:].expand(count - tensor.shape[0], -1, -1, -1)])
        tensor = torch.nn.functional.interpolate(tensor, size=(height, width), mode="area")
        return tensor[:, 0].clamp(0, 1)[None].to(self.device)

    def _audio_clip(self, segment: SegmentInput, first: int, frame_count: int) -> tuple[torch.Tensor, int]:
        """Audio of frames [first, first + frame_count) of the segment plus context on both sides (as far as
        the track goes), and the sample where frame `first` starts."""
        sample_rate = self.pipeline.feature_extractor.sampling_rate
        if sample_rate != AUDIO_SAMPLE_RATE:
            raise EngineError(
                INVALID_OPTION, f"the model expects {sample_rate} Hz audio, not {AUDIO_SAMPLE_RATE}"
            )
        context = round(AUDIO_CONTEXT_SECONDS * sample_rate)
        duration = math.ceil(frame_count / segment.frame_rate * sample_rate)
        first_sample = segment.audio_start + round(first / segment.frame_rate * sample_rate)
        start = max(0, first_sample - context)
        stop = min(len(segment.audio), first_sample + duration + context)
        clip = np.array(segment.audio[start:stop], dtype=np.float32)  # a copy: the track is memory-mapped
        audio_offset = first_sample - start
        if clip.size == 0:
            # The dub track ended before this segment: the model hears silence.
            clip = np.zeros(1, np.float32)
            audio_offset = 0
        return torch.from_numpy(clip)[None].to(self.device), audio_offset


def choose_reference_frames(frames: np.ndarray, masks: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to `count` frames spread over the segment, each the most closed mouth of its span.

    The segment is cut into `count` equal spans; in each, the frame with the fewest dark pixels inside the
    mask's box wins (an open mouth shows its dark interior; a closed one shows lips and skin), earliest on
    ties. Only the box is looked at, so the cost is a few box-sized means per frame.
    """
    frame_count = len(frames)
    count = min(count, frame_count)
    if count == 0:
        return np.zeros(0, np.int64)
    darkness = np.zeros(frame_count)
    box = mask_bounding_box(masks)
    if box is not None:
        top, bottom, left, right = box
        weights = np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601 luma tells dark from light
        for index in range(frame_count):  # one frame's box at a time: memory stays small
            luma = frames[index, top:bottom, left:right].astype(np.float32) @ weights
            darkness[index] = np.mean(luma < DARK_FRACTION * np.median(luma))
    edges = np.linspace(0, frame_count, count + 1).round().astype(np.int64)
    spans = itertools.pairwise(edges)
    return np.array([start + int(np.argmin(darkness[start:stop])) for start, stop in spans], np.int64)


def shown_frames(sources: np.ndarray, rendered: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """What the viewer saw of `rendered` frames: blended over their `sources` by the soft masks (RGB).

    Only the masks' box is computed: outside it the engine kept the source.
    """
    count = len(rendered)
    shown = sources[:count].copy()
    box = mask_bounding_box(masks[:count])
    if box is None:
        return shown
    top, bottom, left, right = box
    weight = masks[:count, top:bottom, left:right, None]
    source = shown[:, top:bottom, left:right].astype(np.float32)
    mixed = source + weight * (rendered[:, top:bottom, left:right].astype(np.float32) - source)
    shown[:, top:bottom, left:right] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return shown


def paste_upsampled_box(
    frames: np.ndarray, generated: torch.Tensor, box: tuple[int, int, int, int]
) -> np.ndarray:
    """Upsample only the generated box to the source size and paste it into a copy of the source."""
    top, bottom, left, right = box
    height, width = frames.shape[1:3]
    work_height, work_width = generated.shape[2:]
    # Where each box pixel's centre falls in the working frame (the mapping of a full-frame resize).
    rows = (torch.arange(top, bottom, dtype=torch.float64) + 0.5) * (work_height / height) - 0.5
    columns = (torch.arange(left, right, dtype=torch.float64) + 0.5) * (work_width / width) - 0.5
    # Only the working pixels those centres need (bicubic reads 2 neighbours each side) are resampled.
    crop_top = max(0, math.floor(float(rows[0])) - 2)
    crop_bottom = min(work_height, math.ceil(float(rows[-1])) + 3)
    crop_left = max(0, math.floor(float(columns[0])) - 2)
    crop_right = min(work_width, math.ceil(float(columns[-1])) + 3)
    crop = generated[:, :, crop_top:crop_bottom, crop_left:crop_right].float().cpu()
    # grid_sample's normalised coordinates (align_corners=False) of those centres inside the crop
    grid_y = ((rows - crop_top) + 0.5) / (crop_bottom - crop_top) * 2 - 1
    grid_x = ((columns - crop_left) + 0.5) / (crop_right - crop_left) * 2 - 1
    # (frames, box_height, box_width, 2) with (x, y) last, as grid_sample wants
    grid = torch.stack(torch.meshgrid(grid_x, grid_y, indexing="xy"), dim=-1).float()
    grid = grid[None].expand(crop.shape[0], -1, -1, -1)
    upsampled = torch.nn.functional.grid_sample(
        crop, grid, mode="bicubic", padding_mode="border", align_corners=False
    )
    pixels = (upsampled.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    result = frames.copy()
    result[:, top:bottom, left:right] = pixels
    return result
