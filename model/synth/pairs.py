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
from model.synth.clips import render_clips
from model.synth.conditions import Layout, effects_for, layout_for
from model.synth.data import CONDITIONS, SAMPLE_RATE, SPLITS, SynthPair
from model.synth.scene import (
    HeadPose,
    Person,
    Placed,
    Scene,
    background,
    blink_track,
    grade,
    person,
    smooth_motion,
)
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


def _place(
    rng: np.random.Generator,
    layout: Layout,
    person_: Person,
    size: tuple[int, int],
    count: int,
    frame_rate: float,
    centre_x: tuple[float, float],
    face_fraction: tuple[float, float],
) -> tuple[HeadPose, float]:
    height, width = size
    face_height = min(rng.uniform(*face_fraction) * height, 0.75 * width)
    scale = face_height / person_.face_height
    centre = np.array([width * rng.uniform(*centre_x), height * rng.uniform(*layout.centre_y)])
    amplitude = 0.03 * face_height * layout.drift
    drift = np.stack(
        [
            smooth_motion(rng, count, frame_rate, amplitude, fastest=layout.fastest_motion_hz)
            for _ in range(2)
        ],
        1,
    )
    yaw = np.radians(rng.uniform(*layout.yaw_degrees)) * rng.choice([-1.0, 1.0])
    swing = np.radians(rng.uniform(*layout.yaw_swing_degrees))
    times = np.arange(count) / frame_rate
    turning = swing * np.sin(2 * np.pi * rng.uniform(0.2, 0.45) * times + rng.uniform(0, 2 * np.pi))
    pose = HeadPose(
        anchor=person_.photo.mesh.mean(axis=0).astype(np.float64),
        centre=centre + drift,
        scale=scale * (1.0 + smooth_motion(rng, count, frame_rate, 0.02)),
        roll=np.radians(rng.uniform(-6, 6) + smooth_motion(rng, count, frame_rate, 2.0 * layout.drift)),
        yaw=yaw + turning if (yaw != 0.0 or swing != 0.0) else np.zeros(count),
        focal=3.0 * person_.face_height,
    )
    return pose, face_height


def _graded(rng: np.random.Generator, split: str, person_: Person) -> tuple[np.ndarray, float]:
    # Colour grade: gains and gamma, with "warmth" from disjoint ranges per split.
    warmth = rng.uniform(-0.06, 0.06) if split == "train" else rng.choice([-1, 1]) * rng.uniform(0.06, 0.1)
    gains = np.array([1.0 + warmth, 1.0, 1.0 - warmth]) * rng.uniform(0.85, 1.1)
    graded = grade(person_.canvas, gains, float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.0, 0.06)))
    return np.clip(np.round(graded), 0, 255).astype(np.uint8), float(warmth)


def build_scene(
    rng: np.random.Generator,
    split: str,
    size: tuple[int, int],
    count: int,
    frame_rate: float,
    layout: Layout | None = None,
) -> Scene:
    layout = layout or Layout()
    photo_id = PHOTOS[int(rng.integers(0, len(PHOTOS)))]
    # Splits never share a face image: train shows the photos as taken, heldout their mirror images.
    speaker = person(photo_id, mirrored=split == "heldout")
    speaker_x = layout.centre_x
    people = []
    if layout.two_people:
        # Side by side, apart enough that the speaker's lower-face mask never reaches the listener's face.
        left = rng.uniform() < 0.5
        speaker_x = (0.22, 0.3) if left else (0.7, 0.78)
    pose, face_height = _place(rng, layout, speaker, size, count, frame_rate, speaker_x, layout.face_fraction)
    graded, warmth = _graded(rng, split, speaker)
    people.append(Placed(speaker, pose, graded, blink_track(rng, count, frame_rate)))
    details: dict = {
        "photo_id": photo_id,
        "mirrored": split == "heldout",
        "face_height_px": round(face_height, 1),
        "warmth": round(warmth, 4),
        "yaw_degrees": [
            round(float(np.degrees(pose.yaw.min())), 1),
            round(float(np.degrees(pose.yaw.max())), 1),
        ],
    }
    if layout.two_people:
        other_id = PHOTOS[(PHOTOS.index(photo_id) + 1) % len(PHOTOS)]
        listener = person(other_id, mirrored=split == "heldout")
        listener_x = (0.7, 0.78) if speaker_x[0] < 0.5 else (0.22, 0.3)
        quiet = Layout(face_fraction=layout.face_fraction, centre_y=layout.centre_y, drift=0.6)
        listener_pose, _ = _place(
            rng, quiet, listener, size, count, frame_rate, listener_x, layout.face_fraction
        )
        listener_graded, _ = _graded(rng, split, listener)
        people.append(Placed(listener, listener_pose, listener_graded, blink_track(rng, count, frame_rate)))
        details["listener_photo_id"] = other_id
    backdrop, backdrop_kind = background(rng, size)
    details["background"] = backdrop_kind
    lips = speaker.photo.mesh[[0, 17, 61, 291]].astype(int)
    lip_luma = float(graded[lips[:, 1], lips[:, 0]].astype(np.float32).mean())
    return Scene(
        size=size,
        count=count,
        frame_rate=frame_rate,
        people=people,
        background=backdrop,
        mouth_shade=float(np.clip(lip_luma / 150.0, 0.35, 1.3)),
        details=details,
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
    scene = build_scene(
        np.random.default_rng(scene_seq), split, size, count, frame_rate, layout_for(condition)
    )
    effects = effects_for(condition, np.random.default_rng(condition_seq), scene)
    source_rng, target_rng = np.random.default_rng(source_seq), np.random.default_rng(target_seq)
    source_silent = bool(source_rng.uniform() < SILENT_SOURCE_SHARE)
    source_speech = plan_utterance(source_rng, split, count / frame_rate, samples, source_silent)
    target_speech = plan_utterance(target_rng, split, count / frame_rate, samples, False)
    # Mouths move before the sound: 40-100 ms, one value per pair (a property of the person).
    lead = float(np.random.default_rng(timing_seq).uniform(0.04, 0.1))
    times = frame_times(count, frame_rate, lead)
    source, target = render_clips(
        scene,
        effects,
        [
            (articulation(source_speech.segments, times), source_speech.audio),
            (articulation(target_speech.segments, times), target_speech.audio),
        ],
    )
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
