"""A preflight's representative frame: the frame that shows the most faces (dubbed speakers first), as an
upright JPEG, with each face's box, so a person can see who is who and pick whom to dub."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from worker.engine.analysis.analysis import Analysis
from worker.engine.errors import INVALID_MEDIA, EngineError
from worker.engine.probe import decode_frames, open_container

# Enough to tell faces apart on a page; the boxes stay in the source's display pixels.
_MAX_LONG_SIDE = 1280
_JPEG_QUALITY = 85


def representative_frame(analysis: Analysis) -> int:
    """The first frame with the most faces present, counting a dubbed face that speaks there above others."""
    score = np.zeros(analysis.frame_count, dtype=np.int64)
    dubbed = set(analysis.dubbed_track_ids)
    for track in analysis.tracks:
        span = slice(track.first_frame, track.last_frame + 1)
        score[span] += 4 * track.present
        if track.id in dubbed and len(track.speaking):
            score[span] += 2 * track.speaking
        if track.id in dubbed:
            score[span] += track.present
    return int(np.argmax(score)) if len(score) else 0


def faces_at(analysis: Analysis, index: int) -> list[dict[str, Any]]:
    """Each face present in frame `index`: its track id, box [x0, y0, x1, y1] in display pixels, whether it
    is dubbed and whether it speaks there."""
    dubbed = set(analysis.dubbed_track_ids)
    faces = []
    for track in analysis.tracks:
        if not track.covers(index):
            continue
        offset = index - track.first_frame
        faces.append(
            {
                "track_id": track.id,
                "box": [round(float(value), 1) for value in track.boxes()[offset]],
                "dubbed": track.id in dubbed,
                "speaking": bool(track.speaking[offset]) if len(track.speaking) else False,
            }
        )
    return faces


def write_frame_jpeg(video: Path, analysis: Analysis, index: int, destination: Path) -> None:
    """Decode frame `index` (streaming up to it), turn it upright and save it as a JPEG."""
    with open_container(video) as container:
        stream = container.streams.video[0]
        for decoded, frame in enumerate(decode_frames(container, stream, video)):
            if decoded == index:
                pixels: np.ndarray = frame.to_ndarray(format="rgb24")  # (height, width, 3), coded size
                break
        else:
            raise EngineError(INVALID_MEDIA, f"{video.name}: frame {index} could not be decoded")
    turns = analysis.info.rotation // 90
    if turns:
        pixels = np.ascontiguousarray(np.rot90(pixels, k=turns))
    image = Image.fromarray(pixels)
    image.thumbnail((_MAX_LONG_SIDE, _MAX_LONG_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=_JPEG_QUALITY)
    destination.write_bytes(buffer.getvalue())


def frame_report(video: Path, analysis: Analysis, destination: Path) -> dict[str, Any]:
    """Write the representative frame to `destination`; return what the report says about it."""
    index = representative_frame(analysis)
    write_frame_jpeg(video, analysis, index, destination)
    width, height = analysis.info.display_size
    return {"index": index, "width": width, "height": height, "faces": faces_at(analysis, index)}
