"""Named model sizes: the constructor arguments of each pipeline component, from `tiny` (tests) to `base`.

Every audio-encoder config is a `WhisperConfig` that a released checkpoint of the same shape fills exactly
(`small` is whisper-tiny's shape, `base` is whisper-base's), and `base` uses the public Wan2.1 VAE shape, so
published weights load into them (see model/checkpoints.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The sampler's default: three Euler steps at evenly spread noise levels. A shifted `set_timesteps(3)` puts
# the third step where it does almost nothing: FlowMatchEulerDiscreteScheduler(shift=3).set_timesteps(3)
# gives sigmas 1, 0.751, 0.0089, 0.
DEFAULT_SIGMAS = (1.0, 0.667, 0.333)


@dataclass(frozen=True)
class AudioWindowConfig:
    """How the audio is cut per latent frame; shared by the pipeline and the transformer's input width."""

    tokens_per_frame: int = 2  # audio tokens resampled per video frame (Whisper's 50 Hz at 25 fps)
    context_frames: int = 2  # video frames of audio context on each side of a latent frame's own frames
    frames_per_latent: int = 4  # the VAE's temporal compression

    @property
    def window_frames(self) -> int:
        return self.frames_per_latent + 2 * self.context_frames

    @property
    def window_tokens(self) -> int:
        return self.window_frames * self.tokens_per_frame


@dataclass(frozen=True)
class ModelConfig:
    name: str
    vae: dict[str, Any]
    transformer: dict[str, Any]
    audio_encoder: dict[str, Any]
    audio_window: AudioWindowConfig = field(default_factory=AudioWindowConfig)


def _whisper_encoder(
    d_model: int, layers: int, heads: int, max_source_positions: int = 1500
) -> dict[str, Any]:
    # The decoder fields are Whisper's own defaults for that size; only the encoder is built and saved.
    return {
        "num_mel_bins": 80,
        "d_model": d_model,
        "encoder_layers": layers,
        "encoder_attention_heads": heads,
        "encoder_ffn_dim": 4 * d_model,
        "decoder_layers": layers,
        "decoder_attention_heads": heads,
        "decoder_ffn_dim": 4 * d_model,
        "max_source_positions": max_source_positions,
    }


_WINDOW = AudioWindowConfig()
# Per-frame latents: each frame hears 2 + 1 + 2 ... frames of audio around itself (+-140 ms with 3 frames).
_MINI_WINDOW = AudioWindowConfig(tokens_per_frame=2, context_frames=3, frames_per_latent=1)

CONFIGS: dict[str, ModelConfig] = {
    # Seconds on a CPU: for tests and for building throwaway checkpoints.
    "tiny": ModelConfig(
        name="tiny",
        vae={
            "base_dim": 8,
            "z_dim": 16,
            "dim_mult": [1, 2, 2, 2],
            "num_res_blocks": 1,
            "attn_scales": [],
            "temperal_downsample": [False, True, True],
        },
        transformer={
            "num_attention_heads": 2,
            "attention_head_dim": 24,
            "num_layers": 2,
            "ffn_dim": 96,
            "freq_dim": 32,
            "audio_dim": 32,
            "audio_window_tokens": _WINDOW.window_tokens,
            "rope_max_seq_len": 256,
        },
        # A 1 s Whisper window so that even short test clips cross window seams.
        audio_encoder=_whisper_encoder(32, 2, 2, max_source_positions=50),
    ),
    # The size trained on a CPU and shipped: per-frame latents (no temporal compression), so a briefly trained
    # VAE never has to pack four frames of fast lip motion into one latent; a 2-layer Whisper-shaped encoder
    # trained from scratch; a 4-layer DiT. Everything else in the pipeline is the same code as `base`.
    "mini": ModelConfig(
        name="mini",
        vae={
            "base_dim": 8,
            "decoder_base_dim": 16,
            "z_dim": 16,
            "dim_mult": [1, 2, 2, 2],
            "num_res_blocks": 1,
            "attn_scales": [],
            "temperal_downsample": [False, False, False],
            "scale_factor_temporal": 1,
            # Untrained statistics: the training run measures and stores the real ones.
            "latents_mean": [0.0] * 16,
            "latents_std": [1.0] * 16,
        },
        transformer={
            "num_attention_heads": 4,
            "attention_head_dim": 32,
            "num_layers": 4,
            "ffn_dim": 512,
            "freq_dim": 64,
            "audio_dim": 128,
            "audio_window_tokens": _MINI_WINDOW.window_tokens,
            "rope_max_seq_len": 256,
        },
        # 2 s encoder windows: plenty of context for one frame's mouth, and cheap.
        audio_encoder=_whisper_encoder(128, 2, 4, max_source_positions=100),
        audio_window=_MINI_WINDOW,
    ),
    # A middle size for a first GPU run: a 10 M-parameter VAE, a 36 M DiT, whisper-tiny's shape.
    "small": ModelConfig(
        name="small",
        vae={
            "base_dim": 32,
            "z_dim": 16,
            "dim_mult": [1, 2, 4, 4],
            "num_res_blocks": 1,
            "attn_scales": [],
            "temperal_downsample": [False, True, True],
        },
        transformer={
            "num_attention_heads": 8,
            "attention_head_dim": 64,
            "num_layers": 8,
            "ffn_dim": 2048,
            "freq_dim": 256,
            "audio_dim": 384,
            "audio_window_tokens": _WINDOW.window_tokens,
        },
        audio_encoder=_whisper_encoder(384, 4, 6),
    ),
    # The production size: the public Wan2.1 VAE (127 M), a 345 M DiT, whisper-base.
    "base": ModelConfig(
        name="base",
        vae={},  # AutoencoderKLWan's defaults are the Wan2.1 VAE
        transformer={
            "num_attention_heads": 16,
            "attention_head_dim": 64,
            "num_layers": 20,
            "ffn_dim": 4096,
            "freq_dim": 256,
            "audio_dim": 512,
            "audio_window_tokens": _WINDOW.window_tokens,
        },
        audio_encoder=_whisper_encoder(512, 6, 8),
    ),
}


def get_config(name: str) -> ModelConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model config {name!r}; choose one of: {', '.join(CONFIGS)}") from None
