"""Phonemes -> articulation -> rendered lips: closed on m/p/b, open on a, at rest in silence."""

from __future__ import annotations

import numpy as np

from model.synth.clips import mouth_openness, render_clip
from model.synth.conditions import Effects
from model.synth.pairs import build_scene
from model.synth.speech import synthesize
from model.synth.visemes import CLOSURE, JAW, SILENCE, articulation, segments, targets_of


def _rendered_opening(text: str, voice: str = "en-us") -> tuple[np.ndarray, list, np.ndarray]:
    speech = synthesize(text, voice, rate=120, pitch=50)
    found = segments(speech.phonemes, speech.seconds)
    # 200 frames per second so every phoneme gets frames near its middle; no lead, to compare with the audio.
    times = np.arange(0.0, speech.seconds, 0.005)
    mouth = articulation(found, times)
    scene = build_scene(np.random.default_rng(0), "train", (256, 256), len(times), 200.0)
    clip = render_clip(scene, Effects(), mouth, np.zeros(len(speech.audio), np.float32))
    return clip.opening, found, times


def test_lips_close_on_m_and_open_on_a() -> None:
    opening, found, times = _rendered_opening("mama")
    for segment in found:
        middle = np.argmin(np.abs(times - (segment.start + segment.end) / 2))
        if segment.target.values[CLOSURE] == 1.0:  # m
            assert opening[middle] < 0.03, (segment, opening[middle])
        elif segment.target.values[JAW] >= 0.7:  # a / ɑ / ɐ
            assert opening[middle] > 0.12, (segment, opening[middle])


def test_bilabials_close_inside_words() -> None:
    opening, found, times = _rendered_opening("a bob, a pop, a mom", "en-us")
    closures = [segment for segment in found if segment.target.values[CLOSURE] == 1.0]
    assert len(closures) >= 5
    for segment in closures:
        inside = (times >= segment.start) & (times <= segment.end)
        assert opening[inside].min() < 0.03, segment


def test_phoneme_classes() -> None:
    jaw = {name: targets_of(name)[0].values[JAW] for name in ("a", "æ", "e", "ə", "i", "u")}
    assert jaw["a"] > jaw["æ"] > jaw["e"] >= jaw["ə"] > jaw["i"] >= jaw["u"]
    assert targets_of("m")[0].values[CLOSURE] == 1.0
    assert len(targets_of("aɪ")) == 2  # diphthongs move
    assert targets_of("")[0] == SILENCE


def test_silence_relaxes_the_mouth_and_anticipation_leads_the_sound() -> None:
    speech = synthesize("ah", "en-us")
    found = segments(speech.phonemes, speech.seconds)
    times = np.array([-0.5, found[0].start - 0.03, found[0].start + 0.05, speech.seconds + 0.6])
    mouth = articulation(found, times)
    assert mouth[0, JAW] < 0.02 and mouth[-1, JAW] < 0.02  # rest long before and after
    assert 0.1 < mouth[1, JAW] < mouth[2, JAW]  # the jaw is already opening before the vowel sounds


def test_openness_is_measured_like_the_engine() -> None:
    points = np.zeros((478, 2), np.float32)
    points[33], points[263] = (0, 0), (100, 0)
    points[13], points[14] = (50, 80), (50, 95)
    assert mouth_openness(points) == np.float32(0.15)
