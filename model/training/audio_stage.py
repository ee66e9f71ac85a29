"""Stage `audio`: the audio encoder learns the mouth from speech before the DiT ever listens to it.

No pretrained speech encoder can be downloaded here, and a DiT that must discover speech from scratch
through a denoising loss learns slowly. So the encoder is first trained to predict, from each frame's audio
window (cut exactly as the pipeline cuts it), the articulation the synthetic corpus drove that frame's
mouth with: jaw, lips, rounding, teeth. The DiT then conditions on features that already mean "mouth".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn

from model.pipeline_dubbing import DubbingPipeline
from model.training.config import TrainConfig
from model.training.corpus import CorpusReader, audio_context_samples
from model.training.loop import Stage, optimizer_step, run_steps, step_generator, warmup_cosine

FRAME_RATE = 25.0


class ArticulationHead(nn.Module):
    """Reads one frame's audio window and predicts that frame's articulation (and mouth opening)."""

    def __init__(self, window_tokens: int, audio_dim: int, outputs: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(window_tokens * audio_dim, audio_dim)
        self.activation = nn.GELU()
        self.proj_out = nn.Linear(audio_dim, outputs)

    def forward(self, audio_windows: torch.Tensor) -> torch.Tensor:
        # (batch, frames, window_tokens, audio_dim) -> (batch, frames, outputs)
        hidden_states = self.proj_in(audio_windows.flatten(2))
        return self.proj_out(self.activation(hidden_states))


def articulation_targets(reader: CorpusReader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(windows, frames, parameters + 1) targets, standardised, with their mean and std."""
    targets = np.concatenate([reader.arrays["mouth"], reader.arrays["opening"][..., None]], axis=-1)
    mean = targets.reshape(-1, targets.shape[-1]).mean(axis=0)
    std = targets.reshape(-1, targets.shape[-1]).std(axis=0) + 1e-4
    return ((targets - mean) / std).astype(np.float32), mean, std


def augment(audio: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Random gain and background noise per clip, so level and room noise carry no meaning."""
    batch_size = audio.shape[0]
    apply = torch.rand(batch_size, 1, generator=generator) < probability
    gain = torch.exp(torch.empty(batch_size, 1).uniform_(-1.2, 0.7, generator=generator))
    level = audio.pow(2).mean(dim=1, keepdim=True).sqrt().clamp(min=1e-4)
    snr_db = torch.empty(batch_size, 1).uniform_(10, 40, generator=generator)
    noise = torch.randn(audio.shape, generator=generator) * level * 10 ** (-snr_db / 20)
    return torch.where(apply, (audio + noise) * gain, audio)


def train_audio_encoder(
    pipeline: DubbingPipeline,
    reader: CorpusReader,
    config: TrainConfig,
    run_dir: Path,
    accelerator: Accelerator,
    stop_after: int | None = None,
) -> int:
    settings = config.audio
    targets, _, _ = articulation_targets(reader)
    audio_clips = reader.arrays["audio"]
    window_count, frame_count = targets.shape[:2]
    encoder = pipeline.audio_encoder
    head = ArticulationHead(
        pipeline.transformer.config.audio_window_tokens, encoder.config.d_model, targets.shape[-1]
    )
    encoder.train()
    parameters = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(50, settings.steps))
    encoder, head, optimizer = accelerator.prepare(encoder, head, optimizer)
    pipeline.audio_encoder = encoder
    stage = Stage("audio", run_dir, {"audio_encoder": encoder, "head": head}, optimizer, schedule)
    context = audio_context_samples()

    def step(index: int) -> dict[str, float]:
        generator = step_generator(config.seed, "audio", index)
        picks = torch.randint(window_count, (settings.batch_size,), generator=generator)
        audio = augment(
            torch.from_numpy(audio_clips[picks.numpy()]), settings.noise_probability, generator
        ).to(accelerator.device)
        target = torch.from_numpy(targets[picks.numpy()]).to(accelerator.device)
        with accelerator.autocast():
            # (batch, frames, window_tokens, audio_dim): the windows the DiT will hear
            windows = pipeline.encode_audio_windows(audio, frame_count, FRAME_RATE, audio_offset=context)
            prediction = head(windows)
        loss = ((prediction.float() - target) ** 2).mean()
        optimizer_step(accelerator, loss, parameters, optimizer, schedule)
        with torch.no_grad():
            # Correlation of the predicted and true mouth opening (the last target) over the batch.
            predicted, true = prediction[..., -1].flatten().float(), target[..., -1].flatten()
            correlation = torch.corrcoef(torch.stack([predicted, true]))[0, 1]
        return {"loss": loss.item(), "opening_r": correlation.item()}

    return run_steps(
        stage,
        accelerator,
        settings.steps,
        step,
        checkpoint_every=config.checkpoint_every,
        log_every=config.log_every,
        stop_after=stop_after,
    )
