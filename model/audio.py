"""Audio per latent frame: log-mel → Whisper encoder in seamless windows → per-frame tokens → windows.

Timing is explicit everywhere because a constant offset is a constant lip lag:
- Whisper's log-mel frame j is centred on sample j * hop (a centred STFT), and encoder token i on mel frame
  2 * i (conv2 has stride 2, kernel 3, padding 1), so token i is centred at i * 2 * hop / sample_rate seconds.
- Video frame f shows the time span [f / fps, (f + 1) / fps).
- The causal VAE encodes frame 0 alone into latent frame 0 and frames 4t-3 .. 4t into latent frame t. The
  window of latent frame t spans 4 + 2c frames of time centred on its own frames (for t >= 1 exactly frames
  4t-3-c .. 4t+c), sampled at k tokens per frame by linear interpolation between the encoder's tokens.
"""

from __future__ import annotations

import math

import torch
from transformers import PreTrainedModel, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

WHISPER_CONV_STRIDE = 2  # conv2 of the Whisper encoder halves the mel frame rate

# diffusers picks a custom component's loader by looking its base classes up in the component's own module.
LOADABLE_BASE_CLASSES = (PreTrainedModel,)


class WhisperAudioEncoder(WhisperEncoder):
    """transformers' Whisper encoder, unchanged.

    The subclass exists only so a pipeline can name it: transformers does not export `WhisperEncoder` at its
    top level, where diffusers looks up a component's class when it loads a pipeline.
    """

    @classmethod
    def from_whisper(cls, encoder: WhisperEncoder) -> WhisperAudioEncoder:
        """The same weights in this class (e.g. the encoder of a released `WhisperModel`)."""
        audio_encoder = cls(encoder.config)
        audio_encoder.load_state_dict(encoder.state_dict(), strict=True)
        return audio_encoder


def log_mel_spectrogram(waveform: torch.Tensor, feature_extractor: WhisperFeatureExtractor) -> torch.Tensor:
    """Whisper's log-mel features, computed in torch: (batch, samples) -> (batch, mel_bins, samples // hop).

    The dynamic-range floor (max - 8) is taken over each whole clip, not per window, so all windows of one
    clip share one scale and no seam appears where windows meet.
    """
    window = torch.hann_window(feature_extractor.n_fft, device=waveform.device)
    # (batch, freq_bins, mel_frames + 1): a centred STFT; Whisper drops the last frame.
    stft = torch.stft(
        waveform.float(),
        feature_extractor.n_fft,
        feature_extractor.hop_length,
        window=window,
        return_complex=True,
    )
    magnitudes = stft[..., :-1].abs() ** 2
    mel_filters = torch.as_tensor(feature_extractor.mel_filters, dtype=torch.float32, device=waveform.device)
    # (batch, mel_bins, mel_frames)
    mel = mel_filters.T @ magnitudes
    log_spec = torch.clamp(mel, min=1e-10).log10()
    floor = log_spec.amax(dim=(1, 2), keepdim=True) - 8.0
    log_spec = torch.maximum(log_spec, floor)
    return (log_spec + 4.0) / 4.0


def audio_token_rate(feature_extractor: WhisperFeatureExtractor) -> float:
    """Encoder tokens per second (50 for Whisper at 16 kHz)."""
    return feature_extractor.sampling_rate / (feature_extractor.hop_length * WHISPER_CONV_STRIDE)


def encode_audio(
    audio_encoder: WhisperEncoder, feature_extractor: WhisperFeatureExtractor, waveform: torch.Tensor
) -> torch.Tensor:
    """Encode audio of any length: (batch, samples) at the extractor's rate -> (batch, tokens, audio_dim).

    Whisper only accepts a fixed window (30 s for released checkpoints). Windows overlap, and each token is
    taken from the window where it is furthest from an edge (at least `margin` tokens of context on both
    sides, except at the clip's ends), so no token sits at a window seam with one-sided context.
    """
    batch_size, num_samples = waveform.shape
    window_tokens = audio_encoder.config.max_source_positions
    window_mel_frames = window_tokens * WHISPER_CONV_STRIDE
    margin = window_tokens // 6
    stride_tokens = window_tokens - 2 * margin
    tokens_total = max(1, math.ceil(num_samples / (feature_extractor.hop_length * WHISPER_CONV_STRIDE)))
    num_windows = max(1, math.ceil((tokens_total - window_tokens) / stride_tokens) + 1)
    # Pad with true silence so the last window is full: the same thing Whisper's own extractor does.
    padded_tokens = (num_windows - 1) * stride_tokens + window_tokens
    padded_samples = padded_tokens * WHISPER_CONV_STRIDE * feature_extractor.hop_length
    padded = torch.nn.functional.pad(waveform.float(), (0, padded_samples - num_samples))
    # (batch, mel_bins, padded_tokens * 2)
    mel = log_mel_spectrogram(padded, feature_extractor)

    # (batch * num_windows, mel_bins, window_mel_frames)
    starts = [index * stride_tokens for index in range(num_windows)]
    windows = torch.cat(
        [
            mel[:, :, start * WHISPER_CONV_STRIDE : start * WHISPER_CONV_STRIDE + window_mel_frames]
            for start in starts
        ]
    )
    encoder_dtype = next(audio_encoder.parameters()).dtype
    # (num_windows * batch, window_tokens, audio_dim), window-major
    encoded = audio_encoder(windows.to(encoder_dtype)).last_hidden_state
    encoded = encoded.unflatten(0, (num_windows, batch_size))

    pieces = []
    for index in range(num_windows):
        keep_from = 0 if index == 0 else margin
        keep_to = window_tokens if index == num_windows - 1 else window_tokens - margin
        pieces.append(encoded[index, :, keep_from:keep_to])
    # (batch, padded_tokens, audio_dim) -> (batch, tokens_total, audio_dim)
    return torch.cat(pieces, dim=1)[:, :tokens_total]


def latent_window_times(
    num_latent_frames: int,
    frame_rate: float,
    window_frames: int,
    tokens_per_frame: int,
    frames_per_latent: int = 4,
) -> torch.Tensor:
    """When each audio token of each latent frame's window plays: (num_latent_frames, window_tokens) seconds.

    The window spans `window_frames` frames of time centred on the latent frame's own frames: frames
    4t-3 .. 4t for t >= 1, frame 0 alone for t = 0 (the causal VAE), so no latent frame hears early or late
    audio. Tokens sit at the centres of equal sub-spans (`tokens_per_frame` per frame).
    """
    latent = torch.arange(num_latent_frames, dtype=torch.float64)
    # Centre of the own frames, in frames: the mean of the span centres of frames 4t-3 .. 4t (for 4 frames per
    # latent: 4t - 1; for 1: t + 0.5), or frame 0's centre.
    own_centres = frames_per_latent * latent - frames_per_latent / 2 + 1
    centres = torch.where(latent == 0, torch.tensor(0.5, dtype=torch.float64), own_centres)
    window_tokens = window_frames * tokens_per_frame
    offsets = ((torch.arange(window_tokens, dtype=torch.float64) + 0.5) / window_tokens - 0.5) * window_frames
    return (centres[:, None] + offsets[None, :]) / frame_rate


def sample_audio_tokens(audio_tokens: torch.Tensor, token_rate: float, times: torch.Tensor) -> torch.Tensor:
    """Linearly interpolate (batch, tokens, dim) at `times` seconds -> (batch, *times.shape, dim).

    Token i plays at i / token_rate; times outside the audio clamp to its ends (callers pad the waveform
    with silence, so clamping only ever repeats silence).
    """
    positions = (times.to(audio_tokens.device) * token_rate).clamp(0, audio_tokens.shape[1] - 1)
    lower = positions.floor().long()
    upper = (lower + 1).clamp(max=audio_tokens.shape[1] - 1)
    weight = (positions - lower).to(audio_tokens.dtype)[None, ..., None]
    return audio_tokens[:, lower] * (1 - weight) + audio_tokens[:, upper] * weight


def latent_audio_windows(
    audio_tokens: torch.Tensor,
    token_rate: float,
    frame_rate: float,
    num_latent_frames: int,
    tokens_per_frame: int,
    context_frames: int,
    frames_per_latent: int = 4,
    audio_start_seconds: float = 0.0,
) -> torch.Tensor:
    """Cut one audio window per latent frame: -> (batch, num_latent_frames, window_tokens, dim).

    `audio_start_seconds` is when frame 0 starts, measured from the first audio sample; the audio should
    reach `window_reach_seconds` beyond the clip on both sides (callers pad with silence).
    """
    window_frames = frames_per_latent + 2 * context_frames
    times = latent_window_times(
        num_latent_frames, frame_rate, window_frames, tokens_per_frame, frames_per_latent
    )
    return sample_audio_tokens(audio_tokens, token_rate, times + audio_start_seconds)


def window_reach_seconds(frame_rate: float, context_frames: int, frames_per_latent: int = 4) -> float:
    """How far the windows reach beyond the clip's first and last frames (before and after)."""
    return (frames_per_latent / 2 + context_frames) / frame_rate
