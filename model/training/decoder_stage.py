"""Stage `decoder`: the VAE decoder trains on while the DiT trains, with the encoder frozen.

The DiT learns in the encoder's latent space, so once the latents are cached the encoder must not change;
the decoder can. On a CPU the VAE stage is cut short to start the DiT, and this stage (in a second process
beside the DiT, or after it) gives the decoder the rest of the time: sharper faces from the same latents.
"""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers import AutoencoderKLWan

from model.training.config import TrainConfig
from model.training.corpus import CorpusReader
from model.training.vae_stage import train_reconstruction


def decoder_parameters(vae: AutoencoderKLWan) -> list[torch.nn.Parameter]:
    return [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]


def train_decoder(
    vae: AutoencoderKLWan,
    reader: CorpusReader,
    config: TrainConfig,
    run_dir: Path,
    accelerator: Accelerator,
    stop_after: int | None = None,
) -> int:
    vae.requires_grad_(False)
    parameters = decoder_parameters(vae)
    for parameter in parameters:
        parameter.requires_grad_(True)
    vae.decoder.train()
    return train_reconstruction(
        vae, parameters, config.decoder, "decoder", reader, config, run_dir, accelerator, stop_after
    )
