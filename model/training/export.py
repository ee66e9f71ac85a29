"""Stage `export`: the trained parts as one loadable pipeline folder, with a card saying how it was made."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from model.pipeline_dubbing import DubbingPipeline
from model.training.config import TrainConfig


def steps_taken(run_dir: Path, stage: str, planned: int) -> int:
    """The steps a stage really took (fewer than planned when the run was finished early)."""
    record = run_dir / f"{stage}_steps.json"
    return int(json.loads(record.read_text())["steps"]) if record.is_file() else planned


def _start_record(config: TrainConfig) -> dict[str, object] | None:
    """The saved pipeline a fine-tuning run started from, with what its own card said."""
    if not config.init_from:
        return None
    from model.cards import read_model_card

    card = read_model_card(Path(config.init_from))
    return {
        "path": config.init_from,
        "name": card.name if card else None,
        "steps": card.steps if card else None,
        "data": card.data if card else None,
    }


def _probe_record(run_dir: Path) -> dict[str, float] | None:
    path = run_dir / "mouth_probe.safetensors"
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    return {"held_out_r": round(float(metadata["held_out_r"]), 4)}


def training_record(config: TrainConfig, run_dir: Path) -> dict[str, object]:
    """What the card says about the data and steps: enough to train the same checkpoint again."""
    started = _start_record(config)
    return {
        "corpus": {
            "generator": "redub synth (synthetic talking faces from real photos, espeak-ng speech)",
            "split": "train",
            "pairs": config.corpus.pairs,
            "conditions": config.corpus.conditions,
            "sizes": config.corpus.sizes,
            "seconds": config.corpus.seconds,
            "window_frames": config.corpus.window_frames,
            "crop_size": config.corpus.crop_size,
        },
        # A run started from a saved pipeline trains neither VAE nor audio encoder: they are the start's.
        "started_from": started,
        "sync_loss": {"weight": config.dit.sync_weight, "probe": _probe_record(run_dir)}
        if config.dit.sync_weight > 0
        else None,
        "steps": {
            "vae": 0 if started else config.vae.steps,
            "audio": 0 if started else config.audio.steps,
            "dit": steps_taken(run_dir, "dit", config.dit.steps),
            "decoder": steps_taken(run_dir, "decoder", config.decoder.steps)
            if (run_dir / "vae_decoder_tuned").is_dir()
            else 0,
        },
        "seed": config.seed,
    }


def export_pipeline(pipeline: DubbingPipeline, config: TrainConfig, run_dir: Path, output: Path) -> Path:
    from model.cards import ModelCard, write_model_card

    partial = output.with_name(output.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    pipeline.save_pretrained(partial, safe_serialization=True)
    write_model_card(
        partial,
        ModelCard(
            name=run_dir.name,
            config=config.model_config,
            trained=True,
            steps=steps_taken(run_dir, "dit", config.dit.steps),
            data=training_record(config, run_dir),
            seeds={"train": config.seed},
            max_frames=config.corpus.window_frames,
            face_pixels=config.corpus.face_pixels,
            notes="Trained by `redub train` on the synthetic corpus only.",
        ),
    )
    shutil.rmtree(output, ignore_errors=True)
    partial.rename(output)
    return output
