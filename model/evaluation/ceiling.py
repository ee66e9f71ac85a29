"""The ceiling a checkpoint's VAE allows: the truth itself, encoded and decoded, scored like a dub.

`redub eval --ceiling --checkpoint CKPT` dubs each held-out pair's TRUTH (not its source) with the `dit`
renderer's whole path (working scale, view, masks, compositing) except that the transformer's output is
replaced by the truth's own latents. Whatever sync_r and PSNR that reaches is the most a perfect DiT could
reach through this VAE at the renderer's working scale: a condition scoring low here needs a better VAE (or a
larger working face), not a better DiT.
"""

from __future__ import annotations

from typing import Any

import torch

from worker.engine.renderers.dit import DitRenderer

CEILING_RENDERER = "vae-ceiling"
# Latent pixels decoded around the mask: the pipeline's own default.
DECODE_MARGIN = 6


class _RoundTrip:
    """Stands in for the pipeline's call: the frames' own latents, decoded around the mask."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)

    def __call__(self, frames: torch.Tensor, masks: torch.Tensor, audio: torch.Tensor, **_: Any) -> Any:
        from model.pipeline_dubbing import DubbingPipelineOutput

        with torch.no_grad():
            latents = self._pipeline.encode_video(frames)
            decoded = self._pipeline.decode_region(latents, frames, masks, DECODE_MARGIN)
        return DubbingPipelineOutput(frames=decoded, latents=latents)


class VaeRoundTripRenderer(DitRenderer):
    name = CEILING_RENDERER

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.pipeline = _RoundTrip(self.pipeline)  # type: ignore[assignment]


def register() -> None:
    from worker.engine.renderers import register_renderer

    register_renderer(CEILING_RENDERER, VaeRoundTripRenderer)
