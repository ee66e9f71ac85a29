"""The benchmark run: held-out synthetic pairs dubbed by the real engine, then scored against their truth.

For each condition and seed the synthetic pair is written to disk (source.mp4 with utterance A, dub.wav with
utterance B, truth.mp4: the same person saying B), `source.mp4` + `dub.wav` go through `dub()` exactly as a
user's files would (lossless, so every difference is the renderer's), and the output is compared with the
truth and the source frame by frame. One clip's files live in a temporary folder only while it is scored.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from model.evaluation.frames import engine_rgb_frames
from model.evaluation.metrics import (
    ChangedPixels,
    MaskedPsnr,
    SeamFlicker,
    best_offset_correlation,
    outside_of,
)
from model.evaluation.mouth import measure_opening
from worker.engine.analysis.analysis import Analysis, analyze
from worker.engine.analysis.options import AnalysisOptions
from worker.engine.errors import INVALID_OPTION, EngineError
from worker.engine.pipeline import DubOptions, DubReport, dub
from worker.engine.renderers import create_renderer
from worker.engine.segments import Segment

HELDOUT = "heldout"
FRAME_RATE = 25.0
SIZE_360P = (360, 640)  # (height, width)
SIZE_720P = (720, 1280)
# small_face is 5-8 % of the frame height: 36-58 px at 720p. At 360p (18-29 px) face analysis does not find
# it at all (seed 0: the speaker found in 0 % of frames), so nothing would be dubbed or measured.
DEFAULT_SIZES = {"small_face": SIZE_720P}
DEFAULT_SIZE = SIZE_360P
# 2 s clips in 29-frame segments (8 frames shared): two segments and one seam per clip, 58 rendered frames.
# With 1 seed of all 11 conditions that is ~640 frames, ~5 min for a small DiT at ~2 frames/s on 2 cores,
# which leaves the rest of a 10-minute budget for synthesis, analysis and scoring.
DEFAULT_SECONDS = 2.0
DEFAULT_SEGMENT_FRAMES = 29
# The truth has exactly the source's frames: the dub keeps the video's length (the dub audio is cut or padded
# by a fraction of a frame at most), so output frame i is source frame i and truth frame i.
SYNC_MODE = "silence"

Progress = Callable[[int, int, str], None]  # (clips done, clips in all, what is happening)


@dataclass(frozen=True)
class BenchmarkSettings:
    renderer: str = "passthrough"
    checkpoint: Path | None = None  # a saved pipeline for the dit renderer (REDUB_MODEL_PATH)
    conditions: tuple[str, ...] = ()  # empty: every condition
    seeds: int = 1  # held-out seeds 0 .. seeds - 1 of each condition
    size: tuple[int, int] | None = None  # (height, width) for every condition; None: DEFAULT_SIZES
    seconds: float = DEFAULT_SECONDS
    segment_frames: int = DEFAULT_SEGMENT_FRAMES
    # Dub the truth itself with the checkpoint's VAE round trip in place of its DiT (evaluation.ceiling).
    ceiling: bool = False

    def size_of(self, condition: str) -> tuple[int, int]:
        return self.size or DEFAULT_SIZES.get(condition, DEFAULT_SIZE)

    def dub_options(self) -> DubOptions:
        return DubOptions(
            renderer=self.renderer,
            lossless=True,
            sync_mode=SYNC_MODE,
            segment_frames=self.segment_frames,
            preset="veryfast",  # lossless output is the same whatever the preset; only the file size differs
        )


@dataclass
class ClipScore:
    condition: str
    seed: int
    size: list[int]  # [height, width]
    frames: int  # frames compared
    segments: list[list[int]]  # the engine's [start, end) segments
    sync_r: float
    sync_offset_frames: int
    source_sync_r: float  # the source's own mouth against the truth: what an audio-only dub scores
    lower_face_psnr_db: float | None
    outside_mask_changed_pixels: int
    occluder_psnr_db: float | None
    listener_changed_pixels: int | None
    seam_flicker: float | None
    truth_seam_flicker: float | None  # the same measure on the truth: how much the clip itself moves there
    speaker_found: dict[str, float]  # share of frames where the speaker's face was measured, output and truth
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class ConditionScore:
    name: str
    clips: int
    sync_r: float
    sync_offset_frames: int
    lower_face_psnr_db: float | None
    outside_mask_changed_pixels: int
    occluder_psnr_db: float | None
    listener_changed_pixels: int | None
    seam_flicker: float | None
    source_sync_r: float
    truth_seam_flicker: float | None
    size: list[int]

    @classmethod
    def of(cls, name: str, clips: list[ClipScore]) -> ConditionScore:
        """Means over clips (sums for pixel counts); the typical offset is the clips' median."""
        return cls(
            name=name,
            clips=len(clips),
            sync_r=_mean([clip.sync_r for clip in clips]) or 0.0,
            sync_offset_frames=int(statistics.median_low([clip.sync_offset_frames for clip in clips])),
            lower_face_psnr_db=_mean([clip.lower_face_psnr_db for clip in clips]),
            outside_mask_changed_pixels=sum(clip.outside_mask_changed_pixels for clip in clips),
            occluder_psnr_db=_mean([clip.occluder_psnr_db for clip in clips]),
            listener_changed_pixels=_sum([clip.listener_changed_pixels for clip in clips]),
            seam_flicker=_mean([clip.seam_flicker for clip in clips]),
            source_sync_r=_mean([clip.source_sync_r for clip in clips]) or 0.0,
            truth_seam_flicker=_mean([clip.truth_seam_flicker for clip in clips]),
            size=clips[0].size,
        )


@dataclass
class BenchmarkResult:
    settings: BenchmarkSettings
    conditions: list[ConditionScore]
    clips: list[ClipScore]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "renderer": settings.renderer,
            "checkpoint": str(settings.checkpoint) if settings.checkpoint is not None else None,
            "conditions": [_rounded(asdict(condition)) for condition in self.conditions],
            "settings": {
                "split": HELDOUT,
                "seeds": settings.seeds,
                "seconds": settings.seconds,
                "frame_rate": FRAME_RATE,
                "segment_frames": settings.segment_frames,
                "sync_mode": SYNC_MODE,
                "ceiling": settings.ceiling,
            },
            "summary": _rounded(self.summary()),
            "clips": [_rounded(asdict(clip)) for clip in self.clips],
            "seconds": round(self.seconds, 1),
        }

    def summary(self) -> dict[str, Any]:
        """One figure per measure over all conditions (each condition weighs the same)."""
        conditions = self.conditions
        return {
            "conditions": len(conditions),
            "clips": len(self.clips),
            "sync_r": _mean([condition.sync_r for condition in conditions]),
            "source_sync_r": _mean([condition.source_sync_r for condition in conditions]),
            "lower_face_psnr_db": _mean([condition.lower_face_psnr_db for condition in conditions]),
            "outside_mask_changed_pixels": sum(
                condition.outside_mask_changed_pixels for condition in conditions
            ),
            "occluder_psnr_db": _mean([condition.occluder_psnr_db for condition in conditions]),
            "listener_changed_pixels": _sum([condition.listener_changed_pixels for condition in conditions]),
            "seam_flicker": _mean([condition.seam_flicker for condition in conditions]),
        }


def run_benchmark(settings: BenchmarkSettings, progress: Progress | None = None) -> BenchmarkResult:
    """Dub and score every held-out clip the settings ask for; raise EngineError on bad settings."""
    from model.synth import CONDITIONS

    conditions = tuple(dict.fromkeys(settings.conditions)) or tuple(CONDITIONS)  # each once, in order
    unknown = [name for name in conditions if name not in CONDITIONS]
    if unknown:
        raise EngineError(
            INVALID_OPTION, f"unknown condition {', '.join(unknown)}; choose from {', '.join(CONDITIONS)}"
        )
    if settings.seeds < 1:
        raise EngineError(INVALID_OPTION, f"seeds must be at least 1, got {settings.seeds}")
    if not 0 < settings.seconds <= 60:
        raise EngineError(INVALID_OPTION, f"seconds must be in (0, 60], got {settings.seconds}")
    overlap = settings.dub_options().segment_overlap
    if settings.segment_frames <= overlap or (settings.segment_frames - 1) % 4:
        raise EngineError(
            INVALID_OPTION,
            f"segment frames must be 1+4k above the {overlap}-frame overlap, got {settings.segment_frames}",
        )
    if settings.ceiling:
        from model.evaluation.ceiling import CEILING_RENDERER, register

        register()
        settings = replace(settings, renderer=CEILING_RENDERER)
    report = progress or (lambda done, total, label: None)
    started = time.perf_counter()
    clips: list[ClipScore] = []
    total = len(conditions) * settings.seeds
    with model_path(settings.checkpoint):
        # Created once up front: a missing checkpoint fails before any clip is made, and a model is loaded
        # once (the engine's own renderer reuses the loaded weights).
        changes_pixels = create_renderer(settings.renderer).changes_pixels
        for condition in conditions:
            for seed in range(settings.seeds):
                label = f"{condition} seed {seed}"

                def stage(name: str, label: str = label) -> None:
                    report(len(clips), total, f"{label}: {name}")

                clips.append(score_clip(condition, seed, settings, changes_pixels, stage))
    report(total, total, "done")
    scores = [
        ConditionScore.of(name, [clip for clip in clips if clip.condition == name]) for name in conditions
    ]
    return BenchmarkResult(settings, scores, clips, time.perf_counter() - started)


def score_clip(
    condition: str,
    seed: int,
    settings: BenchmarkSettings,
    changes_pixels: bool,
    stage: Callable[[str], None],
) -> ClipScore:
    """Make one held-out pair, dub it through the engine and score the output."""
    from model.synth import make_pair, write_pair

    timer = StageTimer()
    size = settings.size_of(condition)
    with tempfile.TemporaryDirectory(prefix="redub-eval-") as work:
        directory = Path(work) / "pair"
        stage("synthesising")
        with timer("synth"):
            pair = make_pair(
                condition, seed, HELDOUT, size=size, seconds=settings.seconds, frame_rate=FRAME_RATE
            )
            write_pair(pair, directory)
        truth = Truth.of(pair.target)
        del pair  # the frames are on disk now; only the truth's masks and landmarks stay in memory
        files = PairFiles.in_directory(directory)
        if settings.ceiling:
            files = replace(files, source=files.truth)
        scores = score_pair(
            files,
            truth,
            settings.dub_options(),
            changes_pixels,
            Path(work) / "output.mp4",
            stage,
            timer,
        )
    return ClipScore(condition=condition, seed=seed, size=list(size), **scores, seconds=timer.seconds)


@dataclass(frozen=True)
class PairFiles:
    source: Path  # the video to dub (utterance A)
    dub_audio: Path  # utterance B
    truth: Path  # the video a perfect dub would produce

    @classmethod
    def in_directory(cls, directory: Path) -> PairFiles:
        """The files `model.synth.write_pair` writes."""
        return cls(directory / "source.mp4", directory / "dub.wav", directory / "truth.mp4")


@dataclass
class Truth:
    """What scoring needs of the target clip besides its video."""

    lower_face: np.ndarray  # (frames, height, width) bool: the target's mask above 0.5
    landmarks: np.ndarray  # (frames, points, 2): where the speaker's face is
    occluder: np.ndarray | None = None  # (frames, height, width) bool
    listener: np.ndarray | None = None  # (frames, height, width) bool

    @classmethod
    def of(cls, clip: Any) -> Truth:
        """From a `model.synth.SynthClip`."""
        return cls(np.asarray(clip.masks) > 0.5, clip.landmarks, clip.occluder, clip.listener)


def score_pair(
    files: PairFiles,
    truth: Truth,
    options: DubOptions,
    changes_pixels: bool,
    output: Path,
    stage: Callable[[str], None] = lambda name: None,
    timer: StageTimer | None = None,
) -> dict[str, Any]:
    """Dub `files.source` with `files.dub_audio` into `output` and score it: ClipScore's measured fields."""
    timer = timer or StageTimer()
    stage("analysing")
    with timer("analyze"):
        # What dub() itself would compute; given to it, so the masks scored are the ones it used.
        analysis = analyze(files.source, files.dub_audio, options.analysis)
    stage("dubbing")
    with timer("dub"):
        report = dub(
            files.source,
            files.dub_audio,
            output,
            options,
            mask_source=analysis if changes_pixels else None,
            source_cuts=analysis.cuts,
        )
    stage("comparing")
    with timer("compare"):
        pixels = _compare(output, files.source, files.truth, truth, report, analysis)
    stage("measuring lips")
    with timer("sync"):
        # The truth as the engine would deliver it (4:2:0 H.264, like every output): the landmarks then see
        # the same chroma on both sides, and a perfect dub measures exactly like the truth.
        passthrough = replace(options, renderer="passthrough", analysis=AnalysisOptions())
        true_opening = _delivered_opening(files.truth, files.dub_audio, output, passthrough, truth.landmarks)
        rendered_opening = measure_opening(output, truth.landmarks)
        sync_r, offset = best_offset_correlation(rendered_opening, true_opening)
        # The floor: the source's own mouth (what an audio-only dub shows) against the truth. Pairs share
        # their speech timing, so this is well above 0; a renderer has to beat it, not 0.
        if changes_pixels:
            source_opening = _delivered_opening(
                files.source, files.dub_audio, output, passthrough, truth.landmarks
            )
        else:
            source_opening = rendered_opening  # the output is the source as delivered
        source_sync_r, _ = best_offset_correlation(source_opening, true_opening)
    return {
        "frames": pixels.frames,
        "segments": [[segment.start, segment.end] for segment in report.segments],
        "sync_r": sync_r,
        "sync_offset_frames": offset,
        "source_sync_r": source_sync_r,
        "lower_face_psnr_db": pixels.lower_face.db,
        "outside_mask_changed_pixels": pixels.outside.count,
        "occluder_psnr_db": pixels.occluder.db if truth.occluder is not None else None,
        "listener_changed_pixels": pixels.listener.count if truth.listener is not None else None,
        "seam_flicker": pixels.flicker.ratio,
        "truth_seam_flicker": pixels.truth_flicker.ratio,
        "speaker_found": {
            "output": _share_finite(rendered_opening),
            "truth": _share_finite(true_opening),
        },
    }


@dataclass
class _PixelScores:
    lower_face: MaskedPsnr = field(default_factory=MaskedPsnr)
    outside: ChangedPixels = field(default_factory=ChangedPixels)
    occluder: MaskedPsnr = field(default_factory=MaskedPsnr)
    listener: ChangedPixels = field(default_factory=ChangedPixels)
    flicker: SeamFlicker = field(default_factory=lambda: SeamFlicker([]))
    truth_flicker: SeamFlicker = field(default_factory=lambda: SeamFlicker([]))
    frames: int = 0


def _compare(
    output: Path, source: Path, truth_video: Path, truth: Truth, report: DubReport, analysis: Analysis
) -> _PixelScores:
    """Frame by frame: output against truth in the lower face, against the source everywhere else."""
    segments: list[Segment] = report.segments
    scores = _PixelScores(flicker=SeamFlicker(segments), truth_flicker=SeamFlicker(segments))
    frames = zip(
        engine_rgb_frames(output), engine_rgb_frames(source), engine_rgb_frames(truth_video), strict=False
    )
    for index, (rendered, original, true) in enumerate(frames):
        if index >= len(truth.lower_face):
            break
        shape = rendered.shape[:2]
        occluded = truth.occluder[index] if truth.occluder is not None else np.zeros(shape, dtype=bool)
        lower_face = truth.lower_face[index]
        scores.lower_face.add(rendered, true, lower_face & ~occluded)
        engine_masks = analysis.segment_masks(report.plan.source_indices(index, index + 1), index)
        scores.outside.add(rendered, original, outside_of(engine_masks, shape))
        if truth.occluder is not None:
            scores.occluder.add(rendered, original, occluded)
        if truth.listener is not None:
            scores.listener.add(rendered, original, truth.listener[index])
        scores.flicker.add(rendered, lower_face)
        scores.truth_flicker.add(true, lower_face)
        scores.frames = index + 1
    return scores


@contextmanager
def model_path(checkpoint: Path | None) -> Iterator[None]:
    """REDUB_MODEL_PATH set to `checkpoint` while the benchmark runs (the dit renderer reads it)."""
    if checkpoint is None:
        yield
        return
    previous = os.environ.get("REDUB_MODEL_PATH")
    os.environ["REDUB_MODEL_PATH"] = str(checkpoint)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("REDUB_MODEL_PATH", None)
        else:
            os.environ["REDUB_MODEL_PATH"] = previous


class StageTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(time.perf_counter() - started, 2)


def _delivered_opening(
    video: Path, dub_audio: Path, beside: Path, passthrough: DubOptions, landmarks: np.ndarray
) -> np.ndarray:
    """The speaker's mouth opening in `video` as the engine would deliver it (a passthrough dub: 4:2:0 like
    every output, so the landmarks see the same chroma on both sides of a comparison)."""
    delivered = beside.with_name(f"{beside.stem}.{video.stem}.delivered.mp4")
    dub(video, dub_audio, delivered, passthrough)
    try:
        return measure_opening(delivered, landmarks)
    finally:
        delivered.unlink(missing_ok=True)


def _share_finite(values: np.ndarray) -> float:
    return float(np.isfinite(values).mean()) if len(values) else 0.0


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None


def _sum(values: list[int | None]) -> int | None:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in values.items()}
