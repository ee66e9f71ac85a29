"""analyze(): one streaming pass over a video, then the speaker timeline; Analysis hands out masks.

The video is decoded once; each frame is scaled to the analysis size, turned upright, checked for a cut and
given to the face tracker, then dropped. What stays is per-frame landmarks of each face (a few hundred bytes)
and voice-activity probabilities, so memory grows with faces x frames in compact arrays, never with pixels.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from worker.engine.analysis.masks import draw_mask, lower_face_polygon, smoothed_points
from worker.engine.analysis.options import AnalysisOptions
from worker.engine.analysis.shots import ShotDetector
from worker.engine.analysis.speakers import MOST_PROMINENT, choose_speakers
from worker.engine.analysis.speaking import mark_speaking
from worker.engine.analysis.tracking import FaceTracker
from worker.engine.analysis.tracks import FaceTrack, finish_track, frame_ranges, real_faces
from worker.engine.analysis.voice import VoiceActivity, detect_voice
from worker.engine.errors import CANCELED, INVALID_MEDIA, NO_FACE, EngineError
from worker.engine.probe import VideoInfo, decode_frames, ffmpeg_reason, open_container, probe_video
from worker.engine.segments import plan_segments

logger = logging.getLogger(__name__)

_DUB_SPEECH_PAD_S = 0.1  # lips start moving a little before the sound and settle after it
_SHOT_THUMBNAIL = (64, 36)
_MIN_MASK_FACE_PIXELS = 16.0
_SWITCH_RAMP_FRAMES = 3  # masks fade in and out over 2 * 3 + 1 frames where speech starts or stops


@dataclass
class Analysis:
    info: VideoInfo
    frame_count: int
    shots: list[list[int]]
    tracks: list[FaceTrack]
    source_voice: VoiceActivity | None
    dub_voice: VoiceActivity | None
    dubbed_track_ids: list[int]
    speaker_selection: str  # speaking, pinned, most_prominent_face or none
    options: AnalysisOptions
    detections_run: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def frame_rate(self) -> float:
        return float(self.info.frame_rate)

    @property
    def cuts(self) -> list[int]:
        """Source frames where a new shot starts (what `dub(source_cuts=...)` takes)."""
        return [first for first, _ in self.shots[1:]]

    @cached_property
    def face_present(self) -> np.ndarray:
        """(frame_count,) bool: some track is present in the frame."""
        present = np.zeros(self.frame_count, dtype=bool)
        for track in self.tracks:
            present[track.first_frame : track.last_frame + 1] |= track.present
        return present

    @cached_property
    def _dub_speech(self) -> np.ndarray | None:
        if self.dub_voice is None:
            return None
        frames = int(np.ceil(self.dub_voice.duration_s * self.frame_rate)) + 1
        return self.dub_voice.frames_with_speech(frames, self.frame_rate, _DUB_SPEECH_PAD_S)

    @cached_property
    def _dubbed(self) -> list[FaceTrack]:
        return [track for track in self.tracks if track.id in self.dubbed_track_ids]

    def _wanted(self, track: FaceTrack, source_frame: int, output_frame: int) -> bool:
        """Is this dubbed person to be re-rendered at this moment (whether or not the face is visible)?

        While the dub audio speaks (so the lips follow it), and also while they speak in the source (so their
        old words do not show on a silent stretch of the dub).
        """
        dub_speech = self._dub_speech
        if dub_speech is not None and 0 <= output_frame < len(dub_speech) and dub_speech[output_frame]:
            return True
        return track.first_frame <= source_frame <= track.last_frame and bool(
            track.speaking[source_frame - track.first_frame]
        )

    def _visible(self, track: FaceTrack, source_frame: int) -> bool:
        if not track.covers(source_frame):
            return False
        return float(np.ptp(track.points[source_frame - track.first_frame, :, 1])) >= _MIN_MASK_FACE_PIXELS

    def mask_weights(self, source_indices: np.ndarray, output_start: int) -> dict[int, np.ndarray]:
        """Per dubbed track visible in the segment, (frames,) weights in [0, 1]: 1 while re-rendered, ramping
        over a few frames where speech starts or stops so the switch never pops. Frames just outside the
        segment are assumed to continue its source frames one by one."""
        sources = np.asarray(source_indices, dtype=np.int64)
        count = len(sources)
        ramp = _SWITCH_RAMP_FRAMES
        extended = np.concatenate(
            [sources[0] - np.arange(ramp, 0, -1), sources, sources[-1] + np.arange(1, ramp + 1)]
        )
        kernel = np.ones(2 * ramp + 1) / (2 * ramp + 1)
        weights: dict[int, np.ndarray] = {}
        for track in self._dubbed:
            visible = np.array([self._visible(track, int(frame)) for frame in sources])
            if not visible.any():
                continue
            wanted = np.array(
                [
                    self._wanted(track, int(frame), output_start - ramp + position)
                    for position, frame in enumerate(extended)
                ],
                dtype=np.float64,
            )
            smooth = np.convolve(wanted, kernel, mode="valid")  # (count,)
            # Fully on wherever it is wanted at all; the ramp only softens the edges of the wanted stretches.
            weight = np.where(wanted[ramp : ramp + count] > 0, np.maximum(smooth, 0.5), smooth)
            weight = np.where(visible, weight, 0.0)
            if weight.any():
                weights[track.id] = weight.astype(np.float32)
        return weights

    def segment_masks(self, source_indices: np.ndarray, output_start: int) -> np.ndarray | None:
        """(frames, height, width) float32 masks in [0, 1], upright, one per source frame; None if empty."""
        weights = self.mask_weights(source_indices, output_start)
        if not weights:
            return None
        width, height = self.info.display_size
        masks = np.zeros((len(source_indices), height, width), dtype=np.float32)
        tracks = {track.id: track for track in self._dubbed}
        for track_id, weight in weights.items():
            for position, source_frame in enumerate(np.asarray(source_indices).tolist()):
                if weight[position] > 0:
                    polygon, sigma = lower_face_polygon(smoothed_points(tracks[track_id], int(source_frame)))
                    draw_mask(masks[position], polygon, sigma, float(weight[position]))
        return masks

    def summary(self) -> dict[str, Any]:
        """The short form for a job resource and its webhook."""
        return {
            "speakers_dubbed": len(self.dubbed_track_ids),
            "speaker_track_ids": self.dubbed_track_ids,
            "speaker_selection": self.speaker_selection,
            "face_tracks": len(self.tracks),
            "shots": len(self.shots),
            "frames_without_face": int((~self.face_present).sum()),
            "warnings": self.warnings,
        }

    def to_dict(self, include_frames: bool = False) -> dict[str, Any]:
        without_face = ~self.face_present
        report: dict[str, Any] = {
            "video": self.info.summary(),
            "frame_count": self.frame_count,
            "frame_rate": self.frame_rate,
            "shots": self.shots,
            "tracks": [track.summary() for track in self.tracks],
            "speakers": self.dubbed_track_ids,
            "speaker_selection": self.speaker_selection,
            "speaker_timeline": [
                {"track_id": track.id, "first_frame": first, "last_frame": last}
                for track in self.tracks
                for first, last in track.speaking_ranges()
            ],
            "frames_without_face": int(without_face.sum()),
            "frames_without_face_ranges": frame_ranges(without_face),
            "on_no_face": self.options.on_no_face,
            "source_voice": self.source_voice.to_dict() if self.source_voice else None,
            "dub_voice": self.dub_voice.to_dict() if self.dub_voice else None,
            "segments": [
                {"index": segment.index, "first_frame": segment.start, "last_frame": segment.end - 1}
                for segment in plan_segments(self.frame_count, cuts=self.cuts)
            ],
            "detector_runs": self.detections_run,
            "warnings": self.warnings,
        }
        if include_frames:
            for summary, track in zip(report["tracks"], self.tracks, strict=True):
                summary["frames"] = track.frames_dict()
        return report


def analyze(
    video: Path,
    audio: Path | None,
    options: AnalysisOptions | None = None,
    *,
    progress: Callable[[str, float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Analysis:
    """Analyse a video (or still image) and, if given, the dub audio; raise EngineError on bad input."""
    options = options or AnalysisOptions()
    info = probe_video(video)
    dub_voice = detect_voice(audio) if audio is not None else None
    source_voice = detect_voice(video, required=False) if info.has_audio else None

    width, height = info.width, info.height  # coded size
    factor = min(1.0, options.analysis_long_side / max(width, height))
    analysis_width, analysis_height = max(2, round(width * factor)), max(2, round(height * factor))
    turns = info.rotation // 90
    frame_rate = float(info.frame_rate)
    max_gap = round(options.max_gap_s * frame_rate)
    stride = options.landmark_stride(frame_rate)
    tracker = FaceTracker(options.detect_interval, max_gap, options.landmark_threads, stride)
    shots = ShotDetector()
    cuts: list[int] = []
    decoded = 0
    with open_container(video) as container:
        stream = container.streams.video[0]
        try:
            for frame in decode_frames(container, stream, video):
                if should_cancel is not None and should_cancel():
                    raise EngineError(CANCELED, "analysis was canceled")
                pixels: np.ndarray = frame.to_ndarray(
                    width=analysis_width, height=analysis_height, format="rgb24"
                )
                if turns:
                    pixels = np.ascontiguousarray(np.rot90(pixels, k=turns))
                thumbnail = cv2.resize(pixels, _SHOT_THUMBNAIL, interpolation=cv2.INTER_AREA)
                cut = shots.is_cut(thumbnail)
                if cut:
                    cuts.append(decoded)
                tracker.step(decoded, pixels, cut)
                decoded += 1
                if progress is not None and decoded % 25 == 0:
                    progress("analyze", min(1.0, decoded / max(info.frame_count, 1)))
        except av.FFmpegError as error:
            raise EngineError(
                INVALID_MEDIA, f"{video.name}: the video cannot be decoded ({ffmpeg_reason(error)})"
            ) from error
    if decoded == 0:
        raise EngineError(INVALID_MEDIA, f"{video.name}: no frame of the video could be decoded")
    if decoded != info.frame_count:
        logger.warning("decoded frame count differs from the index", extra={"decoded": decoded})

    recorders = tracker.finish()
    tracks = real_faces(
        [finish_track(recorder, 1.0 / factor, max_gap, stride) for recorder in recorders], recorders
    )
    source_speech = None
    warnings: list[str] = []
    if source_voice is not None and source_voice.segments:
        source_speech = source_voice.speech_at(_frame_times(info, decoded), 1.0 / frame_rate)
    elif tracks:
        warnings.append("the source has no speech: speakers are found from lip motion alone")
    mark_speaking(tracks, source_speech, decoded, frame_rate)
    dubbed, selection = choose_speakers(tracks, options.speakers, options.fallback_to_prominent_face)
    if selection == MOST_PROMINENT:
        warnings.append(
            "no face speaks in the source: the most prominent face of each shot is dubbed; "
            "pin the right people with `speakers` if that is wrong"
        )
    elif tracks and not dubbed:
        warnings.append("no face speaks in the source: nothing will be re-rendered; pin one with `speakers`")
    boundaries = [0, *cuts, decoded]
    analysis = Analysis(
        info=info,
        frame_count=decoded,
        shots=[[first, next_first - 1] for first, next_first in itertools.pairwise(boundaries)],
        tracks=tracks,
        source_voice=source_voice,
        dub_voice=dub_voice,
        dubbed_track_ids=dubbed,
        speaker_selection=selection,
        options=options,
        detections_run=tracker.detections_run,
        warnings=warnings,
    )
    missing = int((~analysis.face_present).sum())
    if options.on_no_face == "fail" and missing:
        ranges = frame_ranges(~analysis.face_present)
        shown = ", ".join(f"{first}-{last}" for first, last in ranges[:5]) + (
            " ..." if len(ranges) > 5 else ""
        )
        raise EngineError(NO_FACE, f"{missing} of {decoded} frames have no usable face (frames {shown})")
    logger.info(
        "analysis done",
        extra={"frames": decoded, "shots": len(analysis.shots), "tracks": len(tracks), "dubbed": dubbed},
    )
    return analysis


def _frame_times(info: VideoInfo, frame_count: int) -> np.ndarray:
    """When each source frame is shown, in seconds: its own timestamp (variable frame rates), else i / fps."""
    if info.timestamps is not None and len(info.timestamps) == frame_count:
        return info.timestamps.astype(np.float64) * float(info.time_base)
    return np.arange(frame_count) / float(info.frame_rate)
