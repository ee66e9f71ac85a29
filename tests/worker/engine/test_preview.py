"""A preflight's representative frame: which frame is chosen, and that its JPEG is upright and whole."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
from PIL import Image

from tests.media import write_video
from worker.engine.analysis.analysis import analyze
from worker.engine.preview import faces_at, frame_report, representative_frame


def _track(track_id: int, first: int, last: int, speaking: tuple[int, int] | None = None) -> SimpleNamespace:
    span = last - first + 1
    talking = np.zeros(span, dtype=bool)
    if speaking is not None:
        talking[speaking[0] - first : speaking[1] - first + 1] = True
    points = np.tile(np.array([[[10.0, 20.0], [30.0, 50.0]]], dtype=np.float32), (span, 1, 1))
    track = SimpleNamespace(
        id=track_id, first_frame=first, last_frame=last, present=np.ones(span, dtype=bool), speaking=talking
    )
    track.covers = lambda index: first <= index <= last
    track.boxes = lambda: np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)
    return track


def test_the_frame_with_most_faces_wins_and_a_speaking_dubbed_face_breaks_ties() -> None:
    listener, speaker = _track(0, 0, 9), _track(1, 5, 19, speaking=(12, 15))
    analysis = SimpleNamespace(frame_count=20, tracks=[listener, speaker], dubbed_track_ids=[1])
    assert representative_frame(analysis) == 5  # both faces from frame 5 on
    alone = SimpleNamespace(frame_count=20, tracks=[speaker], dubbed_track_ids=[1])
    assert representative_frame(alone) == 12  # the first frame it speaks in
    faces = faces_at(analysis, 5)
    assert [face["track_id"] for face in faces] == [0, 1]
    assert faces[1] == {"track_id": 1, "box": [10.0, 20.0, 30.0, 50.0], "dubbed": True, "speaking": False}
    assert representative_frame(SimpleNamespace(frame_count=7, tracks=[], dubbed_track_ids=[])) == 0


def test_a_sideways_phone_video_gives_an_upright_frame(tmp_path: Path) -> None:
    video = write_video(tmp_path / "phone.mp4", width=96, height=64, frames=12, rotation=90)
    analysis = analyze(video, None)
    described = frame_report(video, analysis, tmp_path / "frame.jpg")
    assert (described["width"], described["height"]) == (64, 96) and described["faces"] == []
    shown = np.asarray(
        Image.open(io.BytesIO((tmp_path / "frame.jpg").read_bytes())).convert("RGB"), np.float32
    )
    with av.open(str(video)) as container:
        coded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    # Turned as scene analysis turns frames, so the boxes of the report sit on the faces of the image.
    upright = np.rot90(coded[described["index"]], k=1).astype(np.float32)
    assert shown.shape == upright.shape == (96, 64, 3)
    assert np.abs(shown - upright).mean() < 6
