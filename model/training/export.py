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


def training_record(config: TrainConfig, run_dir: Path) -> dict[str, object]:
    """What the card says about the data and steps: enough to train the same checkpoint again."""
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
        "steps": {
            "vae": config.vae.steps,
            "audio": config.audio.steps,
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
            notes="Trained by `redub train` on the synthetic corpus only.",
        ),
    )
    shutil.rmtree(output, ignore_errors=True)
    partial.rename(output)
    return output
