"""Every condition: reproducible, the same outside the mouth in source and target, occluder and listener
pixels identical, and each condition does what it says."""

from __future__ import annotations

import numpy as np
import pytest

from model.synth import CONDITIONS, SynthPair, make_pair

_SMALL = {"size": (128, 128), "seconds": 1.2}


@pytest.fixture(scope="module", params=CONDITIONS)
def pair(request: pytest.FixtureRequest) -> SynthPair:
    return make_pair(request.param, 1, **_SMALL)


def test_reproducible(pair: SynthPair) -> None:
    again = make_pair(pair.condition, 1, **_SMALL)
    for role in ("source", "target"):
        assert np.array_equal(getattr(pair, role).frames, getattr(again, role).frames), role
        assert np.array_equal(getattr(pair, role).audio, getattr(again, role).audio), role


def test_outside_the_masks_source_and_target_are_identical(pair: SynthPair) -> None:
    source, target = pair.source, pair.target
    outside = (source.masks == 0) & (target.masks == 0)
    assert outside.mean() > 0.3
    assert np.array_equal(source.frames[outside], target.frames[outside])


def test_occluders_and_listeners_are_the_same_in_both(pair: SynthPair) -> None:
    source, target = pair.source, pair.target
    has_occluder = pair.condition in ("occluder", "hair", "foliage")
    assert (target.occluder is not None) == has_occluder
    assert (target.listener is not None) == (pair.condition == "two_people")
    if target.occluder is not None:
        assert source.occluder is not None and np.array_equal(source.occluder, target.occluder)
        assert target.occluder.any()
        assert np.array_equal(source.frames[target.occluder], target.frames[target.occluder])
        # It is in front of the lower face, where a dub would be judged.
        assert (target.occluder & (target.masks > 0.5)).any()
    if target.listener is not None:
        assert source.listener is not None and np.array_equal(source.listener, target.listener)
        assert target.listener.any()
        assert np.array_equal(source.frames[target.listener], target.frames[target.listener])
        assert target.masks[target.listener].max() == 0.0  # the speaker's mask never reaches the listener


def test_small_face_stays_small_at_720p() -> None:
    pair = make_pair("small_face", 2, size=(720, 1280), seconds=0.5)
    landmarks = pair.target.landmarks
    height = np.linalg.norm(landmarks[:, 152] - landmarks[:, 10], axis=1)
    assert height.max() <= 60.0
    assert height.min() >= 20.0


def test_turned_heads_are_foreshortened() -> None:
    def eye_over_face(pair: SynthPair) -> np.ndarray:
        points = pair.target.landmarks
        eyes = np.linalg.norm(points[:, 263] - points[:, 33], axis=1)
        return eyes / np.linalg.norm(points[:, 152] - points[:, 10], axis=1)

    clean = eye_over_face(make_pair("clean", 5, **_SMALL))
    profile = eye_over_face(make_pair("profile", 5, **_SMALL))
    turns = eye_over_face(make_pair("head_turns", 5, size=(128, 128), seconds=3.0))
    assert profile.max() < 0.75 * clean.min()  # 45-80 degrees: cos <= 0.71
    assert turns.max() - turns.min() > 0.15 * clean.mean()  # the turn changes during the clip


def test_dark_is_dark_and_noisy() -> None:
    dark = make_pair("dark", 6, **_SMALL).target.frames.astype(np.float32)
    clean = make_pair("clean", 6, **_SMALL).target.frames.astype(np.float32)
    assert dark.mean() < 0.45 * clean.mean()
    # Sensor noise: consecutive frames differ even where nothing moves (the still background corners).
    assert np.abs(dark[1, :8, :8] - dark[0, :8, :8]).mean() > 0.5


def test_motion_blur_moves_fast() -> None:
    def speed(pair: SynthPair) -> float:
        return float(np.linalg.norm(np.diff(pair.target.landmarks[:, 1], axis=0), axis=1).mean())

    assert speed(make_pair("motion_blur", 7, **_SMALL)) > 2.0 * speed(make_pair("clean", 7, **_SMALL))


def test_eyes_blink(clean_pair: SynthPair) -> None:
    points = clean_pair.target.landmarks
    eye_opening = np.linalg.norm(points[:, 159] - points[:, 145], axis=1)
    assert eye_opening.min() < 0.4 * eye_opening.max()
    # The same blinks in source and target: they are part of the scene.
    assert np.allclose(clean_pair.source.landmarks[:, 159], points[:, 159])
