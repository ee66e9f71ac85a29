"""Stage `vae`: the 3D VAE learns to reconstruct short clips of the corpus, the lower face weighted most."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from diffusers import AutoencoderKLWan

from model.training.config import DecoderConfig, TrainConfig, VaeConfig
from model.training.corpus import CorpusReader
from model.training.loop import Stage, optimizer_step, run_steps, step_generator, warmup_cosine

LATENT_STATISTICS_WINDOWS = 48
LATENT_NOISE = 0.1


def clip_batch(
    reader: CorpusReader, batch_size: int, frames: int, crop: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random short clips of targets and sources, (batch, 3, frames, crop, crop) in [-1, 1], and masks."""
    targets, sources, masks = reader.arrays["target"], reader.arrays["source"], reader.arrays["masks"]
    window_count, window_frames, size = targets.shape[:3]
    clips, clip_masks = [], []
    for _ in range(batch_size):
        index = int(torch.randint(window_count, (1,), generator=generator))
        start = int(torch.randint(window_frames - frames + 1, (1,), generator=generator))
        top, left = (int(value) for value in torch.randint(size - crop + 1, (2,), generator=generator))
        pick = targets if bool(torch.rand(1, generator=generator) < 0.5) else sources
        clip = pick[index, start : start + frames, top : top + crop, left : left + crop]
        if bool(torch.rand(1, generator=generator) < 0.5):
            clip = clip[:, :, ::-1]
        clips.append(np.ascontiguousarray(clip))
        clip_masks.append(masks[index, start : start + frames, top : top + crop, left : left + crop])
    # (batch, frames, crop, crop, 3) -> (batch, 3, frames, crop, crop)
    video = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
    weights = torch.from_numpy(np.stack(clip_masks).astype(np.float32))[:, None]
    return video, weights


def reconstruction_loss(
    vae: AutoencoderKLWan,
    video: torch.Tensor,
    mask: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    posterior = vae.encode(video).latent_dist
    # Decoded from the posterior mean plus a little noise (10% of the latents' spread), not a full sample:
    # from scratch the posterior's std starts near 1 against a mean near 0.1, so sampled latents are mostly
    # noise and the decoder learns nothing for hundreds of steps. The pipeline decodes means (`mode()`), and
    # the small noise keeps the decoder tolerant of the DiT's imperfect latents.
    noise = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean.device)
    latents = posterior.mean + LATENT_NOISE * posterior.mean.detach().std() * noise
    reconstruction = vae.decode(latents).sample
    weight = 1 + (config.vae.mask_weight - 1) * mask
    l1 = ((reconstruction - video).abs() * weight).mean()
    gradient = sum(
        (
            (torch.diff(reconstruction, dim=axis) - torch.diff(video, dim=axis)).abs().mean()
            for axis in (3, 4)
        ),
        torch.zeros((), device=video.device),
    )
    kl = 0.5 * (posterior.mean**2 + posterior.var - 1 - posterior.logvar).mean()
    loss = l1 + config.vae.gradient_weight * gradient + config.vae.kl_weight * kl
    with torch.no_grad():
        mse = ((reconstruction.clamp(-1, 1) - video) ** 2).mean()
        psnr = 10 * torch.log10(4 / mse.clamp(min=1e-10))
    return loss, {"loss": loss.item(), "l1": l1.item(), "kl": kl.item(), "psnr_db": psnr.item()}


def train_reconstruction(
    vae: AutoencoderKLWan,
    parameters: list[torch.nn.Parameter],
    settings: VaeConfig | DecoderConfig,
    stage_name: str,
    reader: CorpusReader,
    config: TrainConfig,
    run_dir: Path,
    accelerator: Accelerator,
    stop_after: int | None = None,
) -> int:
    """Train `parameters` of the VAE to rebuild corpus clips (stage `vae`: all; `decoder`: the decoder)."""
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(50, settings.steps))
    vae, optimizer = accelerator.prepare(vae, optimizer)
    stage = Stage(stage_name, run_dir, {"vae": vae}, optimizer, schedule)

    def step(index: int) -> dict[str, float]:
        generator = step_generator(config.seed, stage_name, index)
        video, mask = clip_batch(reader, settings.batch_size, settings.frames, settings.crop, generator)
        with accelerator.autocast():
            loss, scalars = reconstruction_loss(
                vae, video.to(accelerator.device), mask.to(accelerator.device), config, generator
            )
        optimizer_step(accelerator, loss, parameters, optimizer, schedule)
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


def train_vae(
    vae: AutoencoderKLWan,
    reader: CorpusReader,
    config: TrainConfig,
    run_dir: Path,
    accelerator: Accelerator,
    stop_after: int | None = None,
) -> int:
    vae.train()
    parameters = list(vae.parameters())
    return train_reconstruction(
        vae, parameters, config.vae, "vae", reader, config, run_dir, accelerator, stop_after
    )


@torch.no_grad()
def measure_latent_statistics(vae: AutoencoderKLWan, reader: CorpusReader) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the latents of the corpus: the pipeline normalises latents with them."""
    vae.eval()
    targets = reader.arrays["target"]
    picks = np.linspace(0, len(targets) - 1, min(len(targets), LATENT_STATISTICS_WINDOWS)).astype(int)
    device = next(vae.parameters()).device
    latents = []
    for index in picks:
        # (1, 3, frames, size, size) in [-1, 1]
        video = torch.from_numpy(targets[index]).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        latents.append(vae.encode(video.to(device)).latent_dist.mode().float().cpu())
    # (channels, everything else)
    stacked = torch.cat([latent.transpose(0, 1).flatten(1) for latent in latents], dim=1)
    return stacked.mean(dim=1).tolist(), stacked.std(dim=1).clamp(min=1e-3).tolist()
