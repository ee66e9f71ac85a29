"""Who is SPEAKING in the source: lip motion of each face track against the source's voice activity.

Lip motion is how fast the inner-lip gap (in units of the eye-corner distance, so face size does not matter)
changes, per second, with one-frame spikes removed (a hand passing the mouth makes a step, not a rhythm) and
averaged over ~0.4 s. Where the source has speech, a visible
face speaks if its lips move clearly, and, when several faces are visible, if they move at least half as
much as the most active one (the others are listening). Without source audio, clear lip motion alone counts.
"""

from __future__ import annotations

import itertools

import numpy as np

from worker.engine.analysis.tracks import FaceTrack, frame_ranges

MOTION_THRESHOLD = 0.4  # openness change per second: talking is ~1, a still face's jitter ~0.1
_RELATIVE_TO_MOST_ACTIVE = 0.5
_WINDOW_S = 0.4
_BRIDGE_S = 0.3  # pauses shorter than this inside one person's speech stay SPEAKING
_MIN_SPEAKING_S = 0.25


def lip_motion(track: FaceTrack, frame_rate: float) -> np.ndarray:
    """(span,) mouth-openness speed per second, despiked and smoothed; 0 where the face is absent."""
    openness = track.mouth_openness().astype(np.float64)
    speed = np.abs(np.diff(openness, prepend=openness[:1])) * frame_rate
    if len(speed) >= 3:
        padded = np.pad(speed, 1, mode="edge")
        speed = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    half = max(1, round(_WINDOW_S * frame_rate / 2))
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    motion = np.convolve(np.pad(speed, half, mode="edge"), kernel, mode="valid")
    return np.where(track.present, motion, 0.0).astype(np.float32)


def mark_speaking(
    tracks: list[FaceTrack], source_speech: np.ndarray | None, frame_count: int, frame_rate: float
) -> None:
    """Set `track.speaking` for every track. `source_speech` is (frame_count,) bool, or None without audio."""
    motions = {track.id: lip_motion(track, frame_rate) for track in tracks}
    # The most active visible face per frame, to tell the speaker from listeners.
    strongest = np.zeros(frame_count, dtype=np.float32)
    for track in tracks:
        window = slice(track.first_frame, track.last_frame + 1)
        strongest[window] = np.maximum(strongest[window], motions[track.id])
    for track in tracks:
        window = slice(track.first_frame, track.last_frame + 1)
        motion = motions[track.id]
        if source_speech is None:
            candidate = _smooth_flags(motion >= MOTION_THRESHOLD, frame_rate)
        else:
            candidate = np.zeros(len(motion), dtype=bool)
            speech = source_speech[window] & track.present
            # Judge each stretch of speech as a whole: lips close between syllables.
            for first, last in frame_ranges(speech):
                stretch = slice(first, last + 1)
                own = float(motion[stretch].mean())
                best = float(strongest[window][stretch].mean())
                if own >= MOTION_THRESHOLD and own >= _RELATIVE_TO_MOST_ACTIVE * best:
                    candidate[stretch] = True
        track.speaking = _smooth_flags(candidate, frame_rate) & track.present


def _smooth_flags(flags: np.ndarray, frame_rate: float) -> np.ndarray:
    """Bridge short pauses, then drop blips."""
    result = flags.copy()
    bridge = round(_BRIDGE_S * frame_rate)
    runs = frame_ranges(result)
    for (_, previous_last), (next_first, _) in itertools.pairwise(runs):
        if next_first - previous_last - 1 <= bridge:
            result[previous_last + 1 : next_first] = True
    minimum = round(_MIN_SPEAKING_S * frame_rate)
    for first, last in frame_ranges(result):
        if last - first + 1 < minimum:
            result[first : last + 1] = False
    return result
