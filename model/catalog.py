"""The models a dub can choose: the shipped checkpoint, any other checkpoint folder, or none (passthrough).

No torch here: the API lists and validates models from their cards alone; only the worker loads weights.
A model id names either `passthrough` (the audio is replaced, no pixel changes) or a checkpoint folder with a
trained card: the one shipped inside this package, or each folder under `REDUB_MODELS_DIR`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from model.cards import ModelCard, read_model_card

PASSTHROUGH = "passthrough"
# The checkpoint trained by `redub train model/training/configs/mini-cpu.toml` and shipped in the package.
SHIPPED_MODEL = "redub-mini-synth"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    renderer: str  # the engine renderer that runs it: "dit" or "passthrough"
    path: Path | None  # the checkpoint folder (None for passthrough)
    card: ModelCard | None
    description: str


def shipped_model_path() -> Path:
    return WEIGHTS_DIR / SHIPPED_MODEL


def _checkpoint_entry(model_id: str, path: Path) -> ModelEntry | None:
    try:
        card = read_model_card(path)
    except ValueError:
        return None
    if card is None or not (path / "model_index.json").is_file():
        return None
    state = "trained" if card.trained else "untrained (random weights)"
    return ModelEntry(model_id, "dit", path, card, f"dubbing DiT `{card.config}`, {state}: {card.notes}")


def available_models(models_dir: str | None = None) -> dict[str, ModelEntry]:
    """Every model a request may name, by id; `models_dir` defaults to the REDUB_MODELS_DIR setting."""
    entries = {
        PASSTHROUGH: ModelEntry(
            PASSTHROUGH, "passthrough", None, None, "audio-only dub: the new audio, every frame untouched"
        )
    }
    candidates = [(SHIPPED_MODEL, shipped_model_path())]
    directory = models_dir if models_dir is not None else os.environ.get("REDUB_MODELS_DIR", "")
    if directory and Path(directory).is_dir():
        candidates += [(path.name, path) for path in sorted(Path(directory).iterdir()) if path.is_dir()]
    for model_id, path in candidates:
        entry = _checkpoint_entry(model_id, path)
        if entry is not None and model_id not in entries:
            entries[model_id] = entry
    return entries


# Whether the shipped checkpoint is the default: not while its benchmark shows no lip sync (sync_r 0.0 on the
# held-out clean, occluder and two_people clips, README "Shipped model"); passthrough is the honest default
# until a checkpoint beats it. REDUB_DEFAULT_MODEL / `--model` choose the shipped one explicitly.
SHIPPED_IS_DEFAULT = False


def default_model() -> str:
    """The shipped model when it is good enough to be the default and its weights are present."""
    if SHIPPED_IS_DEFAULT and SHIPPED_MODEL in available_models():
        return SHIPPED_MODEL
    return PASSTHROUGH
