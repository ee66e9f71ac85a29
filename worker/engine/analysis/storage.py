"""Save an Analysis to one file and load it back, so the GPU workers that render segments can draw masks
without analysing the video again. One .npz of plain arrays plus a JSON header; nothing is pickled."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from worker.engine.analysis.analysis import Analysis
from worker.engine.analysis.options import AnalysisOptions
from worker.engine.analysis.tracks import FaceTrack
from worker.engine.analysis.voice import VoiceActivity
from worker.engine.errors import INVALID_MEDIA, EngineError
from worker.engine.probe import VideoInfo

FORMAT_VERSION = 1
_TRACK_ARRAYS = ("detected", "present", "points", "pose", "quality", "speaking")


def save_analysis(analysis: Analysis, path: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    for item in dataclasses.fields(VideoInfo):
        value = getattr(analysis.info, item.name)
        if item.name == "timestamps":
            if value is not None:
                arrays["info_timestamps"] = value
        elif isinstance(value, Fraction):
            info[item.name] = {"fraction": str(value)}
        else:
            info[item.name] = value
    tracks = []
    for number, track in enumerate(analysis.tracks):
        tracks.append({"id": track.id, "shot": track.shot, "first_frame": track.first_frame})
        for name in _TRACK_ARRAYS:
            arrays[f"track{number}_{name}"] = getattr(track, name)
    voices = {}
    for name in ("source_voice", "dub_voice"):
        voice: VoiceActivity | None = getattr(analysis, name)
        if voice is not None:
            arrays[f"{name}_probabilities"] = voice.probabilities
            voices[name] = [list(segment) for segment in voice.segments]
    options = dataclasses.asdict(analysis.options)
    options.pop("speakers")  # already resolved into dubbed_track_ids
    header = {
        "version": FORMAT_VERSION,
        "info": info,
        "frame_count": analysis.frame_count,
        "shots": analysis.shots,
        "tracks": tracks,
        "voices": voices,
        "dubbed_track_ids": analysis.dubbed_track_ids,
        "speaker_selection": analysis.speaker_selection,
        "options": options,
        "detections_run": analysis.detections_run,
        "warnings": analysis.warnings,
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    stored: dict[str, Any] = arrays  # numpy's stub types **kwargs too narrowly
    with path.open("wb") as file:
        np.savez_compressed(file, **stored)


def load_analysis(path: Path) -> Analysis:
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (OSError, ValueError, KeyError) as error:
        raise EngineError(INVALID_MEDIA, f"{path.name} is not a saved analysis ({error})") from error
    if header.get("version") != FORMAT_VERSION:
        raise EngineError(INVALID_MEDIA, f"{path.name}: unsupported analysis format {header.get('version')}")
    info_fields: dict[str, Any] = {
        name: Fraction(value["fraction"]) if isinstance(value, dict) else value
        for name, value in header["info"].items()
    }
    info = VideoInfo(**info_fields, timestamps=arrays.get("info_timestamps"))
    tracks = [
        FaceTrack(
            id=facts["id"],
            shot=facts["shot"],
            first_frame=facts["first_frame"],
            **{name: arrays[f"track{number}_{name}"] for name in _TRACK_ARRAYS},
        )
        for number, facts in enumerate(header["tracks"])
    ]
    voices = {
        name: VoiceActivity(arrays[f"{name}_probabilities"], tuple(tuple(item) for item in segments))
        for name, segments in header["voices"].items()
    }
    return Analysis(
        info=info,
        frame_count=header["frame_count"],
        shots=header["shots"],
        tracks=tracks,
        source_voice=voices.get("source_voice"),
        dub_voice=voices.get("dub_voice"),
        dubbed_track_ids=header["dubbed_track_ids"],
        speaker_selection=header["speaker_selection"],
        options=AnalysisOptions(**header["options"]),
        detections_run=header["detections_run"],
        warnings=header["warnings"],
    )
