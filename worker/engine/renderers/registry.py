"""Renderers by name: what `DubOptions.renderer` chooses from. It sits above the implementations, which
never import it."""

from __future__ import annotations

from collections.abc import Callable

from worker.engine.errors import INVALID_OPTION, EngineError
from worker.engine.renderers.base import Renderer
from worker.engine.renderers.passthrough import PassthroughRenderer


def _passthrough_renderer(model: str | None) -> Renderer:
    return PassthroughRenderer()


def _dit_renderer(model: str | None) -> Renderer:
    # Imported on demand: the model pulls in torch and diffusers, which passthrough runs never need.
    from worker.engine.renderers.dit import DitRenderer

    return DitRenderer(model)


# Each factory takes the model a dub asked for (a checkpoint id or folder; None: the renderer's default).
_FACTORIES: dict[str, Callable[[str | None], Renderer]] = {
    "passthrough": _passthrough_renderer,
    "dit": _dit_renderer,
}


# Renderers that never change a pixel, known without building one (building `dit` loads its weights).
_UNCHANGING = {"passthrough"}


def register_renderer(
    name: str, factory: Callable[[str | None], Renderer], *, changes_pixels: bool = True
) -> None:
    _FACTORIES[name] = factory
    if changes_pixels:
        _UNCHANGING.discard(name)
    else:
        _UNCHANGING.add(name)


def renderer_changes_pixels(name: str) -> bool:
    """Whether the named renderer may change pixels (an unknown name is refused, as by create_renderer)."""
    if name not in _FACTORIES:
        create_renderer(name)
    return name not in _UNCHANGING


def renderer_names() -> list[str]:
    return sorted(_FACTORIES)


def create_renderer(name: str, model: str | None = None) -> Renderer:
    try:
        factory = _FACTORIES[name]
    except KeyError:
        known = ", ".join(renderer_names())
        raise EngineError(INVALID_OPTION, f"unknown renderer {name!r}; choose one of: {known}") from None
    return factory(model)
