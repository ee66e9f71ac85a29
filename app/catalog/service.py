"""Which models exist (read from their cards, no weights loaded) and which one a request gets."""

from __future__ import annotations

from app.catalog.schemas import ModelList, ModelOut
from app.core.config import get_settings
from app.core.errors import ApiError
from model import catalog


def default_model() -> str:
    return get_settings().default_model or catalog.default_model()


def resolve(requested: str | None) -> str:
    """The model id a dub is stored with; 422 `unknown_model` for an id this server does not have."""
    model_id = requested or default_model()
    if model_id not in catalog.available_models():
        known = ", ".join(catalog.available_models())
        raise ApiError(
            422,
            "unknown_model",
            f"model: no model {model_id!r} here; `GET /v1/models` lists them ({known}).",
            extra={"param": "model"},
        )
    return model_id


def list_models() -> ModelList:
    default = default_model()
    models = []
    for entry in catalog.available_models().values():
        card = entry.card
        models.append(
            ModelOut(
                id=entry.id,
                default=entry.id == default,
                renderer="dit" if entry.renderer == "dit" else "passthrough",
                description=entry.description,
                config=card.config if card else None,
                trained=card.trained if card else None,
                created_at=card.created_at if card else None,
                eval=card.eval if card else None,
            )
        )
    return ModelList(data=models)
