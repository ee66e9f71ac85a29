"""The benchmark's measures on signals and frames built by hand, where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from model.evaluation.metrics import (
    PSNR_CAP_DB,
    ChangedPixels,
    MaskedPsnr,
    SeamFlicker,
    best_offset_correlation,
    handover_transitions,
    outside_of,
    pearson,
)
from worker.engine.segments import Segment, plan_segments


def _speech_like(frames: int = 100, seed: int = 0) -> np.ndarray:
    """An opening signal that moves like syllables: smoothed noise, never negative."""
    noise = np.random.default_rng(seed).random(frames + 6)
    return np.convolve(noise, np.ones(7) / 7, mode="valid") * 0.3


def test_the_truth_against_itself_is_perfect() -> None:
    truth = _speech_like()
    assert best_offset_correlation(truth, truth) == (pytest.approx(1.0), 0)


def test_a_frozen_mouth_scores_zero() -> None:
    truth = _speech_like()
    frozen = np.full_like(truth, truth[0])
    r, offset = best_offset_correlation(frozen, truth)
    assert r < 0.3 and (r, offset) == (0.0, 0)
    # Float noise on a still mouth is no motion either.
    assert pearson(frozen + np.linspace(0, 1e-15, len(frozen)), truth) == 0.0
    # Nor is landmark jitter, even when it happens to follow the truth a little.
    jitter = frozen + 0.05 * (truth - truth.mean())
    assert pearson(jitter, truth) == pytest.approx(1.0)
    assert best_offset_correlation(jitter, truth) == (0.0, 0)


def test_an_unrelated_mouth_scores_low() -> None:
    r, _ = best_offset_correlation(_speech_like(seed=1), _speech_like(seed=2))
    assert r < 0.3


def test_a_late_mouth_is_found_at_its_lag() -> None:
    truth = _speech_like(120)
    late = np.concatenate([np.full(2, truth[0]), truth[:-2]])  # the rendered mouth lags by two frames
    r, offset = best_offset_correlation(late, truth)
    assert offset == 2 and r == pytest.approx(1.0)
    early = truth[1:]
    assert best_offset_correlation(early, truth)[1] == -1
    # Beyond the search window the lag is not found.
    far = np.concatenate([np.zeros(5), truth[:-5]])
    assert best_offset_correlation(far, truth)[0] < 0.9


def test_frames_without_a_measurement_are_left_out() -> None:
    truth = _speech_like()
    measured = truth.copy()
    measured[10:20] = np.nan
    assert best_offset_correlation(measured, truth) == (pytest.approx(1.0), 0)
    assert best_offset_correlation(np.full_like(truth, np.nan), truth) == (0.0, 0)


def _frames(count: int, height: int = 8, width: int = 8) -> np.ndarray:
    return np.zeros((count, height, width, 3), dtype=np.uint8)


def test_psnr_inside_a_region() -> None:
    frame, reference = _frames(1)[0], _frames(1)[0]
    region = np.zeros((8, 8), dtype=bool)
    region[2:4, 2:4] = True
    frame[2:4, 2:4] = 10  # MSE 100 inside the region
    frame[6, 6] = 255  # outside the region: ignored
    psnr = MaskedPsnr()
    psnr.add(frame, reference, region)
    assert psnr.db == pytest.approx(10 * np.log10(255**2 / 100))
    # Pooled over frames: a second, identical frame halves the MSE.
    psnr.add(reference, reference, region)
    assert psnr.db == pytest.approx(10 * np.log10(255**2 / 50))
    identical = MaskedPsnr()
    identical.add(reference, reference, region)
    assert identical.db == PSNR_CAP_DB
    empty = MaskedPsnr()
    empty.add(frame, reference, np.zeros((8, 8), dtype=bool))
    assert empty.db is None


def test_changed_pixels_count_pixels_not_channels() -> None:
    frame, reference = _frames(1)[0], _frames(1)[0]
    frame[0, 0] = (1, 1, 1)
    frame[0, 1, 2] = 3
    frame[5, 5] = 9  # outside the region
    region = np.zeros((8, 8), dtype=bool)
    region[:2, :] = True
    changed = ChangedPixels()
    changed.add(frame, reference, region)
    changed.add(reference, reference, region)
    assert changed.count == 2


def _segments(*spans: tuple[int, int], shots: tuple[int, ...] = ()) -> list[Segment]:
    shots = shots or (0,) * len(spans)
    pairs = zip(spans, shots, strict=True)
    return [Segment(index, start, end, shot) for index, ((start, end), shot) in enumerate(pairs)]


def test_seams_are_the_cross_faded_transitions() -> None:
    seams, cuts = handover_transitions(_segments((0, 17), (13, 29)))
    assert seams == {13, 14, 15, 16, 17} and cuts == set()
    seams, cuts = handover_transitions(_segments((0, 9), (9, 21), (21, 29), shots=(0, 0, 1)))
    assert seams == {9} and cuts == {21}
    assert handover_transitions(_segments((0, 29))) == (set(), set())


def _ramp_clip(count: int, jump_at: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames that brighten by 2 a frame inside a mask (and a jump of 40 at one frame, if asked)."""
    frames = _frames(count, 16, 16)
    levels = 50 + 2 * np.arange(count)
    if jump_at is not None:
        levels[jump_at:] += 40
    frames[:, 4:12, 4:12] = levels[:, None, None, None]
    masks = np.zeros((count, 16, 16), dtype=bool)
    masks[:, 4:12, 4:12] = True
    return frames, masks


def _flicker(frames: np.ndarray, masks: np.ndarray, segments: list[Segment]) -> float | None:
    flicker = SeamFlicker(segments)
    for frame, mask in zip(frames, masks, strict=True):
        flicker.add(frame, mask)
    return flicker.ratio


def test_a_smooth_clip_has_no_seam_flicker() -> None:
    frames, masks = _ramp_clip(29)
    assert _flicker(frames, masks, plan_segments(29, 17, 4)) == pytest.approx(1.0)


def test_a_jump_at_a_seam_is_flicker() -> None:
    segments = plan_segments(29, 17, 4)  # [0, 17) and [12, 29): seam transitions 12..17
    frames, masks = _ramp_clip(29, jump_at=15)
    assert _flicker(frames, masks, segments) > 1.5
    # The same jump inside a segment is motion, not a seam.
    frames, masks = _ramp_clip(29, jump_at=5)
    assert _flicker(frames, masks, segments) < 1.0


def test_flicker_needs_a_seam_and_motion() -> None:
    frames, masks = _ramp_clip(29)
    assert _flicker(frames, masks, plan_segments(29, 29, 4)) is None  # one segment: no seam
    still = np.repeat(frames[:1], 29, axis=0)
    assert _flicker(still, masks, plan_segments(29, 17, 4)) == 1.0


def test_outside_follows_the_chroma_grid() -> None:
    mask = np.zeros((1, 6, 6), dtype=np.float32)
    mask[0, 2, 3] = 0.2  # one pixel: its whole 2x2 chroma block may change
    outside = outside_of(mask, (6, 6))
    assert (~outside).sum() == 4 and not outside[2:4, 2:4].any()
    assert outside_of(None, (6, 6)).all()
    odd = np.zeros((1, 5, 5), dtype=np.float32)
    odd[0, 4, 4] = 1.0
    assert (~outside_of(odd, (5, 5))).sum() == 1
