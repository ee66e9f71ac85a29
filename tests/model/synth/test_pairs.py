"""make_pair: determinism, split separation, ground truth that matches the pixels, the engine's masks."""

from __future__ import annotations

import numpy as np
import pytest

from model.synth import CONDITIONS, SynthError, SynthPair, make_pair
from model.synth.clips import engine_mask
from model.synth.visemes import JAW


def _assert_same(first: SynthPair, second: SynthPair) -> None:
    for role in ("source", "target"):
        one, two = getattr(first, role), getattr(second, role)
        for name in ("frames", "audio", "opening", "mouth", "landmarks", "masks"):
            assert np.array_equal(getattr(one, name), getattr(two, name)), (role, name)


def test_same_arguments_same_pair(clean_pair: SynthPair) -> None:
    _assert_same(clean_pair, make_pair("clean", 3))


def test_train_and_heldout_never_share_a_clip(clean_pair: SynthPair) -> None:
    heldout = make_pair("clean", 3, "heldout")
    assert not np.array_equal(clean_pair.target.frames, heldout.target.frames)
    assert not np.array_equal(clean_pair.target.audio, heldout.target.audio)
    assert heldout.meta is not None and heldout.meta["scene"]["mirrored"]


def test_shapes_and_types(clean_pair: SynthPair) -> None:
    for clip in (clean_pair.source, clean_pair.target):
        count = len(clip.frames)
        assert count == 75 and clip.frames.shape == (75, 256, 256, 3) and clip.frames.dtype == np.uint8
        assert clip.audio.dtype == np.float32 and len(clip.audio) == 48_000
        assert clip.frame_rate == 25.0
        assert clip.opening.shape == (count,) and clip.mouth.shape == (count, 6)
        assert clip.landmarks.shape == (count, 478, 2) and clip.masks.shape == (count, 256, 256)
        assert clip.masks.min() >= 0.0 and clip.masks.max() <= 1.0
        assert clip.occluder is None and clip.listener is None


def test_opening_follows_the_jaw(clean_pair: SynthPair) -> None:
    target = clean_pair.target
    assert target.opening.max() > 0.1
    assert np.corrcoef(target.opening, target.mouth[:, JAW])[0, 1] > 0.8


def test_mouth_rests_during_silence(clean_pair: SynthPair) -> None:
    target = clean_pair.target
    rms = np.sqrt(np.mean(target.audio.reshape(len(target.frames), -1) ** 2, axis=1))
    quiet = rms < 1e-4
    # Frames with no sound for 0.2 s on both sides: the mouth is shut.
    calm = np.array([quiet[max(0, i - 5) : i + 6].all() for i in range(len(quiet))])
    assert calm.any()
    assert target.opening[calm].max() < 0.03


def test_a_silent_source_keeps_its_mouth_closed() -> None:
    silent = next(
        pair for pair in (make_pair("clean", seed, size=(128, 128), seconds=1.0) for seed in range(40))
        if pair.meta is not None and pair.meta["source"]["pattern"] == "silent"
    )  # fmt: skip
    assert np.all(silent.source.audio == 0.0)
    assert silent.source.opening.max() < 0.03


def test_mask_covers_the_mouth_not_the_eyes(clean_pair: SynthPair) -> None:
    for clip in (clean_pair.source, clean_pair.target):
        for index in range(0, len(clip.frames), 7):
            points, mask = clip.landmarks[index], clip.masks[index]
            for mouth_point in (13, 14, 61, 291, 152):
                x, y = np.round(points[mouth_point]).astype(int)
                assert mask[y, x] > 0.9
            for eye_point in (33, 263, 159, 386):
                x, y = np.round(points[eye_point]).astype(int)
                assert mask[y, x] == 0.0


def test_masks_are_the_engines(clean_pair: SynthPair) -> None:
    clip = clean_pair.target
    assert np.array_equal(clip.masks[10], engine_mask(clip.landmarks[10], clip.masks.shape[1:]))


def test_outside_the_masks_source_and_target_are_identical(clean_pair: SynthPair) -> None:
    source, target = clean_pair.source, clean_pair.target
    outside = (source.masks == 0) & (target.masks == 0)
    assert np.array_equal(source.frames[outside], target.frames[outside])
    inside = (source.masks > 0.9) & (target.masks > 0.9)
    assert not np.array_equal(source.frames[inside], target.frames[inside])  # the mouths differ


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(SynthError, match="unknown condition"):
        make_pair("underwater", 0)
    with pytest.raises(SynthError, match="split"):
        make_pair("clean", 0, "test")
    with pytest.raises(SynthError, match="seed"):
        make_pair("clean", -1)
    with pytest.raises(SynthError, match="size"):
        make_pair("clean", 0, size=(10, 10))
    assert "clean" in CONDITIONS
