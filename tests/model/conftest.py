"""Shared tiny pipeline: random weights, built once per test session (seconds on a CPU)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch

from model.checkpoints import build_pipeline
from model.pipeline_dubbing import DubbingPipeline


@dataclass
class Clip:
    frames: torch.Tensor  # (1, 9, 3, 32, 48) in [0, 1]
    masks: torch.Tensor  # (1, 9, 32, 48): a hard box on the lower middle
    audio: torch.Tensor  # (1, samples) at 16 kHz


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    # Test machines share 2 cores between several jobs: a second intra-op thread only spins and waits,
    # which made these tiny models 2-3x slower. Restored afterwards for the rest of the session.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def pipeline() -> DubbingPipeline:
    pipeline = build_pipeline("tiny", seed=0).to(torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture
def clip() -> Clip:
    generator = torch.Generator().manual_seed(7)
    frames = torch.rand(1, 9, 3, 32, 48, generator=generator)
    masks = torch.zeros(1, 9, 32, 48)
    masks[:, :, 16:32, 16:32] = 1.0
    audio = torch.randn(1, 16_000, generator=generator) * 0.1
    return Clip(frames, masks, audio)
