"""The corpus's data types: one clip (frames, audio and their exact ground truth) and a source/target pair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.synth.visemes import MOUTH_PARAMETERS

CONDITIONS = (
    "clean",
    "hard_shadow",
    "occluder",
    "hair",
    "dark",
    "foliage",
    "profile",
    "head_turns",
    "motion_blur",
    "small_face",
    "two_people",
)
SPLITS = ("train", "heldout")
SAMPLE_RATE = 16_000

__all__ = ["CONDITIONS", "MOUTH_PARAMETERS", "SAMPLE_RATE", "SPLITS", "SynthClip", "SynthPair"]


@dataclass
class SynthClip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    audio: np.ndarray  # (samples,) float32 mono 16 kHz; frame 0 starts at sample 0
    frame_rate: float
    opening: np.ndarray  # (T,) float32 rendered inner-lip gap (mesh 13-14) / outer eye corners (33-263)
    mouth: np.ndarray  # (T, K) float32 articulation parameters, in MOUTH_PARAMETERS order
    landmarks: np.ndarray  # (T, 478, 2) float32 the speaker's face-mesh points as rendered (frame pixels)
    masks: np.ndarray  # (T, H, W) float32 in [0, 1]: the engine's lower-face mask from those landmarks
    occluder: np.ndarray | None  # (T, H, W) bool pixels covered by an occluder, hair or leaves
    listener: np.ndarray | None  # (T, H, W) bool pixels of the silent second person's face


@dataclass
class SynthPair:
    condition: str
    seed: int
    split: str
    source: SynthClip  # the person saying utterance A (or silent)
    target: SynthClip  # the same scene saying utterance B: what a perfect dub of source with B gives
    meta: dict | None = None  # texts, languages, voices, photo ids, ... (what meta.json holds)
