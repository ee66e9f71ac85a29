"""DubbingPipeline: source frames + lower-face masks + new audio -> frames with the masked region re-rendered.

Tensors in, tensors out. The stages are separate methods so training code and benchmarks can call them:
`encode_condition` (3D VAE on the masked source, the packed mask, reference and motion frames),
`encode_audio_windows` (Whisper in seamless windows, one window per latent frame), `denoise` (Euler steps of
the rectified flow at an explicit sigma schedule), `decode_region` (the VAE decodes only the latents around
the mask) or `decode` (whole frames), and `composite` (only the masked region changes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
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
from model.cpu_convolution import use_onednn_convolutions
from model.transformer_dubbing import DubbingTransformer3DModel

DEFAULT_DECODE_MARGIN = 6
VAE_CHUNK_FRAMES = 4  # latent pixels around the mask that the region decode includes

# fn(pipeline, step_index, timestep, tensors) -> tensors (diffusers' callback_on_step_end)
StepCallback = Callable[[Any, int, torch.Tensor, dict[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass
class DubbingPipelineOutput(BaseOutput):
    # (batch, frames, 3, height, width) in [0, 1]; source pixels wherever mask == 0 (unless composite_output
    # was False: then the decoded pixels, blended by nobody yet). A numpy array (batch, frames, height, width,
    # 3) for output_type "np"; the latents for "latent".
    frames: torch.Tensor | np.ndarray
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

    # The order __call__ first uses them: encode_condition runs the VAE (masked source, references) before the
    # audio encoder. The VAE decodes again at the end; diffusers hooks each component once, and
    # maybe_free_model_hooks offloads everything when the call returns.
    model_cpu_offload_seq = "vae->audio_encoder->transformer"
    _callback_tensor_inputs: ClassVar[list[str]] = ["latents", "velocity"]

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
        # The VAE's 3D convolutions would take PyTorch's slow CPU fallback (model/cpu_convolution.py).
        use_onednn_convolutions(vae)
        use_onednn_convolutions(transformer)
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
        if scheduler.config.get("stochastic_sampling", False):
            raise ValueError("the scheduler must take plain Euler steps (stochastic_sampling=False)")
        # Explicit sigmas only mean what they say if the scheduler keeps them: a shift other than 1 (or
        # dynamic shifting, a terminal stretch, Karras/exponential/beta conversion) would move them, e.g.
        # shift 3 turns 1, 0.667, 0.333 into 1, 0.857, 0.6.
        self.set_sigmas(DEFAULT_SIGMAS)
        self._guidance_scale = 1.0
        self._num_timesteps = 0
        self.frames_per_latent: int = vae.config.scale_factor_temporal
        # AutoencoderKLWan encodes the first frame alone, then chunks of 4 frames, whatever its temporal
        # compression (later frames of an incomplete chunk are silently dropped): clips are 1 + 4k frames.
        self.frame_multiple: int = max(self.frames_per_latent, VAE_CHUNK_FRAMES)
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
        if (num_frames - 1) % self.frame_multiple != 0:
            raise ValueError(f"the frame count must be 1 + {self.frame_multiple}k, got {num_frames}")
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
        sigmas: Sequence[float] = DEFAULT_SIGMAS,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
        callback_on_step_end: StepCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> torch.Tensor:
        """Integrate the flow from noise at sigmas[0] to clean latents with len(sigmas) Euler steps.

        With `guidance_scale` s > 1 each step also predicts the velocity without audio (all-zero windows, what
        training shows the model when it drops the audio) and follows v_uncond + s * (v_cond - v_uncond); both
        branches run as one forward of twice the batch.
        """
        self._check_step_callback(callback_on_step_end_tensor_inputs)
        if guidance_scale < 1.0:
            raise ValueError(f"guidance_scale must be at least 1 (1: no guidance), got {guidance_scale}")
        masked_latents = condition.masked_latents
        dtype = self.transformer.dtype
        if latents is None:
            latents = randn_tensor(
                masked_latents.shape, generator=generator, device=masked_latents.device, dtype=torch.float32
            )
        noise = latents
        self.set_sigmas(sigmas, masked_latents.device)
        timesteps = self.scheduler.timesteps
        self._guidance_scale = guidance_scale
        self._num_timesteps = len(timesteps)
        guided = guidance_scale > 1.0
        audio_windows = condition.audio_windows.to(dtype)
        reference_latents = (
            None if condition.reference_latents is None else condition.reference_latents.to(dtype)
        )
        if guided:
            # (2 * batch, ...): the unconditional half first, as diffusers pipelines order it
            audio_windows = torch.cat([torch.zeros_like(audio_windows), audio_windows])
            if reference_latents is not None:
                reference_latents = torch.cat([reference_latents, reference_latents])
        known = condition.known_latent_frames
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for step_index, timestep in enumerate(timesteps):
                # (batch, 2 * channels + frames_per_latent, latent_frames, h, w)
                model_input = torch.cat(
                    [latents, masked_latents, condition.latent_mask.to(latents.dtype)], dim=1
                ).to(dtype)
                if guided:
                    model_input = torch.cat([model_input, model_input])
                velocity = self.transformer(
                    model_input,
                    timestep.expand(model_input.shape[0]).to(latents.device),
                    audio_windows,
                    reference_latents,
                ).sample.float()
                if guided:
                    unconditional, conditional = velocity.chunk(2)
                    velocity = unconditional + guidance_scale * (conditional - unconditional)
                latents = self.scheduler.step(velocity, timestep, latents, return_dict=False)[0]
                if known:
                    # Motion frames are given: keep them on the flow's path from their own clean latents.
                    next_sigma = self.scheduler.sigmas[step_index + 1].to(latents.device)
                    given = (1 - next_sigma) * masked_latents[:, :, :known] + next_sigma * noise[:, :, :known]
                    latents = torch.cat([given, latents[:, :, known:]], dim=2)
                if callback_on_step_end is not None:
                    step_tensors = {"latents": latents, "velocity": velocity}
                    callback_kwargs = {
                        name: step_tensors[name] for name in callback_on_step_end_tensor_inputs
                    }
                    callback_outputs = callback_on_step_end(self, step_index, timestep, callback_kwargs)
                    latents = callback_outputs.pop("latents", latents)
                progress_bar.update()
        return latents

    def set_sigmas(self, sigmas: Sequence[float], device: torch.device | str | None = None) -> None:
        """Set the scheduler to exactly these sigmas; refuse a scheduler that would move them."""
        if len(sigmas) == 0:
            raise ValueError("sigmas must not be empty")
        self.scheduler.set_timesteps(sigmas=[float(sigma) for sigma in sigmas], device=device)
        scheduled = self.scheduler.sigmas[:-1].cpu()
        if scheduled.shape != (len(sigmas),) or not torch.allclose(
            scheduled, torch.tensor(sigmas, dtype=scheduled.dtype), atol=1e-6
        ):
            raise ValueError(
                f"the scheduler moved the sigmas {list(sigmas)} to {scheduled.tolist()}; "
                "use FlowMatchEulerDiscreteScheduler(shift=1.0) without dynamic shifting or sigma conversions"
            )

    @staticmethod
    def sigmas_for(num_inference_steps: int | None, sigmas: Sequence[float] | None) -> tuple[float, ...]:
        """The explicit sigmas of a call: `sigmas`, or `num_inference_steps` evenly spaced, or the default.

        n steps are at 1, (n-1)/n, ..., 1/n (3 gives 1, 2/3, 1/3, the default within 0.0004): the scheduler's
        own spacing for n ends at sigma 1/1000, where the last step does almost nothing.
        """
        if num_inference_steps is not None and sigmas is not None:
            raise ValueError("pass num_inference_steps or sigmas, not both")
        if sigmas is not None:
            return tuple(float(sigma) for sigma in sigmas)
        if num_inference_steps is None:
            return DEFAULT_SIGMAS
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        return tuple(1 - step / num_inference_steps for step in range(num_inference_steps))

    def _check_step_callback(self, tensor_inputs: Sequence[str]) -> None:
        unknown = [name for name in tensor_inputs if name not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs {unknown} are not among {self._callback_tensor_inputs}"
            )

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
        sigmas: Sequence[float] = DEFAULT_SIGMAS,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        decode_margin: int | None = DEFAULT_DECODE_MARGIN,
        composite_output: bool = True,
        guidance_scale: float = 1.0,
    ) -> DubbingPipelineOutput:
        """The whole pipeline with autograd left as the caller set it (for losses through the sampler)."""
        condition = self.encode_condition(
            frames, masks, audio, frame_rate, audio_offset, reference_frames, motion_frames
        )
        latents = self.denoise(condition, sigmas, generator, latents, guidance_scale)
        return DubbingPipelineOutput(
            frames=self._decode_output(latents, frames, masks, decode_margin, composite_output),
            latents=latents,
        )

    def _decode_output(
        self,
        latents: torch.Tensor,
        frames: torch.Tensor,
        masks: torch.Tensor,
        decode_margin: int | None,
        composite_output: bool,
    ) -> torch.Tensor:
        if decode_margin is None:
            generated = self.decode(latents)
        else:
            generated = self.decode_region(latents, frames, masks, decode_margin)
        if composite_output:
            generated = self.composite(frames.float(), generated, masks)
        return generated

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @torch.no_grad()
    def __call__(
        self,
        frames: torch.Tensor,
        masks: torch.Tensor,
        audio: torch.Tensor,
        frame_rate: float = 25.0,
        audio_offset: int = 0,
        reference_frames: torch.Tensor | None = None,
        motion_frames: torch.Tensor | None = None,
        num_inference_steps: int | None = None,
        sigmas: Sequence[float] | None = None,
        guidance_scale: float = 1.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        decode_margin: int | None = DEFAULT_DECODE_MARGIN,
        composite_output: bool = True,
        output_type: str = "pt",
        return_dict: bool = True,
        callback_on_step_end: StepCallback | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> DubbingPipelineOutput | tuple[torch.Tensor | np.ndarray, torch.Tensor]:
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
            num_inference_steps: n Euler steps at sigmas 1, (n-1)/n, ..., 1/n; or give `sigmas` instead.
            sigmas: the explicit noise levels of the Euler steps (a final 0 is implied); default
                1, 0.667, 0.333.
            guidance_scale: audio guidance; 1 (default) is none, s > 1 pushes the velocity away from the
                no-audio prediction: v_uncond + s * (v_cond - v_uncond), one forward of twice the batch.
            generator: seeds the initial noise.
            latents: optional initial noise instead of `generator`.
            decode_margin: decode only the latents around the mask, with this many latent pixels of margin
                (None: decode whole frames).
            composite_output: blend the decoded pixels over the source by the soft mask (`composite`). False
                returns the decoded pixels as they are (around the mask; the source beyond the decoded crop)
                for a caller that blends by the mask itself, so the feathered edge is applied once.
            output_type: "pt" (tensor (batch, frames, 3, height, width)), "np" (float32 array (batch, frames,
                height, width, 3)), or "latent" (the latents, nothing decoded).
            return_dict: False returns the tuple (frames, latents).
            callback_on_step_end: called after every step as fn(pipeline, step_index, timestep, kwargs) with
                the tensors named in `callback_on_step_end_tensor_inputs`; a returned "latents" replaces them.
            callback_on_step_end_tensor_inputs: among `_callback_tensor_inputs` ("latents", "velocity").
        """
        if output_type not in ("pt", "np", "latent"):
            raise ValueError(f'output_type must be "pt", "np" or "latent", got {output_type!r}')
        if isinstance(callback_on_step_end, PipelineCallback | MultiPipelineCallbacks):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        self._check_step_callback(callback_on_step_end_tensor_inputs)
        if guidance_scale < 1.0:
            raise ValueError(f"guidance_scale must be at least 1 (1: no guidance), got {guidance_scale}")
        step_sigmas = self.sigmas_for(num_inference_steps, sigmas)
        condition = self.encode_condition(
            frames, masks, audio, frame_rate, audio_offset, reference_frames, motion_frames
        )
        latents = self.denoise(
            condition,
            step_sigmas,
            generator,
            latents,
            guidance_scale,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
        )
        output: torch.Tensor | np.ndarray
        if output_type == "latent":
            output = latents
        else:
            output = self._decode_output(latents, frames, masks, decode_margin, composite_output)
            if output_type == "np":
                output = output.permute(0, 1, 3, 4, 2).cpu().numpy()
        self.maybe_free_model_hooks()
        if not return_dict:
            return output, latents
        return DubbingPipelineOutput(frames=output, latents=latents)
