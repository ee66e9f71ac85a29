from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ModelOut(BaseModel):
    id: str = Field(description="What a dub request names in `model`.")
    object: Literal["model"] = "model"
    default: bool = Field(description="Used when a request names no model.")
    renderer: Literal["dit", "passthrough"] = Field(
        description="`dit`: the dubbing DiT re-renders the lower face; `passthrough`: only the audio changes."
    )
    description: str
    config: str | None = Field(description="The model size (`mini`, `small`, `base`); null for passthrough.")
    trained: bool | None = Field(description="Whether the weights were trained; null for passthrough.")
    created_at: str | None
    eval: dict[str, Any] | None = Field(description="Held-out benchmark figures from the model card.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
