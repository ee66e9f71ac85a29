from __future__ import annotations

import math

import pytest
import torch
from transformers import WhisperConfig, WhisperFeatureExtractor

from model.audio import (
    WhisperAudioEncoder,
    audio_token_rate,
    encode_audio,
    latent_audio_windows,
    latent_window_times,
    log_mel_spectrogram,
    window_reach_seconds,
)
from model.configs import get_config

FPS = 25.0
TOKEN_RATE = 50.0


@pytest.fixture(scope="module")
def feature_extractor() -> WhisperFeatureExtractor:
    return WhisperFeatureExtractor(feature_size=80)


@pytest.fixture(scope="module")
def encoder() -> WhisperAudioEncoder:
    torch.manual_seed(0)
    return WhisperAudioEncoder(WhisperConfig(**get_config("tiny").audio_encoder)).eval()


def time_coded_tokens(seconds: float) -> torch.Tensor:
    """Stand-in encoder output whose only feature is when each token plays: (1, tokens, 1)."""
    count = int(seconds * TOKEN_RATE)
    return (torch.arange(count, dtype=torch.float64) / TOKEN_RATE).view(1, count, 1)


def test_mel_frame_j_is_centred_on_sample_j_times_hop(feature_extractor: WhisperFeatureExtractor) -> None:
    waveform = torch.zeros(1, 16_000)
    waveform[0, 8_000] = 1.0  # a click at 0.5 s
    mel = log_mel_spectrogram(waveform, feature_extractor)
    assert mel.shape == (1, 80, 100)
    assert int(mel[0].sum(dim=0).argmax()) == 50  # hop 160: frame 50 is centred on sample 8000


def test_encoder_token_i_is_centred_on_mel_frame_2i(encoder: WhisperAudioEncoder) -> None:
    # The timing in model/audio.py assumes Whisper's convolutions: a centred kernel 3, then stride 2.
    for convolution, stride in ((encoder.conv1, 1), (encoder.conv2, 2)):
        assert convolution.kernel_size == (3,)
        assert convolution.padding == (1,)
        assert convolution.stride == (stride,)


def test_window_of_each_latent_frame_is_centred_on_its_own_frames() -> None:
    times = latent_window_times(5, FPS, window_frames=8, tokens_per_frame=2)
    assert times.shape == (5, 16)
    own_centres = [0.5] + [((4 * t - 3) + (4 * t) + 1) / 2 for t in range(1, 5)]  # in frames
    lag = times.mean(dim=1) * FPS - torch.tensor(own_centres, dtype=torch.float64)
    assert torch.allclose(lag, torch.zeros(5, dtype=torch.float64), atol=1e-9)
    # Latent frame t >= 1 hears exactly frames 4t-3-2 .. 4t+2, two tokens per frame.
    assert math.isclose(float(times[2, 0]) * FPS, 3 + 0.25)
    assert math.isclose(float(times[2, -1]) * FPS, 10 + 0.75)


def test_shifting_the_audio_by_k_frames_shifts_every_window_by_k_frames() -> None:
    tokens = time_coded_tokens(4.0)
    start = 0.5  # frame 0 starts half a second into the audio
    windows = latent_audio_windows(
        tokens, TOKEN_RATE, FPS, 4, tokens_per_frame=2, context_frames=2, audio_start_seconds=start
    )
    # The windows hear exactly the audio of their time span: a time-coded token reads back its time.
    expected = latent_window_times(4, FPS, 8, 2) + start
    assert torch.allclose(windows[0, :, :, 0], expected, atol=1e-9)
    for shift in (1, 3, 4):
        # Audio delayed by `shift` frames: frame 0 now lines up with audio `shift` frames earlier.
        shifted = latent_audio_windows(
            tokens,
            TOKEN_RATE,
            FPS,
            4,
            tokens_per_frame=2,
            context_frames=2,
            audio_start_seconds=start - shift / FPS,
        )
        assert torch.allclose(windows - shifted, torch.full_like(windows, shift / FPS), atol=1e-9)


def test_windows_reach_no_further_than_declared() -> None:
    times = latent_window_times(3, FPS, window_frames=8, tokens_per_frame=2)
    reach = window_reach_seconds(FPS, context_frames=2)
    clip_end = 9 / FPS
    assert float(times.min()) >= -reach
    assert float(times.max()) <= clip_end + reach


def test_long_audio_tokens_come_from_window_centres(
    encoder: WhisperAudioEncoder, feature_extractor: WhisperFeatureExtractor
) -> None:
    # The tiny encoder's window is 1 s (50 tokens), so 2.5 s of audio crosses several seams.
    waveform = torch.randn(1, 40_000, generator=torch.Generator().manual_seed(3)) * 0.1
    with torch.no_grad():
        tokens = encode_audio(encoder, feature_extractor, waveform)
        assert tokens.shape == (1, 125, 32)
        assert audio_token_rate(feature_extractor) == 50.0
        window, margin = 50, 50 // 6
        stride = window - 2 * margin
        padded = torch.nn.functional.pad(waveform, (0, 4 * stride * 320 + window * 320))
        mel = log_mel_spectrogram(padded[:, : (3 * stride + window) * 320], feature_extractor)
        starts = range(0, 125, stride)
        encoded = {
            start: encoder(mel[:, :, 2 * start : 2 * start + 2 * window]).last_hidden_state[0]
            for start in starts
        }
    # Every token equals that token in a window where it has `margin` tokens of context on each side (or sits
    # at the clip's start, where there is nothing before it): no token is computed at a window seam.
    for index in range(125):
        found = any(
            torch.allclose(encoded[start][index - start], tokens[0, index], atol=1e-5)
            for start in starts
            if margin <= index - start < window - margin or (start == 0 and index < margin)
        )
        assert found, f"token {index} comes from a window edge"


def test_short_audio_is_one_window_padded_with_silence(
    encoder: WhisperAudioEncoder, feature_extractor: WhisperFeatureExtractor
) -> None:
    waveform = torch.randn(1, 4_000, generator=torch.Generator().manual_seed(4)) * 0.1
    with torch.no_grad():
        tokens = encode_audio(encoder, feature_extractor, waveform)
        padded = torch.nn.functional.pad(waveform, (0, 16_000 - 4_000))
        whole = encoder(log_mel_spectrogram(padded, feature_extractor)).last_hidden_state
    assert tokens.shape == (1, 13, 32)
    assert torch.allclose(tokens, whole[:, :13], atol=1e-6)
