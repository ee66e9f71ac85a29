"""Renderers: `base` (the interface), `passthrough` and `dit` (implementations), `registry` (by name).

The `dit` module is not imported here: it loads torch and the model, which passthrough runs never need.
"""

from worker.engine.renderers.base import AUDIO_SAMPLE_RATE, Renderer, SegmentInput
from worker.engine.renderers.passthrough import PassthroughRenderer
from worker.engine.renderers.registry import (
    create_renderer,
    register_renderer,
    renderer_changes_pixels,
    renderer_names,
)

__all__ = [
    "AUDIO_SAMPLE_RATE",
    "PassthroughRenderer",
    "Renderer",
    "SegmentInput",
    "create_renderer",
    "register_renderer",
    "renderer_changes_pixels",
    "renderer_names",
]
