"""Model cards: how a checkpoint was made, in `redub_model.json` beside its `model_index.json`.

Plain JSON and no torch, so the API can list models without loading any. A random checkpoint says
`trained: false`; training writes `trained: true` with its steps, data, seeds and evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODEL_CARD_NAME = "redub_model.json"


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """How a checkpoint was made; saved as `redub_model.json` beside `model_index.json`."""

    name: str  # a label for people, e.g. "small-lrs3-v1"
    config: str  # the named size (model/configs.py) the weights fit
    trained: bool  # False: random weights, fit for tests and benchmarks only
    steps: int = 0  # optimiser steps taken
    data: Any = None  # what it was trained on (JSON: names, sizes, hashes), None when untrained
    seeds: Any = None  # every seed that decided the run (JSON)
    eval: dict[str, Any] | None = None  # held-out figures, None when not evaluated
    created_at: str = dataclasses.field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )
    notes: str = ""
    # The longest clip (frames) the model saw in training; the renderer cuts longer segments into chained
    # windows of at most this many frames. None: no limit known.
    max_frames: int | None = None
    # The lower face's height in working pixels the model was trained at; the renderer scales faces to it.
    # None: the 40 pixels of the cards that predate this field.
    face_pixels: int | None = None

    def __post_init__(self) -> None:
        for field_name, kind in (("name", str), ("config", str), ("trained", bool), ("notes", str)):
            if not isinstance(getattr(self, field_name), kind):
                raise ValueError(f"model card field {field_name!r} must be a {kind.__name__}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError("model card field 'steps' must be a non-negative integer")
        if self.eval is not None and not isinstance(self.eval, dict):
            raise ValueError("model card field 'eval' must be an object or null")


def write_model_card(path: str | Path, card: ModelCard) -> Path:
    """Write `card` into the checkpoint directory `path` (atomically) and return the file's path."""
    destination = Path(path) / MODEL_CARD_NAME
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{MODEL_CARD_NAME}.partial")
    partial.write_text(json.dumps(dataclasses.asdict(card), indent=2, sort_keys=True) + "\n")
    os.replace(partial, destination)
    return destination


def read_model_card(path: str | Path) -> ModelCard | None:
    """The card of the checkpoint directory `path`; None if it has none; ValueError if it is malformed."""
    source = Path(path) / MODEL_CARD_NAME
    try:
        raw = json.loads(source.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {source}: {error}") from error
    if not isinstance(raw, dict):
        raise ValueError(f"{source} must hold a JSON object")
    known = {field.name for field in dataclasses.fields(ModelCard)}
    missing = {"name", "config", "trained"} - raw.keys()
    if missing:
        raise ValueError(f"{source} lacks {', '.join(sorted(missing))}")
    unknown = raw.keys() - known
    if unknown:
        raise ValueError(f"{source} has unknown fields: {', '.join(sorted(unknown))}")
    return ModelCard(**raw)
