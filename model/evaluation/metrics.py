"""Scores of a dubbed clip against its ground truth, accumulated one frame at a time.

Every accumulator takes frames as they are decoded and keeps only sums (and, for flicker, the previous frame),
so memory does not grow with the clip's length. Frames are (height, width, 3) uint8 RGB; regions are
(height, width) bool.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from worker.engine.segments import Segment

# Identical pixels have an infinite PSNR; a large finite stand-in keeps the JSON valid and the mean finite.
PSNR_CAP_DB = 99.0
# A ratio with a zero denominator (no motion at all inside segments) reports this instead of infinity.
RATIO_CAP = 99.0
MAX_SYNC_OFFSET = 2  # frames either way searched for the best lip alignment
# Mouth openings (inner-lip gap / eye-corner distance) that vary less than this (standard deviation) are a
# still mouth: the landmarks jitter by 0.001-0.004 on a frozen face (more on the first frames, while the
# tracker settles), and that jitter must not correlate its way into a score. Speech moves it by ~0.05.
STILL_MOUTH = 0.01
_MIN_PAIRED_FRAMES = 3  # fewer frames than this cannot give a meaningful correlation


def pearson(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson correlation over the frames where both are finite; 0 when either does not vary."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    both = np.isfinite(first) & np.isfinite(second)
    if both.sum() < _MIN_PAIRED_FRAMES:
        return 0.0
    a, b = first[both] - first[both].mean(), second[both] - second[both].mean()
    spread = float(np.sqrt((a * a).sum() * (b * b).sum()))
    # A frozen mouth still jitters by float rounding: variation this small counts as none.
    if spread <= 1e-12 * max(1.0, float(len(a))):
        return 0.0
    return float(np.clip((a * b).sum() / spread, -1.0, 1.0))


def best_offset_correlation(
    measured: np.ndarray, truth: np.ndarray, max_offset: int = MAX_SYNC_OFFSET, still: float = STILL_MOUTH
) -> tuple[float, int]:
    """The highest Pearson r of `measured[t + offset]` against `truth[t]` for |offset| <= max_offset.

    A positive offset means the measured mouth lags the truth by that many frames. Ties go to the smaller
    |offset| (then the earlier one). A signal that varies less than `still` (a frozen mouth) reports (0.0, 0).
    """
    measured, truth = np.asarray(measured, np.float64), np.asarray(truth, np.float64)
    if _spread(measured) < still or _spread(truth) < still:
        return 0.0, 0
    count = min(len(measured), len(truth))
    best = (-2.0, 0)
    for offset in sorted(range(-max_offset, max_offset + 1), key=lambda value: (abs(value), value)):
        start, stop = max(0, -offset), min(count, count - offset)
        if stop - start < _MIN_PAIRED_FRAMES:
            continue
        r = pearson(measured[start + offset : stop + offset], truth[start:stop])
        if r > best[0]:
            best = (r, offset)
    return (0.0, 0) if best[0] < -1.0 else best


def _spread(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.std()) if finite.size else 0.0


def psnr_from_mse(mse: float) -> float:
    if mse <= 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, float(10.0 * np.log10(255.0**2 / mse)))


class MaskedPsnr:
    """PSNR over the pixels of a region, pooled over every frame added (all three channels)."""

    def __init__(self) -> None:
        self.squared_error = 0.0
        self.values = 0

    def add(self, frame: np.ndarray, reference: np.ndarray, region: np.ndarray) -> None:
        if not region.any():
            return
        difference = frame[region].astype(np.float64) - reference[region].astype(np.float64)
        self.squared_error += float((difference * difference).sum())
        self.values += difference.size

    @property
    def db(self) -> float | None:
        """None when the region was empty in every frame."""
        if self.values == 0:
            return None
        return psnr_from_mse(self.squared_error / self.values)


class ChangedPixels:
    """How many pixels of a region differ in any channel, summed over every frame added."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, frame: np.ndarray, reference: np.ndarray, region: np.ndarray) -> None:
        if region.any():
            self.count += int(np.count_nonzero(np.any(frame[region] != reference[region], axis=-1)))


def handover_transitions(segments: Sequence[Segment]) -> tuple[set[int], set[int]]:
    """(seams, cuts) as transitions: transition t is the change from frame t - 1 to frame t.

    Where two segments of one shot overlap, the engine cross-fades them over the shared frames, so every
    transition from the last frame before the overlap to the first frame after it belongs to the seam.
    Segments that only touch inside a shot hand over at one transition. Between shots the change is a cut,
    not a seam: it is left out of both measures.
    """
    seams: set[int] = set()
    cuts: set[int] = set()
    ordered = sorted(segments, key=lambda segment: (segment.start, segment.end))
    for earlier, later in itertools.pairwise(ordered):
        if later.shot != earlier.shot:
            cuts.add(later.start)
        elif later.start < earlier.end:
            seams.update(range(later.start, earlier.end + 1))
        else:
            seams.add(later.start)
    return seams, cuts - seams


class SeamFlicker:
    """Mean absolute frame-to-frame change inside the mask at segment seams over the same inside segments.

    About 1 when the seams move like the rest of the clip; well above 1 when a segment hands over with a jump.
    """

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.seams, self.cuts = handover_transitions(segments)
        self.seam_sum = self.inside_sum = 0.0
        self.seam_values = self.inside_values = 0
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self._index = 0

    def add(self, frame: np.ndarray, region: np.ndarray) -> None:
        """The next frame of the clip and its mask region."""
        index, previous = self._index, self._previous
        self._index += 1
        self._previous = (frame, region)
        if previous is None or index in self.cuts:
            return
        both = region | previous[1]  # the mask of either frame: its motion is the mouth's
        if not both.any():
            return
        change = np.abs(frame[both].astype(np.int16) - previous[0][both].astype(np.int16))
        if index in self.seams:
            self.seam_sum += float(change.sum())
            self.seam_values += change.size
        else:
            self.inside_sum += float(change.sum())
            self.inside_values += change.size

    @property
    def ratio(self) -> float | None:
        """None when the clip has no seam (a single segment) or no masked frame on either side."""
        if self.seam_values == 0 or self.inside_values == 0:
            return None
        seam = self.seam_sum / self.seam_values
        inside = self.inside_sum / self.inside_values
        if inside == 0.0:
            return 1.0 if seam == 0.0 else RATIO_CAP
        return min(RATIO_CAP, seam / inside)


def outside_of(masks: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """(height, width) bool: pixels no mask may change, on the 4:2:0 grid the engine composites on.

    The engine blends chroma per 2x2 block, so a pixel whose block touches any mask > 0 may change even
    where its own mask is 0. `masks` is (frames, height, width) of every mask covering this frame, or None.
    """
    height, width = shape
    if masks is None:
        return np.ones(shape, dtype=bool)
    touched = np.any(masks > 0, axis=0)
    padded = np.pad(touched, ((0, height % 2), (0, width % 2)))
    blocks = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).any(axis=(1, 3))
    covered = blocks.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    return ~covered
