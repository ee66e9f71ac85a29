"""Renderers by name: what `DubOptions.renderer` chooses from. It sits above the implementations, which
never import it."""

from __future__ import annotations

from collections.abc import Callable

from worker.engine.errors import INVALID_OPTION, EngineError
from worker.engine.renderers.base import Renderer
from worker.engine.renderers.passthrough import PassthroughRenderer


def _dit_renderer() -> Renderer:
    # Imported on demand: the model pulls in torch and diffusers, which passthrough runs never need.
    from worker.engine.renderers.dit import DitRenderer

    return DitRenderer()


_FACTORIES: dict[str, Callable[[], Renderer]] = {"passthrough": PassthroughRenderer, "dit": _dit_renderer}


def register_renderer(name: str, factory: Callable[[], Renderer]) -> None:
    _FACTORIES[name] = factory


def renderer_names() -> list[str]:
    return sorted(_FACTORIES)


def create_renderer(name: str) -> Renderer:
    try:
        factory = _FACTORIES[name]
    except KeyError:
        known = ", ".join(renderer_names())
        raise EngineError(INVALID_OPTION, f"unknown renderer {name!r}; choose one of: {known}") from None
    return factory()
