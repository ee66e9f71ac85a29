"""espeak-ng through ctypes: real speech, phoneme timing, reproducible samples."""

from __future__ import annotations

import numpy as np
import pytest

from model.synth import texts
from model.synth.speech import SAMPLE_RATE, SpeechError, synthesize


def test_speech_has_phonemes_in_order_and_16khz_audio() -> None:
    speech = synthesize("mama", "en-us", rate=160, pitch=50)
    names = [phoneme.name for phoneme in speech.phonemes if phoneme.name]
    assert names[0] == "m" and "m" in names[1:]
    starts = [phoneme.start for phoneme in speech.phonemes]
    assert starts == sorted(starts)
    assert speech.audio.dtype == np.float32
    assert 0.25 < len(speech.audio) / SAMPLE_RATE < 1.0
    assert np.abs(speech.audio).max() > 0.05  # real sound, not silence


def test_same_text_and_voice_give_the_same_samples() -> None:
    first = synthesize("Bonjour, mon ami.", "fr+f2", rate=150, pitch=60)
    second = synthesize("Bonjour, mon ami.", "fr+f2", rate=150, pitch=60)
    assert np.array_equal(first.audio, second.audio)
    assert first.phonemes == second.phonemes


@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_every_language_speaks(language: str) -> None:
    rng = np.random.default_rng(0)
    voice, rate, pitch = texts.voice(rng, language, "train")
    speech = synthesize(texts.sentence(rng, language, "train", 3), voice, rate, pitch)
    assert len(speech.phonemes) > 4 and speech.seconds > 0.3


def test_unknown_voice_is_a_clear_error() -> None:
    with pytest.raises(SpeechError, match="no voice"):
        synthesize("hello", "xx-nowhere")


def test_splits_never_share_words_or_voice_variants() -> None:
    for language in texts.LANGUAGES:
        assert not set(texts.words(language, "train")) & set(texts.words(language, "heldout"))
    rng = np.random.default_rng(1)
    train = {texts.voice(rng, "en", "train") for _ in range(50)}
    heldout = {texts.voice(rng, "en", "heldout") for _ in range(50)}
    assert not {voice.split("+")[1] for voice, _, _ in train} & {
        voice.split("+")[1] for voice, _, _ in heldout
    }
    assert max(rate for _, rate, _ in train) < min(rate for _, rate, _ in heldout)
