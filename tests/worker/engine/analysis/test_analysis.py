"""analyze() on footage made from a real face photo: tracks, speakers, masks, shots, the no-face policy."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from tests.worker.engine.analysis.conftest import (
    FRAME_RATE,
    HARDSHIP_STAGES,
    STAGE_FRAMES,
    Conversation,
    Hardship,
    ThreeShots,
)
from tests.worker.engine.analysis.footage import mouth_point
from worker.engine.analysis.analysis import analyze
from worker.engine.analysis.options import AnalysisOptions
from worker.engine.errors import NO_FACE, EngineError


def _track_at(conversation: Conversation, x: float) -> int:
    """Id of the track whose first box contains column x."""
    for track in conversation.analysis.tracks:
        x0, _, x1, _ = track.boxes()[0]
        if x0 <= x <= x1:
            return track.id
    raise AssertionError(f"no track at x={x}")


def test_two_people_are_two_stable_tracks(conversation: Conversation) -> None:
    report = conversation.analysis.to_dict()
    assert report["frame_count"] == len(conversation.talker)
    assert len(report["tracks"]) == 2
    for track in report["tracks"]:
        assert track["first_frame"] == 0
        assert track["last_frame"] == report["frame_count"] - 1
        assert track["frames_detected"] >= 0.95 * report["frame_count"]
    assert report["frames_without_face"] == 0


def test_the_talker_speaks_and_the_listener_does_not(conversation: Conversation) -> None:
    analysis = conversation.analysis
    talker = _track_at(conversation, conversation.talker[0].x)
    listener = _track_at(conversation, conversation.listener[0].x)
    assert analysis.dubbed_track_ids == [talker]
    assert analysis.speaker_selection == "speaking"
    tracks = {track.id: track for track in analysis.tracks}
    assert not tracks[listener].speaking.any()
    start, end = (round(second * FRAME_RATE) for second in conversation.source_speech_s)
    speaking = tracks[talker].speaking
    # Most of the speech is marked, and nothing well before it starts.
    assert speaking[start:end].mean() >= 0.8
    assert not speaking[: max(0, start - 5)].any()


def test_masks_cover_the_talkers_mouth_and_nothing_else(conversation: Conversation) -> None:
    analysis = conversation.analysis
    frames = np.arange(40, 60)
    masks = analysis.segment_masks(frames, output_start=40)
    assert masks is not None
    assert masks.shape == (len(frames), 270, 480)
    assert masks.dtype == np.float32 and masks.min() >= 0.0 and masks.max() <= 1.0
    for position, frame in enumerate(frames):
        talker, listener = conversation.talker[frame], conversation.listener[frame]
        mouth_x, mouth_y = mouth_point(talker)
        assert masks[position, round(mouth_y), round(mouth_x)] > 0.95
        listener_x, listener_y = mouth_point(listener)
        assert masks[position, round(listener_y), round(listener_x)] == 0.0
        # The eyes and the background stay out of the mask.
        eye_y = round(talker.y - talker.size * (96 - 65) / 192)
        assert masks[position, eye_y, round(mouth_x)] == 0.0
        assert masks[position, 5, 5] == 0.0
        # Only the lower face: the changed area is a fraction of the head crop.
        assert (masks[position] > 0).sum() < 0.4 * talker.size**2


def test_masks_are_temporally_smooth(conversation: Conversation) -> None:
    masks = conversation.analysis.segment_masks(np.arange(40, 60), output_start=40)
    assert masks is not None
    binary = masks > 0.5
    for previous, current in itertools.pairwise(binary):
        overlap = (previous & current).sum() / (previous | current).sum()
        assert overlap > 0.85


def test_no_mask_where_nobody_is_to_speak(conversation: Conversation) -> None:
    # Before both the source speech and the dub speech start, nothing is re-rendered.
    assert conversation.analysis.segment_masks(np.arange(0, 8), output_start=0) is None


def test_the_dub_audio_decides_at_output_time(conversation: Conversation) -> None:
    analysis = conversation.analysis
    # Source frames 0-7 are silent in the source; shown at output frames where the dub speaks, they get masks.
    dub_frame = round((conversation.dub_speech_start_s + 0.5) * FRAME_RATE)
    masks = analysis.segment_masks(np.arange(0, 8), output_start=dub_frame)
    assert masks is not None
    assert (masks.reshape(8, -1).max(axis=1) > 0.9).all()


def test_a_pinned_listener_is_dubbed_instead(conversation: Conversation) -> None:
    from worker.engine.analysis.options import SpeakerPin
    from worker.engine.analysis.speakers import choose_speakers

    listener = _track_at(conversation, conversation.listener[0].x)
    x, y = mouth_point(conversation.listener[10])
    pins = (SpeakerPin(point=(10, x, y)),)
    assert choose_speakers(conversation.analysis.tracks, pins) == ([listener], "pinned")


def test_per_frame_data_is_in_the_report_on_request(conversation: Conversation) -> None:
    report = conversation.analysis.to_dict(include_frames=True)
    frames = report["tracks"][0]["frames"]
    assert len(frames) == report["frame_count"]
    first = frames[0]
    assert set(first) >= {"frame", "detected", "box", "landmarks", "pose", "quality", "speaking"}
    assert len(first["box"]) == 4 and len(first["pose"]) == 3
    assert "frames" not in conversation.analysis.to_dict()["tracks"][0]


def test_one_face_survives_shadow_darkness_occlusion_and_motion(hardship: Hardship) -> None:
    analysis = hardship.analysis
    assert len(analysis.tracks) == 1, [track.summary() for track in analysis.tracks]
    track = analysis.tracks[0]
    assert track.first_frame <= 1 and track.last_frame == len(hardship.placements) - 1
    for number, stage in enumerate(HARDSHIP_STAGES):
        stage_frames = slice(number * STAGE_FRAMES - track.first_frame, (number + 1) * STAGE_FRAMES)
        rate = track.detected[stage_frames].mean()
        assert rate >= (0.6 if stage == "covered" else 0.9), (stage, rate)
    # Nobody talks here and there is no sound: covering the mouth or a change of light is not speech.
    assert not track.speaking.any()
    assert any("lip motion alone" in warning for warning in analysis.warnings)
    # Boxes follow the face: the box centre is within a fifth of the head size of the true centre.
    boxes = track.boxes()
    for offset, box in enumerate(boxes):
        placement = hardship.placements[track.first_frame + offset]
        assert abs((box[0] + box[2]) / 2 - placement.x) < placement.size / 5


def test_shots_are_frame_accurate_and_tracks_stay_inside_them(three_shots: ThreeShots) -> None:
    analysis = analyze(three_shots.video, None)
    assert analysis.shots == three_shots.shots
    assert len(analysis.tracks) == 2
    first, second = analysis.tracks
    assert first.id != second.id
    assert first.first_frame >= 0 and first.last_frame == 19
    assert second.first_frame == 32 and second.last_frame == 51
    # Nobody speaks: the one face of each shot is the most prominent one.
    assert analysis.dubbed_track_ids == [first.id, second.id]
    assert analysis.speaker_selection == "most_prominent_face"
    report = analysis.to_dict()
    assert report["frames_without_face"] == 12
    assert report["frames_without_face_ranges"] == [[20, 31]]
    # Segments never cross a shot cut.
    for segment in report["segments"]:
        shot = next(s for s in analysis.shots if s[0] <= segment["first_frame"] <= s[1])
        assert segment["last_frame"] <= shot[1]


def test_no_face_fails_the_job_when_asked(three_shots: ThreeShots) -> None:
    with pytest.raises(EngineError) as raised:
        analyze(three_shots.video, None, AnalysisOptions(on_no_face="fail"))
    assert raised.value.code == NO_FACE
    assert "12 of 52 frames" in raised.value.message and "20-31" in raised.value.message


def test_a_still_image_is_a_one_frame_video(tmp_path: Path) -> None:
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    report = analyze(image, None).to_dict()
    assert report["frame_count"] == 1
    assert report["shots"] == [[0, 0]]
    assert len(report["tracks"]) == 1
    assert report["tracks"][0]["median_face_height"] > 60
    assert report["frames_without_face"] == 0


def test_a_face_walking_in_is_tracked_from_its_entrance(tmp_path: Path) -> None:
    from tests.worker.engine.analysis.footage import Placement, background, compose, write_clip

    room = background(480, 270, seed=9)
    placements = [Placement(-60 + 10 * index, 140, 150) for index in range(36)]

    def render():
        for placement in placements:
            frame = room.copy()
            compose(frame, placement)
            yield frame

    analysis = analyze(write_clip(tmp_path / "enter.mp4", render()), None)
    (track,) = analysis.tracks
    # Detection scans run every 10 frames; the first to see the whole face is at frame 10. Following the face
    # back through the buffered frames finds it while it was still half outside the frame.
    assert track.first_frame <= 9
    assert placements[track.first_frame].x < 75
    assert track.last_frame == 35


def test_the_short_summary_for_jobs(conversation: Conversation) -> None:
    summary = conversation.analysis.summary()
    assert summary["speakers_dubbed"] == 1 and summary["face_tracks"] == 2
    assert summary["frames_without_face"] == 0 and summary["shots"] == 1


def test_without_source_sound_lip_motion_alone_finds_the_talker(conversation: Conversation) -> None:
    from worker.engine.analysis.speaking import mark_speaking

    tracks = copy.deepcopy(conversation.analysis.tracks)
    mark_speaking(tracks, None, conversation.analysis.frame_count, FRAME_RATE)
    talker = _track_at(conversation, conversation.talker[0].x)
    start, end = (round(second * FRAME_RATE) for second in conversation.source_speech_s)
    for track in tracks:
        if track.id == talker:
            assert track.speaking[start:end].mean() > 0.7
        else:
            assert not track.speaking.any()


def test_the_prominent_face_fallback_can_be_turned_off(conversation: Conversation) -> None:
    from worker.engine.analysis.speakers import choose_speakers

    tracks = copy.deepcopy(conversation.analysis.tracks)
    for track in tracks:
        track.speaking[:] = False
    talker = _track_at(conversation, conversation.talker[0].x)
    # The talker's head is drawn larger than the listener's.
    assert choose_speakers(tracks, None) == ([talker], "most_prominent_face")
    assert choose_speakers(tracks, None, fallback=False) == ([], "none")


def test_a_near_and_a_distant_face_in_720p(tmp_path: Path) -> None:
    from tests.worker.engine.analysis.footage import Placement, background, compose, write_clip

    room = background(1280, 720, seed=11)
    near, far = Placement(300, 400, 400), [Placement(900 + index, 300, 100) for index in range(20)]

    def render():
        for placement in far:
            frame = room.copy()
            compose(frame, near)
            compose(frame, placement)
            yield frame

    analysis = analyze(write_clip(tmp_path / "wide.mp4", render()), None)
    assert len(analysis.tracks) == 2
    heights = sorted(track.summary()["median_face_height"] for track in analysis.tracks)
    assert heights[0] < 70 < 200 < heights[1]  # the distant face is ~55 px high in a 720 px frame
    for track in analysis.tracks:
        assert (track.first_frame, track.last_frame, track.frames_detected) == (0, 19, 20)


def test_masks_fade_in_where_the_dub_starts_speaking(conversation: Conversation) -> None:
    analysis = conversation.analysis
    talker = _track_at(conversation, conversation.talker[0].x)
    # Show the silent opening of the source (frames 0-19) while the dub starts speaking.
    dub_start = round(conversation.dub_speech_start_s * FRAME_RATE)
    output_start = dub_start - 10
    weights = analysis.mask_weights(np.arange(20), output_start)[talker]
    assert weights[0] == 0.0 and weights[-1] == 1.0
    assert np.all(np.diff(weights) >= 0)  # it only rises
    assert np.abs(np.diff(weights)).max() < 0.5  # and never in one jump
    masks = analysis.segment_masks(np.arange(20), output_start)
    assert masks is not None
    peaks = masks.reshape(20, -1).max(axis=1)
    np.testing.assert_allclose(peaks, weights, atol=0.02)


def test_turn_taking_marks_each_person_only_while_they_talk(tmp_path: Path) -> None:
    from tests.worker.engine.analysis.footage import (
        SPEECH_EN,
        SPEECH_ES,
        Placement,
        background,
        compose,
        envelope,
        load_speech,
        place_speech,
        write_clip,
    )

    total_s = 8.4
    frames = round(total_s * FRAME_RATE)
    first_line = place_speech(load_speech(SPEECH_EN), 0.3, total_s)
    second_line = place_speech(load_speech(SPEECH_ES), 4.3, total_s)
    first_loudness = envelope(first_line, FRAME_RATE, frames)
    second_loudness = envelope(second_line, FRAME_RATE, frames)
    room = background(480, 270, seed=12)
    left = [Placement(120, 140, 160, opening=14 * float(first_loudness[index])) for index in range(frames)]
    right = [Placement(360, 140, 160, opening=14 * float(second_loudness[index])) for index in range(frames)]

    def render():
        for index in range(frames):
            frame = room.copy()
            compose(frame, left[index])
            compose(frame, right[index])
            yield frame

    video = write_clip(tmp_path / "turns.mp4", render(), audio=first_line + second_line)
    analysis = analyze(video, None)
    assert analysis.speaker_selection == "speaking"
    assert len(analysis.tracks) == 2
    by_side = sorted(analysis.tracks, key=lambda track: track.boxes()[0][0])
    first_turn = slice(round(0.5 * FRAME_RATE), round(3.6 * FRAME_RATE))
    second_turn = slice(round(4.5 * FRAME_RATE), round(8.0 * FRAME_RATE))
    assert by_side[0].speaking[first_turn].mean() > 0.8 and not by_side[0].speaking[second_turn].any()
    assert by_side[1].speaking[second_turn].mean() > 0.8 and not by_side[1].speaking[first_turn].any()


def test_a_pattern_the_detector_takes_for_a_face_is_no_track(tmp_path: Path) -> None:
    """The moon photograph: the detector scores a crater pattern 0.53 and the mesh fits a face to it."""
    still = tmp_path / "moon.png"
    cv2.imwrite(str(still), np.ascontiguousarray(skimage.data.moon()))
    analysis = analyze(still, None)
    assert analysis.tracks == []
    assert analysis.summary()["face_tracks"] == 0 and analysis.dubbed_track_ids == []


def test_a_blurred_patch_beside_the_speaker_is_not_a_second_face(tmp_path: Path) -> None:
    """A rendered clip of one person (strands of hair over the face) where a blurred patch beside the neck
    passes the detector (0.68) and meshes at peak quality 0.48: only the person is a track, and dubbed."""
    from model.synth import make_pair, write_pair

    pair = make_pair("hair", seed=0, split="heldout", size=(640, 360), seconds=1.0, frame_rate=25.0)
    write_pair(pair, tmp_path / "pair")
    analysis = analyze(tmp_path / "pair" / "source.mp4", tmp_path / "pair" / "dub.wav")
    assert [track.id for track in analysis.tracks] == [0]
    (track,) = analysis.tracks
    x0, y0, x1, y1 = track.boxes()[len(track.detected) // 2]
    speaker = pair.source.landmarks[len(track.detected) // 2]
    assert x0 <= speaker[:, 0].mean() <= x1 and y0 <= speaker[:, 1].mean() <= y1
    assert analysis.dubbed_track_ids == [0]


def test_glasses_inside_a_face_are_not_a_second_face(tmp_path: Path) -> None:
    """Grace Hopper's portrait (matplotlib's sample data): the detector also scores her glasses and nose as a
    smaller face inside hers; one person is one track."""
    import matplotlib.cbook

    portrait = Path(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    analysis = analyze(portrait, None)
    assert len(analysis.tracks) == 1
    x0, y0, x1, y1 = analysis.tracks[0].boxes()[0]
    assert x1 - x0 > 150 and y1 - y0 > 150  # her whole face, not the glasses
