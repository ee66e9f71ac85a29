"""DubbingPipeline: source frames + lower-face masks + new audio -> frames with the masked region re-rendered.

Tensors in, tensors out. The stages are separate methods so training code and benchmarks can call them:
`encode_condition` (3D VAE on the masked source, the packed mask, reference and motion frames),
`encode_audio_windows` (Whisper in seamless windows, one window per latent frame), `denoise` (Euler steps of
the rectified flow at an explicit sigma schedule), `decode_region` (the VAE decodes only the latents around
the mask) or `decode` (whole frames), and `composite` (only the masked region changes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import WhisperFeatureExtractor

from model.audio import (
    WhisperAudioEncoder,
    audio_token_rate,
    encode_audio,
    latent_audio_windows,
    window_reach_seconds,
)
from model.configs import DEFAULT_SIGMAS
from model.transformer_dubbing import DubbingTransformer3DModel

DEFAULT_DECODE_MARGIN = 6  # latent pixels around the mask that the region decode includes


@dataclass
class DubbingPipelineOutput(BaseOutput):
    # (batch, frames, 3, height, width) in [0, 1]; source pixels wherever mask == 0 (unless composite_output
    # was False: then the decoded pixels, blended by nobody yet)
    frames: torch.Tensor
    latents: torch.Tensor  # (batch, latent_channels, latent_frames, latent_height, latent_width), normalised


@dataclass
class DubbingCondition:
    """Everything the transformer is conditioned on, at latent resolution."""

    masked_latents: torch.Tensor  # (batch, latent_channels, latent_frames, h, w): source with the mask hidden
    latent_mask: torch.Tensor  # (batch, frames_per_latent, latent_frames, h, w): 1 where the model generates
    audio_windows: torch.Tensor  # (batch, latent_frames, window_tokens, audio_dim)
    reference_latents: torch.Tensor | None  # (batch, latent_channels, reference_frames, h, w)
    known_latent_frames: int  # leading latent frames fixed by motion frames (given, not generated)


class DubbingPipeline(DiffusionPipeline):
    """Re-renders the masked lower face of every frame so the lips follow `audio`.

    Args:
        vae: the 3D causal VAE (Wan2.1 layout: 4x time, 8x space, 16 channels).
        transformer: the dubbing DiT.
        audio_encoder: a Whisper encoder.
        feature_extractor: Whisper's log-mel settings (sampling rate, hop, mel filters).
        scheduler: flow-matching Euler; sampled at explicit sigmas.
        audio_tokens_per_frame, audio_context_frames: how audio windows are cut (must match the transformer).
    """

    model_cpu_offload_seq = "audio_encoder->transformer->vae"

    def __init__(
        self,
        vae: AutoencoderKLWan,
        transformer: DubbingTransformer3DModel,
        audio_encoder: WhisperAudioEncoder,
        feature_extractor: WhisperFeatureExtractor,
        scheduler: FlowMatchEulerDiscreteScheduler,
        audio_tokens_per_frame: int = 2,
        audio_context_frames: int = 2,
    ) -> None:
        super().__init__()
        self.register_modules(
            vae=vae,
            transformer=transformer,
            audio_encoder=audio_encoder,
            feature_extractor=feature_extractor,
            scheduler=scheduler,
        )
        self.register_to_config(
            audio_tokens_per_frame=audio_tokens_per_frame, audio_context_frames=audio_context_frames
        )
        self.frames_per_latent: int = vae.config.scale_factor_temporal
        self.spatial_scale: int = vae.config.scale_factor_spatial
        window_tokens = (self.frames_per_latent + 2 * audio_context_frames) * audio_tokens_per_frame
        if window_tokens != transformer.config.audio_window_tokens:
            raise ValueError(
                f"audio windows of {window_tokens} tokens do not match the transformer's "
                f"{transformer.config.audio_window_tokens}"
            )

    # -- sizes --

    @property
    def size_multiple(self) -> int:
        """Frame height and width must be multiples of this (VAE stride times patch size)."""
        return self.spatial_scale * self.transformer.config.patch_size[1]

    def check_inputs(self, frames: torch.Tensor, masks: torch.Tensor, audio: torch.Tensor) -> None:
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (batch, frames, 3, height, width), got {tuple(frames.shape)}")
        batch_size, num_frames, _, height, width = frames.shape
        if (num_frames - 1) % self.frames_per_latent != 0:
            raise ValueError(f"the frame count must be 1 + {self.frames_per_latent}k, got {num_frames}")
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(
                f"height and width must be multiples of {self.size_multiple}, got {height}x{width}"
            )
        if masks.shape != (batch_size, num_frames, height, width):
            raise ValueError(
                f"masks must be {(batch_size, num_frames, height, width)}, got {tuple(masks.shape)}"
            )
        if audio.ndim != 2 or audio.shape[0] != batch_size:
            raise ValueError(
                f"audio must be (batch, samples) with batch {batch_size}, got {tuple(audio.shape)}"
            )

    # -- stages --

    def _normalize(self, latents: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.vae.config.latents_mean, device=latents.device, dtype=latents.dtype)
        std = torch.tensor(self.vae.config.latents_std, device=latents.device, dtype=latents.dtype)
        return (latents - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)

    def _denormalize(self, latents: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.vae.config.latents_mean, device=latents.device, dtype=latents.dtype)
        std = torch.tensor(self.vae.config.latents_std, device=latents.device, dtype=latents.dtype)
        return latents * std.view(1, -1, 1, 1, 1) + mean.view(1, -1, 1, 1, 1)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 3, height, width) in [0, 1] -> normalised latents (batch, channels, t, h, w)."""
        # (batch, 3, frames, height, width) in [-1, 1], the VAE's layout
        video = frames.permute(0, 2, 1, 3, 4).to(self.vae.dtype) * 2 - 1
        latents = self.vae.encode(video).latent_dist.mode()
        return self._normalize(latents.float())

    def pack_mask(self, masks: torch.Tensor) -> torch.Tensor:
        """(batch, frames, height, width) -> (batch, frames_per_latent, latent_frames, h, w), Wan-I2V packing.

        A latent pixel counts as masked if any pixel under it is, so no source mouth pixel leaks into a latent
        the model treats as given.
        """
        # (batch, frames, h, w)
        latent_mask = torch.nn.functional.max_pool2d(masks.float(), self.spatial_scale)
        # The causal VAE's first latent frame stands for one frame: repeat it so every latent has 4 frames.
        first = latent_mask[:, :1].repeat_interleave(self.frames_per_latent, dim=1)
        latent_mask = torch.cat([first, latent_mask[:, 1:]], dim=1)
        batch_size, packed_frames, height, width = latent_mask.shape
        # (batch, latent_frames, frames_per_latent, h, w) -> (batch, frames_per_latent, latent_frames, h, w)
        latent_mask = latent_mask.view(
            batch_size, packed_frames // self.frames_per_latent, self.frames_per_latent, height, width
        )
        return latent_mask.transpose(1, 2)

    def encode_audio_windows(
        self, audio: torch.Tensor, num_latent_frames: int, frame_rate: float, audio_offset: int = 0
    ) -> torch.Tensor:
        """(batch, samples), frame 0 at sample `audio_offset` -> (batch, latent_frames, window, dim)."""
        sample_rate = self.feature_extractor.sampling_rate
        context_frames = self.config.audio_context_frames
        reach = window_reach_seconds(frame_rate, context_frames, self.frames_per_latent)
        clip_seconds = (1 + self.frames_per_latent * (num_latent_frames - 1)) / frame_rate
        # Silence before and after so the first and last windows' context exists.
        pad_before = max(0, math.ceil(reach * sample_rate) + 1 - audio_offset)
        needed_end = audio_offset + math.ceil((clip_seconds + reach) * sample_rate) + 1
        pad_after = max(0, needed_end - audio.shape[1])
        waveform = torch.nn.functional.pad(audio.float(), (pad_before, pad_after))
        tokens = encode_audio(self.audio_encoder, self.feature_extractor, waveform)
        return latent_audio_windows(
            tokens,
            audio_token_rate(self.feature_extractor),
            frame_rate,
            num_latent_frames,
            self.config.audio_tokens_per_frame,
            context_frames,
            self.frames_per_latent,
            audio_start_seconds=(audio_offset + pad_before) / sample_rate,
        )

    def encode_condition(
        self,
        frames: torch.Tensor,
        masks: torch.Tensor,
        audio: torch.Tensor,
        frame_rate: float,
        audio_offset: int = 0,
        reference_frames: torch.Tensor | None = None,
        motion_frames: torch.Tensor | None = None,
    ) -> DubbingCondition:
        """Encode every conditioning input; `motion_frames` (batch, m, 3, H, W) replace the first m frames.

        Motion frames are the previous segment's rendering of this segment's first frames: they are given
        unmasked, so the model continues that motion instead of inventing its own at the seam.
        """
        self.check_inputs(frames, masks, audio)
        hard_mask = (masks > 0).to(frames.dtype)
        known_latent_frames = 0
        if motion_frames is not None:
            motion_count = motion_frames.shape[1]
            if (
                motion_count == 0
                or motion_count > frames.shape[1]
                or motion_frames.shape[0] != frames.shape[0]
                or motion_frames.shape[2:] != frames.shape[2:]
            ):
                raise ValueError(
                    f"motion_frames {tuple(motion_frames.shape)} do not fit frames {tuple(frames.shape)}"
                )
            frames = torch.cat([motion_frames.to(frames.dtype), frames[:, motion_count:]], dim=1)
            hard_mask = torch.cat(
                [torch.zeros_like(hard_mask[:, :motion_count]), hard_mask[:, motion_count:]], 1
            )
            # Latent t stands for frames up to 4t (causal VAE), so it is fully given when 4t < motion_count.
            known_latent_frames = 1 + (motion_count - 1) // self.frames_per_latent
        # (batch, frames, 3, height, width): the pixels the model must not see are zero.
        masked_source = frames * (1 - hard_mask[:, :, None])
        masked_latents = self.encode_video(masked_source)
        latent_mask = self.pack_mask(hard_mask)

        reference_latents = None
        if reference_frames is not None:
            if reference_frames.ndim != 5 or (
                reference_frames.shape[0] != frames.shape[0] or reference_frames.shape[2:] != frames.shape[2:]
            ):
                raise ValueError(
                    f"reference_frames {tuple(reference_frames.shape)} do not fit "
                    f"frames {tuple(frames.shape)}"
                )
            # Each reference frame is its own one-frame clip: the causal VAE encodes it like a first frame.
            batch_size, reference_count = reference_frames.shape[:2]
            single = self.encode_video(reference_frames.flatten(0, 1)[:, None])
            # (batch * references, channels, 1, h, w) -> (batch, channels, references, h, w)
            reference_latents = single.unflatten(0, (batch_size, reference_count)).squeeze(3).transpose(1, 2)

        audio_windows = self.encode_audio_windows(audio, masked_latents.shape[2], frame_rate, audio_offset)
        return DubbingCondition(
            masked_latents, latent_mask, audio_windows, reference_latents, known_latent_frames
        )

    def denoise(
        self,
        condition: DubbingCondition,
        sigmas: tuple[float, ...] = DEFAULT_SIGMAS,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Integrate the flow from noise at sigmas[0] to clean latents with len(sigmas) Euler steps."""
        masked_latents = condition.masked_latents
        dtype = self.transformer.dtype
        if latents is None:
            latents = randn_tensor(
                masked_latents.shape, generator=generator, device=masked_latents.device, dtype=torch.float32
            )
        noise = latents
        self.scheduler.set_timesteps(sigmas=list(sigmas), device=masked_latents.device)
        known = condition.known_latent_frames
        for step_index, timestep in enumerate(self.scheduler.timesteps):
            # (batch, 2 * channels + frames_per_latent, latent_frames, h, w)
            model_input = torch.cat([latents, masked_latents, condition.latent_mask.to(latents.dtype)], dim=1)
            velocity = self.transformer(
                model_input.to(dtype),
                timestep.expand(latents.shape[0]).to(latents.device),
                condition.audio_windows.to(dtype),
                None if condition.reference_latents is None else condition.reference_latents.to(dtype),
            ).sample
            latents = self.scheduler.step(velocity.float(), timestep, latents, return_dict=False)[0]
            if known:
                # Motion frames are given: keep them on the flow's path from their own clean latents.
                next_sigma = self.scheduler.sigmas[step_index + 1].to(latents.device)
                given = (1 - next_sigma) * masked_latents[:, :, :known] + next_sigma * noise[:, :, :known]
                latents = torch.cat([given, latents[:, :, known:]], dim=2)
        return latents

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> (batch, frames, 3, height, width) in [0, 1]."""
        video = self.vae.decode(self._denormalize(latents).to(self.vae.dtype)).sample
        return ((video.float() + 1) / 2).clamp(0, 1).permute(0, 2, 1, 3, 4)

    def decode_region(
        self, latents: torch.Tensor, frames: torch.Tensor, masks: torch.Tensor, margin: int
    ) -> torch.Tensor:
        """Decode only the latents around the mask (plus `margin` latent pixels), the source elsewhere.

        The VAE decoder is convolutional, so a crop with enough margin decodes the masked pixels almost as
        the whole frame would (6 latents: about 1/255 mean difference, measured) at the cost of the crop.
        Pixels outside the crop are the source's: the composite never uses them.
        """
        # (height,) and (width,) flags of latent rows/columns under any masked pixel, over batch and frames
        covered = torch.nn.functional.max_pool2d(
            (masks > 0).float().amax(dim=(0, 1))[None], self.spatial_scale
        )[0]
        rows = torch.nonzero(covered.amax(dim=1)).flatten()
        columns = torch.nonzero(covered.amax(dim=0)).flatten()
        generated = frames.float().clone()
        if rows.numel() == 0:
            return generated
        latent_height, latent_width = latents.shape[3:]
        top, bottom = max(0, int(rows[0]) - margin), min(latent_height, int(rows[-1]) + 1 + margin)
        left, right = max(0, int(columns[0]) - margin), min(latent_width, int(columns[-1]) + 1 + margin)
        scale = self.spatial_scale
        # (batch, frames, 3, crop_height * 8, crop_width * 8)
        crop = self.decode(latents[:, :, :, top:bottom, left:right])
        generated[:, :, :, top * scale : bottom * scale, left * scale : right * scale] = crop
        return generated

    @staticmethod
    def composite(frames: torch.Tensor, generated: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Feathered paste of the generated region: where the mask is 0 the source pixels are kept exactly."""
        weight = masks[:, :, None].to(generated.dtype)
        return torch.where(weight > 0, frames * (1 - weight) + generated * weight, frames)

    # -- entry points --

    def generate(
        self,
        frames: torch.Tensor,
        masks: torch.Tensor,
        audio: torch.Tensor,
        frame_rate: float = 25.0,
        audio_offset: int = 0,
        reference_frames: torch.Tensor | None = None,
        motion_frames: torch.Tensor | None = None,
        sigmas: tuple[float, ...] = DEFAULT_SIGMAS,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        decode_margin: int | None = DEFAULT_DECODE_MARGIN,
        composite_output: bool = True,
    ) -> DubbingPipelineOutput:
        """`__call__` with autograd left as the caller set it (for losses through the sampler and tests)."""
        condition = self.encode_condition(
            frames, masks, audio, frame_rate, audio_offset, reference_frames, motion_frames
        )
        latents = self.denoise(condition, sigmas, generator, latents)
        if decode_margin is None:
            generated = self.decode(latents)
        else:
            generated = self.decode_region(latents, frames, masks, decode_margin)
        if composite_output:
            generated = self.composite(frames.float(), generated, masks)
        return DubbingPipelineOutput(frames=generated, latents=latents)

    def __call__(
        self,
        frames: torch.Tensor,
        masks: torch.Tensor,
        audio: torch.Tensor,
        frame_rate: float = 25.0,
        audio_offset: int = 0,
        reference_frames: torch.Tensor | None = None,
        motion_frames: torch.Tensor | None = None,
        sigmas: tuple[float, ...] = DEFAULT_SIGMAS,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        decode_margin: int | None = DEFAULT_DECODE_MARGIN,
        composite_output: bool = True,
    ) -> DubbingPipelineOutput:
        """Dub a batch of clips.

        Args:
            frames: (batch, 1 + 4k, 3, height, width) RGB in [0, 1]; height and width multiples of 16.
            masks: (batch, frames, height, width) in [0, 1]: where the model may change pixels (feathered).
            audio: (batch, samples) mono at the feature extractor's rate (16 kHz); frame 0 plays at sample
                `audio_offset`, so audio before and after the clip gives the edge frames their context.
            frame_rate: video frames per second.
            reference_frames: optional (batch, references, 3, height, width) unmasked frames of the same face.
            motion_frames: optional (batch, m, 3, height, width): the previous segment's output for the first
                m frames of this clip.
            sigmas: the explicit noise levels of the Euler steps (a final 0 is implied).
            generator: seeds the initial noise.
            latents: optional initial noise instead of `generator`.
            decode_margin: decode only the latents around the mask, with this many latent pixels of margin
                (None: decode whole frames).
            composite_output: blend the decoded pixels over the source by the soft mask (`composite`). False
                returns the decoded pixels as they are (around the mask; the source beyond the decoded crop)
                for a caller that blends by the mask itself, so the feathered edge is applied once.
        """
        with torch.no_grad():
            return self.generate(
                frames,
                masks,
                audio,
                frame_rate,
                audio_offset,
                reference_frames,
                motion_frames,
                sigmas,
                generator,
                latents,
                decode_margin,
                composite_output,
            )
