"""`redub train`: run the stages of one training run in order, each resuming where it stopped.

A run folder holds everything: `config.json` (the settings it was started with), `corpus/` (window shards),
`checkpoints/<stage>/` (resumable state), the finished parts `vae/`, `audio_encoder/`, `latents.safetensors`,
`mouth_probe.safetensors`, `transformer/` and `vae_decoder_tuned/` (the VAE with its decoder trained on),
TensorBoard logs under `logs/`, and finally `pipeline/`, a loadable checkpoint with its card.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from diffusers import AutoencoderKLWan

from model.audio import WhisperAudioEncoder
from model.checkpoints import build_pipeline
from model.cpu_convolution import use_onednn_convolutions
from model.pipeline_dubbing import DubbingPipeline
from model.training.audio_stage import train_audio_encoder
from model.training.config import STAGES, TrainConfig
from model.training.corpus import CorpusReader, build_corpus
from model.training.decoder_stage import train_decoder
from model.training.dit_stage import train_transformer
from model.training.export import export_pipeline
from model.training.latents import encode_corpus, load_latents
from model.training.probe_stage import load_probe, train_probe
from model.training.vae_stage import measure_latent_statistics, train_vae
from model.transformer_dubbing import DubbingTransformer3DModel

log = logging.getLogger(__name__)


class RunMismatch(ValueError):
    """The run folder was started with other settings: resuming it with these would not be exact."""


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}."))
        elif isinstance(value, int | float | str | bool):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def prepare_run_dir(config: TrainConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "config.json"
    if saved.is_file():
        previous = json.loads(saved.read_text())
        if previous != json.loads(json.dumps(config.to_dict())):
            raise RunMismatch(
                f"{run_dir} was started with other settings (see its config.json); "
                "use a new run folder or the same settings"
            )
    else:
        config.save(saved)


def train(
    config: TrainConfig,
    run_dir: Path,
    stages: Sequence[str] = STAGES,
    *,
    progress: bool = True,
    stop_after: int | None = None,
    finish_now: bool = False,
) -> Path:
    """Run `stages` (in the fixed order) in `run_dir`; returns the exported pipeline's folder.

    `finish_now` ends the DiT and decoder stages at their last checkpoints instead of training on (a run that
    must ship before its planned steps are done); the card records the steps they really took.
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages: {', '.join(sorted(unknown))}; the stages are {', '.join(STAGES)}")
    prepare_run_dir(config, run_dir)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision, log_with="tensorboard", project_dir=str(run_dir / "logs")
    )
    accelerator.init_trackers("redub-train", config=_flat(config.to_dict()))
    pipeline = build_pipeline(config.model_config, seed=config.seed).to(accelerator.device)
    if config.init_from:
        _start_from(pipeline, Path(config.init_from), run_dir)

    corpus_dir = run_dir / "corpus"
    if "corpus" in stages:
        build_corpus(config.corpus, config.seed, corpus_dir, progress=progress)
    reader: CorpusReader | None = None

    def corpus() -> CorpusReader:
        nonlocal reader
        if reader is None:
            reader = CorpusReader(corpus_dir)
        return reader

    vae_dir = run_dir / "vae"
    if not _saved(vae_dir) and "vae" in stages:
        train_vae(pipeline.vae, corpus(), config, run_dir, accelerator, stop_after)
        if stop_after is None:
            mean, std = measure_latent_statistics(pipeline.vae, corpus())
            pipeline.vae.register_to_config(latents_mean=mean, latents_std=std)
            accelerator.unwrap_model(pipeline.vae).save_pretrained(vae_dir)
    if _saved(vae_dir):
        pipeline.vae = _load(AutoencoderKLWan, vae_dir, accelerator)

    audio_dir = run_dir / "audio_encoder"
    if not _saved(audio_dir) and "audio" in stages:
        train_audio_encoder(pipeline, corpus(), config, run_dir, accelerator, stop_after)
        if stop_after is None:
            accelerator.unwrap_model(pipeline.audio_encoder).save_pretrained(audio_dir)
    if _saved(audio_dir):
        pipeline.audio_encoder = _load(WhisperAudioEncoder, audio_dir, accelerator)

    latents_path = run_dir / "latents.safetensors"
    if "latents" in stages and not latents_path.is_file():
        encode_corpus(pipeline, corpus(), latents_path, progress=progress)

    probe_path = run_dir / "mouth_probe.safetensors"
    uses_probe = config.dit.sync_weight > 0
    if uses_probe and "probe" in stages and not probe_path.is_file():
        train_probe(load_latents(latents_path), config, probe_path)

    transformer_dir = run_dir / "transformer"
    if not _saved(transformer_dir) and "dit" in stages:
        probe = None
        if uses_probe:
            if not probe_path.is_file():
                raise ValueError(f"{run_dir} has no mouth probe: run the probe stage first (sync_weight > 0)")
            transformer_config = pipeline.transformer.config
            mouth_probe, opening_mean, opening_std = load_probe(
                probe_path, transformer_config.latent_channels, transformer_config.mask_channels
            )
            probe = (mouth_probe.to(accelerator.device), opening_mean, opening_std)
        reached, ema = train_transformer(
            pipeline.transformer,
            load_latents(latents_path),
            config,
            run_dir,
            accelerator,
            0 if finish_now else stop_after,
            probe=probe,
        )
        if finish_now and reached == 0:
            raise ValueError(f"{run_dir} has no DiT checkpoint to finish from")
        if stop_after is None or finish_now:
            transformer = accelerator.unwrap_model(pipeline.transformer)
            ema.copy_to(transformer.parameters())
            transformer.save_pretrained(transformer_dir)
            (run_dir / "dit_steps.json").write_text(json.dumps({"steps": reached}) + "\n")
    if _saved(transformer_dir):
        pipeline.transformer = _load(DubbingTransformer3DModel, transformer_dir, accelerator)
    decoder_dir = run_dir / "vae_decoder_tuned"
    if not _saved(decoder_dir) and "decoder" in stages and config.decoder.steps > 0:
        reached = train_decoder(
            pipeline.vae, corpus(), config, run_dir, accelerator, 0 if finish_now else stop_after
        )
        # Finished early without a single checkpoint: the VAE stays as the `vae` stage left it.
        if (stop_after is None and not finish_now) or (finish_now and reached > 0):
            accelerator.unwrap_model(pipeline.vae).save_pretrained(decoder_dir)
            (run_dir / "decoder_steps.json").write_text(json.dumps({"steps": reached}) + "\n")
    if _saved(decoder_dir):
        # The same encoder (frozen) with the decoder trained further.
        pipeline.vae = _load(AutoencoderKLWan, decoder_dir, accelerator)
    accelerator.end_training()

    pipeline_dir = run_dir / "pipeline"
    if "export" in stages and stop_after is None:
        export_pipeline(_assemble(pipeline), config, run_dir, pipeline_dir)
    return pipeline_dir


def _start_from(pipeline: DubbingPipeline, source: Path, run_dir: Path) -> None:
    """Seed a run with a saved pipeline's parts: its VAE and audio encoder become this run's finished
    `vae/` and `audio_encoder/` (those stages then have nothing to train), its transformer the DiT's start."""
    for part, model_class in (("vae", AutoencoderKLWan), ("audio_encoder", WhisperAudioEncoder)):
        if not _saved(run_dir / part):
            model_class.from_pretrained(source / part).save_pretrained(run_dir / part)
    start = DubbingTransformer3DModel.from_pretrained(source / "transformer")

    def shape(config: Any) -> dict[str, Any]:  # the architecture, without diffusers' bookkeeping keys
        # Lists and tuples compare alike: JSON has only lists.
        return json.loads(json.dumps({key: value for key, value in dict(config).items() if key[0] != "_"}))

    if shape(start.config) != shape(pipeline.transformer.config):
        raise ValueError(f"{source}/transformer does not fit this run's model_config")
    pipeline.transformer.load_state_dict(start.state_dict())


def _saved(directory: Path) -> bool:
    return (directory / "config.json").is_file()


def _load(model_class: Any, directory: Path, accelerator: Accelerator) -> Any:
    """A finished part, frozen; always read back from disk so a resumed run computes with the same bits."""
    module = model_class.from_pretrained(directory)
    with torch.no_grad():
        for parameter in module.parameters():
            # Weights memory-mapped from safetensors can be unaligned, and CPU kernels then round differently.
            parameter.data = parameter.data.clone()
    return use_onednn_convolutions(module.to(accelerator.device).eval().requires_grad_(False))


def _assemble(pipeline: DubbingPipeline) -> DubbingPipeline:
    """A fresh pipeline of the trained parts in eval mode (no wrappers left by accelerate)."""
    for module in (pipeline.vae, pipeline.transformer, pipeline.audio_encoder):
        module.eval().requires_grad_(False)
    return DubbingPipeline(
        vae=pipeline.vae.cpu(),
        transformer=pipeline.transformer.cpu(),
        audio_encoder=pipeline.audio_encoder.cpu(),
        feature_extractor=pipeline.feature_extractor,
        scheduler=pipeline.scheduler,
        audio_tokens_per_frame=pipeline.config.audio_tokens_per_frame,
        audio_context_frames=pipeline.config.audio_context_frames,
    )
