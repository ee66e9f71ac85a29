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
from model.training.loop import Stage, run_steps, step_generator, warmup_cosine
from model.training.vae_stage import clip_batch, reconstruction_loss


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
    settings = config.decoder
    vae.requires_grad_(False)
    parameters = decoder_parameters(vae)
    for parameter in parameters:
        parameter.requires_grad_(True)
    vae.decoder.train()
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(50, settings.steps))
    vae, optimizer = accelerator.prepare(vae, optimizer)
    stage = Stage("decoder", run_dir, {"vae": vae}, optimizer, schedule)

    def step(index: int) -> dict[str, float]:
        generator = step_generator(config.seed, "decoder", index)
        video, mask = clip_batch(reader, settings.batch_size, settings.frames, settings.crop, generator)
        with accelerator.autocast():
            loss, scalars = reconstruction_loss(
                vae, video.to(accelerator.device), mask.to(accelerator.device), config, generator
            )
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        return scalars

    return run_steps(
        stage,
        accelerator,
        settings.steps,
        step,
        checkpoint_every=config.checkpoint_every,
        log_every=config.log_every,
        stop_after=stop_after,
    )
