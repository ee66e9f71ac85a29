"""Stage `probe`: a small frozen network that reads the mouth opening off latents, for the DiT's sync loss.

Trained with plain denoising, the DiT learned to rebuild the face and ignored the audio: with the audio
silenced, its output changed by 0.7 grey levels (of 255) in the mask, and the first shipped checkpoint
measured sync_r 0.0. The mouth is a few latent pixels of the frame, so the velocity loss barely notices it.
The probe is the latent-space answer to LatentSync's SyncNet supervision: trained on clean target latents to
predict the opening the synthetic corpus drew, it then scores the DiT's one-step clean estimate, so a
prediction with the wrong mouth costs loss however small the mouth is. It runs in latent space, so the DiT
stage never decodes a frame.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from model.training.config import TrainConfig
from model.training.loop import step_generator

log = logging.getLogger(__name__)

HELD_OUT_SHARE = 0.1  # windows kept out of the probe's training to measure it


class LatentMouthProbe(nn.Module):
    """Per latent frame, the mouth opening (standardised) from the latents where the mask is.

    Input latents (batch, channels, frames, h, w) and the packed mask (batch, k, frames, h, w); output
    (batch, frames). The mask both joins the input and weighs the pooling, so the probe reads the lower face
    wherever it is in the frame.
    """

    def __init__(self, latent_channels: int, mask_channels: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(latent_channels + 1, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1),
        )
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(width, 1))
        self.mask_channels = mask_channels

    def forward(self, latents: torch.Tensor, latent_mask: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = latents.shape
        # (batch * frames, 1, h, w): a latent pixel counts as lower face if any of its frames is masked
        mask = latent_mask.amax(dim=1).reshape(batch * frames, 1, height, width).to(latents.dtype)
        flat = latents.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, height, width)
        features = self.features(torch.cat([flat, mask], dim=1))
        # Dilated by one latent pixel: the lips sit at the mask's edge in some faces.
        weight = nn.functional.max_pool2d(mask, 3, stride=1, padding=1)
        pooled = (features * weight).sum(dim=(2, 3)) / weight.sum(dim=(2, 3)).clamp(min=1.0)
        return self.head(pooled).view(batch, frames)


def opening_statistics(opening: torch.Tensor) -> tuple[float, float]:
    return float(opening.mean()), float(opening.std()) + 1e-4


def train_probe(latents: dict[str, torch.Tensor], config: TrainConfig, path: Path) -> dict[str, float]:
    """Train the probe on the clean target latents and save it to `path`; returns its held-out figures.

    Small and fast (seconds per hundred steps on one core), so it is not checkpointed: a stopped run trains
    it again from the start, with the same seeded draws.
    """
    settings = config.dit
    target, mask, opening = latents["target_latents"], latents["latent_mask"], latents["opening"]
    mean, std = opening_statistics(opening)
    standard = (opening - mean) / std
    count = target.shape[0]
    held_out = max(1, round(count * HELD_OUT_SHARE))
    train_count = count - held_out
    torch.manual_seed(config.seed)
    probe = LatentMouthProbe(target.shape[1], mask.shape[1])
    optimizer = torch.optim.AdamW(probe.parameters(), lr=2e-3, weight_decay=0.01)
    for index in range(settings.probe_steps):
        generator = step_generator(config.seed, "probe", index)
        picks = torch.randint(train_count, (32,), generator=generator)
        loss = ((probe(target[picks], mask[picks]) - standard[picks]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if index % 100 == 0:
            log.info("probe step", extra={"step": index, "loss": round(loss.item(), 4)})
    probe.eval().requires_grad_(False)
    with torch.no_grad():
        predicted = probe(target[train_count:], mask[train_count:]).flatten()
    truth = standard[train_count:].flatten()
    held_out_r = float(torch.corrcoef(torch.stack([predicted, truth]))[0, 1])
    figures = {"held_out_r": held_out_r, "opening_mean": mean, "opening_std": std}
    tensors = {name: value.contiguous() for name, value in probe.state_dict().items()}
    save_file(tensors, str(path), metadata={name: repr(value) for name, value in figures.items()})
    log.info("probe trained", extra=figures)
    return figures


def load_probe(path: Path, latent_channels: int, mask_channels: int) -> tuple[LatentMouthProbe, float, float]:
    """The frozen probe and the opening mean and std it predicts in units of."""
    from safetensors import safe_open

    probe = LatentMouthProbe(latent_channels, mask_channels)
    probe.load_state_dict(load_file(str(path)))
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    return probe.eval().requires_grad_(False), float(metadata["opening_mean"]), float(metadata["opening_std"])
