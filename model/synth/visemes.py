"""Phonemes -> per-frame mouth articulation, with co-articulation (a Cohen–Massaro dominance model).

Each phoneme segment has a target per parameter and a dominance per parameter. Dominance is flat over the
segment and decays outside it as alpha * exp(-theta * |tau|^c), tau being the distance to the segment in
seconds, with a smaller theta before the segment (anticipation reaches further than carry-over). Every
parameter is the dominance-weighted mean of the targets. Mouths move before the sound: the articulation is
sampled `lead` seconds ahead of the audio (40-100 ms).

Parameters (K = 6, in this order): MOUTH_PARAMETERS.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from model.synth.speech import Phoneme

MOUTH_PARAMETERS = (
    "jaw",  # 0 closed .. 1 wide open (drives the lip gap)
    "lip_closure",  # 1 = lips pressed together (p b m) whatever the jaw does
    "rounding",  # 1 = rounded, protruded lips, corners pulled in (u o w ʃ)
    "spread",  # 1 = corners pulled out (i e)
    "labiodental",  # 1 = lower lip against the upper teeth (f v)
    "teeth",  # visibility of the teeth in the opening
)
K = len(MOUTH_PARAMETERS)
JAW, CLOSURE, ROUNDING, SPREAD, LABIODENTAL, TEETH = range(K)

# 1/s per parameter: anticipation reaches further (smaller theta) than carry-over; the lips close and part
# faster than the jaw moves.
THETA_BEFORE = np.array([18.0, 35.0, 18.0, 18.0, 30.0, 22.0])
THETA_AFTER = np.array([28.0, 45.0, 28.0, 28.0, 40.0, 30.0])
SHAPE_C = 1.0


@dataclass(frozen=True)
class Target:
    values: tuple[float, float, float, float, float, float]
    dominance: tuple[float, float, float, float, float, float]


def _target(
    jaw: float,
    closure: float = 0,
    rounding: float = 0,
    spread: float = 0,
    labio: float = 0,
    teeth: float = 0.5,
    strength: float = 2.0,
    lips_strength: float | None = None,
) -> Target:
    lips = strength if lips_strength is None else lips_strength
    return Target(
        (jaw, closure, rounding, spread, labio, teeth), (strength, lips, lips, lips, lips, strength)
    )


SILENCE = _target(0.0, teeth=0.0, strength=0.6)
# Jaw opening: a > æ ɔ > e ə > i u; rounding for o u y ø; spread for i e.
_VOWELS = {
    "a": _target(1.0, teeth=0.5), "ä": _target(0.95), "ɑ": _target(0.9, teeth=0.4),
    "æ": _target(0.85, spread=0.3), "ɐ": _target(0.7), "ɒ": _target(0.8, rounding=0.3),
    "ɔ": _target(0.75, rounding=0.5), "ʌ": _target(0.65), "ɛ": _target(0.6, spread=0.35, teeth=0.7),
    "e": _target(0.45, spread=0.55, teeth=0.8), "ə": _target(0.4), "ɜ": _target(0.45),
    "ɪ": _target(0.35, spread=0.4, teeth=0.8), "i": _target(0.25, spread=0.85, teeth=0.9),
    "ɨ": _target(0.3, spread=0.3), "o": _target(0.5, rounding=0.75), "ʊ": _target(0.35, rounding=0.6),
    "u": _target(0.25, rounding=1.0, teeth=0.2), "y": _target(0.25, rounding=0.9, teeth=0.3),
    "ø": _target(0.35, rounding=0.8), "œ": _target(0.5, rounding=0.6), "ɯ": _target(0.3),
    "ɤ": _target(0.4), "ɵ": _target(0.4, rounding=0.5), "ɘ": _target(0.4),
}  # fmt: skip
_CONSONANTS = {
    **dict.fromkeys("pbm", _target(0.05, closure=1.0, teeth=0.0, strength=3.0, lips_strength=8.0)),
    **dict.fromkeys("fv", _target(0.12, labio=1.0, teeth=1.0, strength=2.0, lips_strength=5.0)),
    "ɱ": _target(0.1, labio=1.0, teeth=1.0, strength=2.0, lips_strength=5.0),
    **dict.fromkeys("θð", _target(0.18, teeth=1.0, strength=1.5)),
    **dict.fromkeys("sz", _target(0.08, spread=0.35, teeth=1.0, strength=1.5)),
    **dict.fromkeys("ʃʒ", _target(0.12, rounding=0.7, teeth=0.8, strength=1.5, lips_strength=2.5)),
    **dict.fromkeys("wʍ", _target(0.12, rounding=1.0, teeth=0.1, strength=1.0, lips_strength=3.0)),
    "ɥ": _target(0.12, rounding=0.9, strength=1.0, lips_strength=3.0),
    **dict.fromkeys("tdnlɾɫ", _target(0.22, teeth=0.6, strength=0.8, lips_strength=0.3)),
    **dict.fromkeys("kgɡŋxɣχçʝq", _target(0.3, teeth=0.4, strength=0.6, lips_strength=0.2)),
    **dict.fromkeys("rɹʁʀɻ", _target(0.25, rounding=0.35, teeth=0.4, strength=0.6, lips_strength=0.5)),
    "j": _target(0.18, spread=0.5, teeth=0.7, strength=0.8, lips_strength=0.5),
    **dict.fromkeys("ɲʎ", _target(0.2, teeth=0.6, strength=0.8, lips_strength=0.3)),
    **dict.fromkeys("hʔɦ", _target(0.35, teeth=0.3, strength=0.15)),
    "β": _target(0.08, closure=0.7, strength=1.5, lips_strength=3.0),
}


def _clean(name: str) -> str:
    """Base letters only: no length, stress, tie, nasal or other diacritics."""
    decomposed = unicodedata.normalize("NFD", name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and ch not in "ːˑˈˌ'‿͡-_,.;:!?")


def targets_of(name: str) -> list[Target]:
    """One target per articulatory part of a phoneme (diphthongs and affricates give two)."""
    letters = _clean(name)
    found = []
    for letter in letters:
        if letter in _VOWELS:
            found.append(_VOWELS[letter])
        elif letter in _CONSONANTS:
            found.append(_CONSONANTS[letter])
    return found or [SILENCE]


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    target: Target


def segments(phonemes: tuple[Phoneme, ...], speech_end: float) -> list[Segment]:
    """Timed segments of one utterance (times relative to its own audio); pauses become SILENCE."""
    found: list[Segment] = []
    for index, phoneme in enumerate(phonemes):
        end = phonemes[index + 1].start if index + 1 < len(phonemes) else speech_end
        end = max(end, phoneme.start)
        if end - phoneme.start < 1e-4:
            continue
        parts = targets_of(phoneme.name) if _clean(phoneme.name) else [SILENCE]
        step = (end - phoneme.start) / len(parts)
        for part_index, part in enumerate(parts):
            found.append(
                Segment(phoneme.start + part_index * step, phoneme.start + (part_index + 1) * step, part)
            )
    return found


def articulation(segments_: list[Segment], times: np.ndarray) -> np.ndarray:
    """(len(times), K) parameters at `times` (seconds); outside every segment the mouth rests (SILENCE)."""
    times = np.asarray(times, dtype=np.float64)
    if not segments_:
        return np.tile(np.asarray(SILENCE.values, np.float32), (len(times), 1))
    # The mouth rests before the first and after the last sound: open-ended silences on both sides.
    segments_ = [
        Segment(-1e6, segments_[0].start, SILENCE),
        *segments_,
        Segment(segments_[-1].end, 1e6, SILENCE),
    ]
    starts = np.array([segment.start for segment in segments_])[:, None]
    ends = np.array([segment.end for segment in segments_])[:, None]
    values = np.array([segment.target.values for segment in segments_])  # (S, K)
    alpha = np.array([segment.target.dominance for segment in segments_])  # (S, K)
    before = np.clip(starts - times[None, :], 0.0, None)  # (S, T): time until the segment starts
    after = np.clip(times[None, :] - ends, 0.0, None)
    decay = np.exp(
        -THETA_BEFORE * (before**SHAPE_C)[:, :, None] - THETA_AFTER * (after**SHAPE_C)[:, :, None]
    )  # (S, T, K)
    dominance = alpha[:, None, :] * decay
    weighted = (dominance * values[:, None, :]).sum(axis=0)
    return (weighted / dominance.sum(axis=0)).astype(np.float32)


def frame_times(count: int, frame_rate: float, lead: float) -> np.ndarray:
    """Times at which frame k's mouth is sampled: its display time plus the lead."""
    return np.arange(count, dtype=np.float64) / frame_rate + lead
