"""DubbingTransformer3DModel: the video DiT that re-renders the masked lower face from audio.

Input channels are the Wan image-to-video packing: noisy latents ⊕ latents of the source with the lower face
masked ⊕ the pixel mask packed to the latent frame rate. The whole frame is patchified (1, 2, 2) into tokens
that attend to each other across space and time (full self-attention with 3D RoPE). Each latent frame's tokens
cross-attend only to the audio tokens of that latent frame's own window, so the lips cannot lock onto audio
from another moment. The timestep modulates every block through AdaLN (shift, scale, gate). Optional reference
frames (clean latents of unmasked frames from elsewhere in the clip) join the self-attention as extra tokens
to carry teeth and mouth-interior appearance; they are never predicted.

Built from diffusers' Wan blocks: `WanAttention` (self-attention with RoPE and RMS q/k norm, SDPA through
diffusers' attention dispatcher, so flash attention on GPU), `WanAnimateFaceBlockCrossAttention` (the
per-frame cross-attention), `FeedForward`, `Timesteps`/`TimestepEmbedding`, `PixArtAlphaTextProjection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import FeedForward
from diffusers.models.embeddings import (
    PixArtAlphaTextProjection,
    TimestepEmbedding,
    Timesteps,
    get_1d_rotary_pos_embed,
)
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.transformers.transformer_wan import WanAttention, WanAttnProcessor
from diffusers.models.transformers.transformer_wan_animate import WanAnimateFaceBlockCrossAttention
from diffusers.utils import BaseOutput
from torch import nn


@dataclass
class DubbingTransformer3DModelOutput(BaseOutput):
    sample: torch.Tensor  # (batch, out_channels, latent_frames, latent_height, latent_width): the velocity


class DubbingRotaryPosEmbed(nn.Module):
    """3D rotary positions (time, height, width) for video tokens and for reference tokens.

    Like Wan's, the head dimension is split into a temporal part and two spatial parts; unlike Wan's, the
    positions are explicit so reference frames can sit at their own temporal index.
    """

    def __init__(self, attention_head_dim: int, max_seq_len: int, theta: float = 10000.0) -> None:
        super().__init__()
        self.height_dim = self.width_dim = 2 * (attention_head_dim // 6)
        self.time_dim = attention_head_dim - self.height_dim - self.width_dim
        cos_parts, sin_parts = [], []
        for dim in (self.time_dim, self.height_dim, self.width_dim):
            cos, sin = get_1d_rotary_pos_embed(
                dim, max_seq_len, theta, use_real=True, repeat_interleave_real=True, freqs_dtype=torch.float64
            )
            cos_parts.append(cos)
            sin_parts.append(sin)
        # (max_seq_len, head_dim) tables; kept out of the checkpoint because they are derived from the config.
        self.register_buffer("freqs_cos", torch.cat(cos_parts, dim=1).float(), persistent=False)
        self.register_buffer("freqs_sin", torch.cat(sin_parts, dim=1).float(), persistent=False)

    def forward(
        self, time_positions: torch.Tensor, grid_height: int, grid_width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (cos, sin), each (1, len(time_positions) * grid_height * grid_width, 1, head_dim)."""
        split_sizes = [self.time_dim, self.height_dim, self.width_dim]
        device = time_positions.device
        height_positions = torch.arange(grid_height, device=device)
        width_positions = torch.arange(grid_width, device=device)
        tables = []
        tables_in: tuple[torch.Tensor, torch.Tensor] = (self.freqs_cos, self.freqs_sin)  # type: ignore[assignment]
        for table in tables_in:
            time_table, height_table, width_table = table.split(split_sizes, dim=1)
            frames = time_positions.shape[0]
            # (frames, grid_height, grid_width, head_dim)
            grid = torch.cat(
                [
                    time_table[time_positions]
                    .view(frames, 1, 1, -1)
                    .expand(frames, grid_height, grid_width, -1),
                    height_table[height_positions]
                    .view(1, grid_height, 1, -1)
                    .expand(frames, grid_height, grid_width, -1),
                    width_table[width_positions]
                    .view(1, 1, grid_width, -1)
                    .expand(frames, grid_height, grid_width, -1),
                ],
                dim=-1,
            )
            tables.append(grid.reshape(1, frames * grid_height * grid_width, 1, -1))
        return tables[0], tables[1]


class DubbingTransformerBlock(nn.Module):
    """Self-attention over all tokens, audio cross-attention per latent frame, feed-forward, AdaLN."""

    def __init__(self, dim: int, ffn_dim: int, num_heads: int, head_dim: int, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps, elementwise_affine=False)
        self.attn1 = WanAttention(
            dim=dim, heads=num_heads, dim_head=head_dim, eps=eps, processor=WanAttnProcessor()
        )
        # Pre-norms of query and audio are inside; each latent frame attends only to its own audio tokens.
        self.audio_attn = WanAnimateFaceBlockCrossAttention(
            dim=dim, heads=num_heads, dim_head=head_dim, eps=eps
        )
        self.norm3 = nn.LayerNorm(dim, eps, elementwise_affine=False)
        self.ffn = FeedForward(dim, inner_dim=ffn_dim, activation_fn="gelu-approximate")
        # Per-block offsets added to the shared timestep projection (Wan's scale_shift_table).
        self.scale_shift_table = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def forward(
        self,
        hidden_states: torch.Tensor,
        audio_hidden_states: torch.Tensor,
        timestep_projection: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        num_video_tokens: int,
    ) -> torch.Tensor:
        # hidden_states: (batch, tokens, dim); audio_hidden_states: (batch, latent_frames, window, dim)
        # timestep_projection: (batch, 6, dim)
        shift_msa, scale_msa, gate_msa, shift_ffn, scale_ffn, gate_ffn = (
            self.scale_shift_table + timestep_projection.float()
        ).chunk(6, dim=1)

        norm_hidden_states = (self.norm1(hidden_states.float()) * (1 + scale_msa) + shift_msa).type_as(
            hidden_states
        )
        attention_output = self.attn1(norm_hidden_states, rotary_emb=rotary_emb)
        hidden_states = (hidden_states.float() + attention_output * gate_msa).type_as(hidden_states)

        # Only video tokens hear the audio: reference tokens have no time of their own.
        video_hidden_states = hidden_states[:, :num_video_tokens]
        reference_hidden_states = hidden_states[:, num_video_tokens:]
        audio_output = self.audio_attn(video_hidden_states, encoder_hidden_states=audio_hidden_states)
        hidden_states = torch.cat([video_hidden_states + audio_output, reference_hidden_states], dim=1)

        norm_hidden_states = (self.norm3(hidden_states.float()) * (1 + scale_ffn) + shift_ffn).type_as(
            hidden_states
        )
        feed_forward_output = self.ffn(norm_hidden_states)
        hidden_states = (hidden_states.float() + feed_forward_output.float() * gate_ffn).type_as(
            hidden_states
        )
        return hidden_states


class DubbingTransformer3DModel(ModelMixin, ConfigMixin):
    """Predicts the flow-matching velocity of the latents, conditioned on an audio window per latent frame.

    Args:
        latent_channels: channels of the VAE latents (16 for Wan2.1).
        mask_channels: channels of the packed mask (the VAE's temporal compression: 4).
        patch_size: (time, height, width) patch of the token grid.
        num_attention_heads, attention_head_dim: attention shape; dim = heads * head_dim.
        num_layers: transformer blocks.
        ffn_dim: hidden width of the feed-forward.
        freq_dim: width of the sinusoidal timestep features.
        audio_dim: width of the audio encoder's features.
        audio_window_tokens: audio tokens per latent frame (the window the pipeline cuts).
        rope_max_seq_len: largest index on any rotary axis.
        eps: norm epsilon.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules: ClassVar[list[str]] = ["DubbingTransformerBlock"]
    _repeated_blocks: ClassVar[list[str]] = ["DubbingTransformerBlock"]  # for compile_repeated_blocks()
    _keep_in_fp32_modules: ClassVar[list[str]] = ["time_embedder", "scale_shift_table"]

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 16,
        mask_channels: int = 4,
        patch_size: tuple[int, int, int] = (1, 2, 2),
        num_attention_heads: int = 12,
        attention_head_dim: int = 128,
        num_layers: int = 30,
        ffn_dim: int = 8960,
        freq_dim: int = 256,
        audio_dim: int = 384,
        audio_window_tokens: int = 16,
        rope_max_seq_len: int = 1024,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        dim = num_attention_heads * attention_head_dim
        in_channels = 2 * latent_channels + mask_channels
        self.patch_embedding = nn.Conv3d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        # Reference frames are clean latents only (no noise, no mask), so they get their own patch embedding.
        self.reference_patch_embedding = nn.Conv3d(
            latent_channels, dim, kernel_size=patch_size, stride=patch_size
        )
        self.rope = DubbingRotaryPosEmbed(attention_head_dim, rope_max_seq_len)

        self.time_proj = Timesteps(freq_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedder = TimestepEmbedding(freq_dim, dim)
        self.time_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

        self.audio_projection = PixArtAlphaTextProjection(audio_dim, dim, act_fn="gelu_tanh")
        # Tells the model where in its window each audio token lies (the window is a fixed span of frames).
        self.audio_position_embedding = nn.Parameter(torch.randn(1, 1, audio_window_tokens, dim) * 0.02)

        self.blocks = nn.ModuleList(
            [
                DubbingTransformerBlock(dim, ffn_dim, num_attention_heads, attention_head_dim, eps)
                for _ in range(num_layers)
            ]
        )

        self.norm_out = nn.LayerNorm(dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, latent_channels * patch_size[0] * patch_size[1] * patch_size[2])
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        audio_hidden_states: torch.Tensor,
        reference_hidden_states: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> DubbingTransformer3DModelOutput | tuple[torch.Tensor]:
        """
        Args:
            hidden_states: (batch, 2 * latent_channels + mask_channels, latent_frames, height, width).
            timestep: (batch,) in [0, 1000] (sigma * 1000).
            audio_hidden_states: (batch, latent_frames, audio_window_tokens, audio_dim).
            reference_hidden_states: optional (batch, latent_channels, reference_frames, height, width).
        """
        batch_size, _, latent_frames, height, width = hidden_states.shape
        patch_time, patch_height, patch_width = self.config.patch_size
        grid_frames = latent_frames // patch_time
        grid_height, grid_width = height // patch_height, width // patch_width
        if audio_hidden_states.shape[1] != grid_frames:
            raise ValueError(
                f"audio_hidden_states has {audio_hidden_states.shape[1]} windows, "
                f"expected one per latent frame ({grid_frames})"
            )

        # (batch, dim, grid_frames, grid_height, grid_width) -> (batch, video_tokens, dim)
        video_tokens = self.patch_embedding(hidden_states).flatten(2).transpose(1, 2)
        num_video_tokens = video_tokens.shape[1]
        time_positions = torch.arange(grid_frames, device=hidden_states.device)
        if reference_hidden_states is not None:
            # (batch, reference_tokens, dim)
            reference_tokens = (
                self.reference_patch_embedding(reference_hidden_states).flatten(2).transpose(1, 2)
            )
            reference_frames = reference_hidden_states.shape[2] // patch_time
            # Reference frames sit at the far end of the time axis: clearly "elsewhere in the clip".
            reference_positions = (
                self.config.rope_max_seq_len - 1 - torch.arange(reference_frames, device=hidden_states.device)
            )
            time_positions = torch.cat([time_positions, reference_positions])
            tokens = torch.cat([video_tokens, reference_tokens], dim=1)
        else:
            tokens = video_tokens
        rotary_emb = self.rope(time_positions, grid_height, grid_width)

        # (batch, dim) -> (batch, 6, dim)
        timestep_embedding = self.time_embedder(
            self.time_proj(timestep).to(self.time_embedder.linear_1.weight.dtype)
        )
        timestep_projection = self.time_modulation(timestep_embedding.to(tokens.dtype)).unflatten(1, (6, -1))

        # (batch, latent_frames, audio_window_tokens, dim)
        audio_tokens = (
            self.audio_projection(audio_hidden_states.to(tokens.dtype)) + self.audio_position_embedding
        )

        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                tokens = self._gradient_checkpointing_func(
                    block, tokens, audio_tokens, timestep_projection, rotary_emb, num_video_tokens
                )
            else:
                tokens = block(tokens, audio_tokens, timestep_projection, rotary_emb, num_video_tokens)

        # Only video tokens are predicted.
        video_tokens = tokens[:, :num_video_tokens]
        shift, scale = (self.scale_shift_table + timestep_embedding.float().unsqueeze(1)).chunk(2, dim=1)
        video_tokens = (self.norm_out(video_tokens.float()) * (1 + scale) + shift).type_as(video_tokens)
        # (batch, video_tokens, latent_channels * patch volume)
        video_tokens = self.proj_out(video_tokens)

        # (batch, grid_frames, grid_height, grid_width, patch_t, patch_h, patch_w, channels)
        video_tokens = video_tokens.reshape(
            batch_size, grid_frames, grid_height, grid_width, patch_time, patch_height, patch_width, -1
        )
        # -> (batch, channels, grid_frames, patch_t, grid_height, patch_h, grid_width, patch_w)
        video_tokens = video_tokens.permute(0, 7, 1, 4, 2, 5, 3, 6)
        # -> (batch, channels, latent_frames, height, width)
        output = video_tokens.flatten(6, 7).flatten(4, 5).flatten(2, 3)

        if not return_dict:
            return (output,)
        return DubbingTransformer3DModelOutput(sample=output)
