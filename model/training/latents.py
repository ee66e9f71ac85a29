"""Stage `latents`: every corpus window encoded once through the pipeline's own conditioning path.

The DiT then trains on these tensors alone: its epochs never decode video or run the VAE. The condition is
built by `DubbingPipeline.encode_condition`, the very method inference uses, so training sees what the
renderer will give it (masked source, packed mask, reference frames, audio windows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from model.pipeline_dubbing import DubbingPipeline
from model.training.corpus import CorpusReader, audio_context_samples

FRAME_RATE = 25.0
ENCODE_BATCH = 4
LATENT_FIELDS = (
    "target_latents",
    "masked_latents",
    "latent_mask",
    "reference_latents",
    "audio_windows",
    "opening",
)


def _frames(array: np.ndarray) -> torch.Tensor:
    # (batch, frames, size, size, 3) uint8 -> (batch, frames, 3, size, size) in [0, 1]
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 1, 4, 2, 3).float() / 255


@torch.no_grad()
def encode_corpus(pipeline: DubbingPipeline, reader: CorpusReader, path: Path, progress: bool = True) -> None:
    """Write the latents of every window of `reader` to one safetensors file (float16)."""
    arrays = reader.arrays
    device = pipeline.transformer.device
    pieces: dict[str, list[torch.Tensor]] = {name: [] for name in LATENT_FIELDS}
    context = audio_context_samples()
    for start in tqdm(
        range(0, len(reader), ENCODE_BATCH), desc="latents", disable=not progress, mininterval=10
    ):
        chunk = slice(start, start + ENCODE_BATCH)
        condition = pipeline.encode_condition(
            _frames(arrays["source"][chunk]).to(device),
            torch.from_numpy(arrays["masks"][chunk].astype(np.float32)).to(device),
            torch.from_numpy(arrays["audio"][chunk]).to(device),
            FRAME_RATE,
            audio_offset=context,
            reference_frames=_frames(arrays["references"][chunk]).to(device),
        )
        target = pipeline.encode_video(_frames(arrays["target"][chunk]).to(device))
        assert condition.reference_latents is not None
        opening = latent_frame_opening(
            torch.from_numpy(arrays["opening"][chunk]), pipeline.frames_per_latent, target.shape[2]
        )
        for name, tensor in (
            ("target_latents", target),
            ("masked_latents", condition.masked_latents),
            ("latent_mask", condition.latent_mask),
            ("reference_latents", condition.reference_latents),
            ("audio_windows", condition.audio_windows),
            ("opening", opening),
        ):
            pieces[name].append(tensor.to(torch.float16).cpu())
    partial = path.with_name(path.name + ".partial")
    save_file({name: torch.cat(tensors).contiguous() for name, tensors in pieces.items()}, str(partial))
    partial.replace(path)


def latent_frame_opening(opening: torch.Tensor, frames_per_latent: int, latent_frames: int) -> torch.Tensor:
    """(batch, frames) mouth opening -> (batch, latent_frames): each latent frame's mean over its frames.

    The causal VAE's latent 0 is frame 0 alone and latent t > 0 is frames 4t-3 .. 4t (for 4 frames a latent).
    """
    columns = [opening[:, :1]]
    for latent in range(1, latent_frames):
        first = 1 + (latent - 1) * frames_per_latent
        columns.append(opening[:, first : first + frames_per_latent].mean(dim=1, keepdim=True))
    return torch.cat(columns, dim=1)


def load_latents(path: Path) -> dict[str, torch.Tensor]:
    return {name: tensor.float() for name, tensor in load_file(str(path)).items()}
