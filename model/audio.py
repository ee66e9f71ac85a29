"""Audio per latent frame: log-mel → Whisper encoder in seamless windows → per-frame tokens → windows.

Timing is explicit everywhere because a constant offset is a constant lip lag:
- Whisper's log-mel frame j is centred on sample j * hop (a centred STFT), and encoder token i on mel frame
  2 * i (conv2 has stride 2, kernel 3, padding 1), so token i is centred at i * 2 * hop / sample_rate seconds.
- Video frame f shows the time span [f / fps, (f + 1) / fps); its k audio tokens are sampled at the centres of
  k equal sub-spans, by linear interpolation between the encoder's tokens.
- The causal VAE encodes frame 0 alone into latent frame 0 and frames 4t-3 .. 4t into latent frame t, so the
  window of latent frame t is frames [4t-3-c, 4t+c]: its own frames with c frames of context on each side.
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


def frame_audio_features(
    audio_tokens: torch.Tensor,
    token_rate: float,
    frame_rate: float,
    first_frame: int,
    num_frames: int,
    tokens_per_frame: int,
    audio_start_seconds: float = 0.0,
) -> torch.Tensor:
    """Resample tokens to the video: (batch, tokens, dim) -> (batch, num_frames, tokens_per_frame, dim).

    Frame `first_frame + n` gets tokens sampled at the centres of its `tokens_per_frame` sub-spans; frame 0
    starts `audio_start_seconds` after the first audio sample. Times outside the audio clamp to its ends (the
    callers pad the waveform with silence, so clamping only ever repeats silence).
    """
    device = audio_tokens.device
    frames = torch.arange(first_frame, first_frame + num_frames, device=device, dtype=torch.float64)
    sub_spans = (torch.arange(tokens_per_frame, device=device, dtype=torch.float64) + 0.5) / tokens_per_frame
    # (num_frames, tokens_per_frame): seconds from the first audio sample
    times = audio_start_seconds + (frames[:, None] + sub_spans[None, :]) / frame_rate
    positions = (times * token_rate).clamp(0, audio_tokens.shape[1] - 1)
    lower = positions.floor().long()
    upper = (lower + 1).clamp(max=audio_tokens.shape[1] - 1)
    weight = (positions - lower).to(audio_tokens.dtype)[None, :, :, None]
    # (batch, num_frames, tokens_per_frame, dim)
    return audio_tokens[:, lower] * (1 - weight) + audio_tokens[:, upper] * weight


def latent_window_frames(latent_frame: int, frames_per_latent: int, context_frames: int) -> range:
    """The video frames whose audio latent frame `latent_frame` hears (may start before frame 0)."""
    last_own_frame = latent_frame * frames_per_latent
    return range(last_own_frame - frames_per_latent + 1 - context_frames, last_own_frame + context_frames + 1)


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

    `audio_start_seconds` is when frame 0 starts, measured from the first audio sample; the audio must reach
    back far enough for the first window's context (callers pad with silence).
    """
    first_frame = latent_window_frames(0, frames_per_latent, context_frames).start
    last_frame = latent_window_frames(num_latent_frames - 1, frames_per_latent, context_frames).stop
    # (batch, frames in any window, tokens_per_frame, dim)
    per_frame = frame_audio_features(
        audio_tokens,
        token_rate,
        frame_rate,
        first_frame,
        last_frame - first_frame,
        tokens_per_frame,
        audio_start_seconds,
    )
    windows = [
        per_frame[:, window.start - first_frame : window.stop - first_frame]
        for window in (
            latent_window_frames(latent, frames_per_latent, context_frames)
            for latent in range(num_latent_frames)
        )
    ]
    # (batch, num_latent_frames, window_frames, tokens_per_frame, dim) -> (..., window_tokens, dim)
    return torch.stack(windows, dim=1).flatten(2, 3)
