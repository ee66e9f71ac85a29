"""`make_pair`: one scene, two utterances, two clips (source and target) with their ground truth.

Every random choice comes from a generator seeded by (split, condition, seed), split into independent
streams for the scene, the condition, the source speech and the target speech, so adding a choice to one
never changes the others. The same arguments give the same bytes in any process.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from model.synth import texts
from model.synth.clips import render_clip
from model.synth.conditions import Effects
from model.synth.data import CONDITIONS, SAMPLE_RATE, SPLITS, SynthPair
from model.synth.scene import HeadPose, Scene, background, grade, person, smooth_motion
from model.synth.speech import synthesize
from model.synth.visemes import Segment, articulation, frame_times, segments

SILENT_SOURCE_SHARE = 0.12  # of seeds whose source says nothing (mouth closed, silence)
PHOTOS = ("astronaut", "hopper")


class SynthError(ValueError):
    """Bad arguments to the generator (code: invalid_option)."""

    code = "invalid_option"


def generator_for(split: str, condition: str, seed: int) -> np.random.SeedSequence:
    digest = hashlib.sha256(f"redub-synth/{split}/{condition}/{seed}".encode()).digest()
    return np.random.SeedSequence(int.from_bytes(digest[:16], "little"))


@dataclass
class Utterance:
    audio: np.ndarray  # (samples,) float32 16 kHz, exactly the clip's length
    segments: list[Segment]  # phoneme segments, clip time
    text: str
    language: str | None
    voice: str | None
    rate: int | None
    pitch: int | None
    pattern: str  # plain | leading | trailing | middle | silent


def plan_utterance(
    rng: np.random.Generator, split: str, seconds: float, samples: int, silent: bool
) -> Utterance:
    audio = np.zeros(samples, np.float32)
    if silent:
        return Utterance(audio, [], "", None, None, None, None, "silent")
    language = texts.LANGUAGES[int(rng.integers(0, len(texts.LANGUAGES)))]
    voice, rate, pitch = texts.voice(rng, language, split)
    pattern = ("plain", "leading", "trailing", "middle")[int(rng.choice(4, p=[0.4, 0.2, 0.2, 0.2]))]
    lead = rng.uniform(0.4, 0.9) if pattern == "leading" else rng.uniform(0.05, 0.25)
    tail = rng.uniform(0.4, 0.9) if pattern == "trailing" else rng.uniform(0.05, 0.2)
    gap = rng.uniform(0.3, 0.7) if pattern == "middle" else 0.0
    parts = 2 if pattern == "middle" else 1
    budget = max(0.3, (seconds - lead - tail - gap) / parts)
    found: list[Segment] = []
    spoken: list[str] = []
    cursor = lead
    for _ in range(parts):
        # Words that fit the budget at this rate, fewer until the speech fits (or one word, cut).
        count = max(1, round(budget * rate / 60.0 * 0.85))
        text = texts.sentence(rng, language, split, count)
        speech = synthesize(text, voice, rate, pitch)
        while speech.seconds > budget and count > 1:
            count -= 1
            text = texts.sentence(rng, language, split, count)
            speech = synthesize(text, voice, rate, pitch)
        start = round(cursor * SAMPLE_RATE)
        room = max(0, samples - start)
        piece = speech.audio[:room].copy()
        if len(piece) < len(speech.audio) and len(piece) > 160:
            piece[-160:] *= np.linspace(1.0, 0.0, 160, dtype=np.float32)  # cut: fade out over 10 ms
        audio[start : start + len(piece)] = piece
        end = cursor + len(piece) / SAMPLE_RATE
        for segment in segments(speech.phonemes, speech.seconds):
            if cursor + segment.start >= end:
                break
            found.append(Segment(cursor + segment.start, min(end, cursor + segment.end), segment.target))
        spoken.append(text)
        cursor = end + gap
    return Utterance(audio, found, " ".join(spoken), language, voice, rate, pitch, pattern)


def _validate(
    condition: str, seed: int, split: str, size: tuple[int, int], seconds: float, frame_rate: float
) -> None:
    if condition not in CONDITIONS:
        raise SynthError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    if split not in SPLITS:
        raise SynthError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise SynthError(f"seed must be a non-negative integer, not {seed!r}")
    if len(size) != 2 or not all(isinstance(side, int) and 64 <= side <= 4096 for side in size):
        raise SynthError(f"size must be (height, width) with sides from 64 to 4096, not {size!r}")
    if not 0.5 <= seconds <= 60.0:
        raise SynthError(f"seconds must be between 0.5 and 60, not {seconds!r}")
    if not 1.0 <= frame_rate <= 120.0:
        raise SynthError(f"frame_rate must be between 1 and 120, not {frame_rate!r}")


def build_scene(
    rng: np.random.Generator, split: str, size: tuple[int, int], count: int, frame_rate: float
) -> Scene:
    height, width = size
    photo_id = PHOTOS[int(rng.integers(0, len(PHOTOS)))]
    # Splits never share a face image: train shows the photos as taken, heldout their mirror images.
    speaker = person(photo_id, mirrored=split == "heldout")
    face_fraction = rng.uniform(0.3, 0.5)
    face_height = min(face_fraction * height, 0.75 * width)
    scale = face_height / speaker.face_height
    anchor = speaker.photo.mesh.mean(axis=0).astype(np.float64)
    centre = np.array([width * rng.uniform(0.38, 0.62), height * rng.uniform(0.42, 0.58)])
    drift = np.stack([smooth_motion(rng, count, frame_rate, 0.03 * face_height) for _ in range(2)], axis=1)
    pose = HeadPose(
        anchor=anchor,
        centre=centre + drift,
        scale=scale * (1.0 + smooth_motion(rng, count, frame_rate, 0.02)),
        roll=np.radians(rng.uniform(-6, 6) + smooth_motion(rng, count, frame_rate, 2.0)),
        yaw=np.zeros(count),
    )
    # Colour grade: gains and gamma drawn from disjoint "warmth" ranges per split.
    warmth = rng.uniform(-0.06, 0.06) if split == "train" else rng.choice([-1, 1]) * rng.uniform(0.06, 0.1)
    gains = np.array([1.0 + warmth, 1.0, 1.0 - warmth]) * rng.uniform(0.85, 1.1)
    graded = grade(speaker.photo.image, gains, float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.0, 0.06)))
    backdrop, backdrop_kind = background(rng, size)
    lips = speaker.photo.mesh[[0, 17, 61, 291]].astype(int)
    lip_luma = float(graded[lips[:, 1], lips[:, 0]].mean())
    return Scene(
        size=size,
        count=count,
        frame_rate=frame_rate,
        speaker=speaker,
        pose=pose,
        graded=graded.astype(np.float32),
        background=backdrop,
        blinks=np.zeros(count, np.float32),
        mouth_shade=float(np.clip(lip_luma / 150.0, 0.35, 1.3)),
        details={
            "photo_id": photo_id,
            "mirrored": split == "heldout",
            "background": backdrop_kind,
            "face_height_px": round(face_height, 1),
            "warmth": round(float(warmth), 4),
        },
    )


def make_pair(
    condition: str,
    seed: int,
    split: str = "train",
    *,
    size: tuple[int, int] = (256, 256),
    seconds: float = 3.0,
    frame_rate: float = 25.0,
) -> SynthPair:
    """One source/target pair (see model.synth's README section). `size` is (height, width)."""
    size = tuple(size)  # type: ignore[assignment]
    _validate(condition, seed, split, size, seconds, frame_rate)
    scene_seq, condition_seq, source_seq, target_seq, timing_seq = generator_for(
        split, condition, seed
    ).spawn(5)
    count = max(1, round(seconds * frame_rate))
    samples = round(count / frame_rate * SAMPLE_RATE)
    scene = build_scene(np.random.default_rng(scene_seq), split, size, count, frame_rate)
    effects = Effects()
    source_rng, target_rng = np.random.default_rng(source_seq), np.random.default_rng(target_seq)
    source_silent = bool(source_rng.uniform() < SILENT_SOURCE_SHARE)
    source_speech = plan_utterance(source_rng, split, count / frame_rate, samples, source_silent)
    target_speech = plan_utterance(target_rng, split, count / frame_rate, samples, False)
    # Mouths move before the sound: 40-100 ms, one value per pair (a property of the person).
    lead = float(np.random.default_rng(timing_seq).uniform(0.04, 0.1))
    times = frame_times(count, frame_rate, lead)
    source = render_clip(scene, effects, articulation(source_speech.segments, times), source_speech.audio)
    target = render_clip(scene, effects, articulation(target_speech.segments, times), target_speech.audio)
    meta = {
        "condition": condition,
        "seed": seed,
        "split": split,
        "size": list(size),
        "fps": frame_rate,
        "frames": count,
        "lead_s": round(lead, 4),
        "scene": scene.details,
        "source": _speech_meta(source_speech),
        "target": _speech_meta(target_speech),
    }
    del condition_seq  # reserved for the condition's own choices
    return SynthPair(condition, seed, split, source, target, meta)


def _speech_meta(utterance: Utterance) -> dict:
    return {
        "text": utterance.text,
        "language": utterance.language,
        "voice": utterance.voice,
        "rate": utterance.rate,
        "pitch": utterance.pitch,
        "pattern": utterance.pattern,
    }
