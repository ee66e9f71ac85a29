"""Build, save and load dubbing pipelines: named configs, random checkpoints, published weights from disk.

Nothing here downloads: every path is a local directory. `python -m model.checkpoints OUT --config tiny`
writes a random checkpoint (what tests and benchmarks use until a trained one ships).

Every checkpoint directory says how it was made in its model card, `redub_model.json` (`ModelCard`): a random
checkpoint is marked `trained: false`, and training writes `trained: true` with its steps, data, seeds and
evaluation. The `dit` renderer refuses a checkpoint whose card is missing or says it is untrained.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
from diffusers.utils import logging as diffusers_logging
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel
from transformers.utils import logging as transformers_logging

from model.audio import WhisperAudioEncoder
from model.cards import ModelCard, write_model_card
from model.configs import get_config
from model.pipeline_dubbing import DubbingPipeline
from model.transformer_dubbing import DubbingTransformer3DModel

logger = logging.getLogger(__name__)


def load_published_vae(path: str | Path) -> AutoencoderKLWan:
    """The Wan2.1 VAE from a local diffusers-format folder (or a Wan checkpoint with a `vae/` subfolder)."""
    path = Path(path)
    subfolder = "vae" if (path / "vae" / "config.json").is_file() else None
    return AutoencoderKLWan.from_pretrained(path, subfolder=subfolder, local_files_only=True)


def load_published_audio_encoder(path: str | Path) -> tuple[WhisperAudioEncoder, WhisperFeatureExtractor]:
    """The encoder of a released Whisper checkpoint (e.g. a local copy of whisper-tiny) and its extractor."""
    # local_files_only: a local folder, nothing is downloaded, so there is no revision to pin (B615).
    whisper = WhisperModel.from_pretrained(path, local_files_only=True)  # nosec B615
    feature_extractor = WhisperFeatureExtractor.from_pretrained(path, local_files_only=True)  # nosec B615
    return WhisperAudioEncoder.from_whisper(whisper.get_encoder()), feature_extractor


def build_pipeline(
    config: str = "tiny",
    *,
    seed: int = 0,
    vae_path: str | Path | None = None,
    audio_encoder_path: str | Path | None = None,
) -> DubbingPipeline:
    """A pipeline of the named size with random weights, except the parts given as published checkpoints."""
    model_config = get_config(config)
    torch.manual_seed(seed)
    vae = load_published_vae(vae_path) if vae_path else AutoencoderKLWan(**model_config.vae)
    if audio_encoder_path:
        audio_encoder, feature_extractor = load_published_audio_encoder(audio_encoder_path)
    else:
        audio_encoder = WhisperAudioEncoder(WhisperConfig(**model_config.audio_encoder))
        feature_extractor = WhisperFeatureExtractor(feature_size=audio_encoder.config.num_mel_bins)
    transformer_arguments = dict(model_config.transformer)
    transformer_arguments["audio_dim"] = audio_encoder.config.d_model
    transformer_arguments["latent_channels"] = vae.config.z_dim
    transformer_arguments["mask_channels"] = vae.config.scale_factor_temporal
    transformer = DubbingTransformer3DModel(**transformer_arguments)
    # Explicit sigmas are passed at sampling time; shift 1 keeps them as given.
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)
    pipeline = DubbingPipeline(
        vae=vae,
        transformer=transformer,
        audio_encoder=audio_encoder.eval(),
        feature_extractor=feature_extractor,
        scheduler=scheduler,
        audio_tokens_per_frame=model_config.audio_window.tokens_per_frame,
        audio_context_frames=model_config.audio_window.context_frames,
    )
    return pipeline


def build_random_checkpoint(path: str | Path, config: str = "tiny", seed: int = 0) -> Path:
    """Write a random-weight pipeline of the named size to `path` (safetensors) and return the path.

    Its model card says `trained: false`, so the `dit` renderer refuses it unless told to accept it.
    """
    path = Path(path)
    build_pipeline(config, seed=seed).save_pretrained(path, safe_serialization=True)
    write_model_card(
        path,
        ModelCard(
            name=f"random-{config}-seed{seed}",
            config=config,
            trained=False,
            seeds={"weights": seed},
            notes="random weights from model.checkpoints.build_random_checkpoint",
        ),
    )
    logger.info("random checkpoint written", extra={"path": str(path), "config": config, "seed": seed})
    return path


def load_pipeline(
    path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> DubbingPipeline:
    """Load a saved pipeline; by default fp32 on CPU and bf16 on a GPU."""
    resolved_device = (
        torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    resolved_dtype = dtype or (torch.bfloat16 if resolved_device.type == "cuda" else torch.float32)
    # dtype at load time (not a later .to) so the modules that must stay fp32 in bf16 runs do.
    # Loading is logged by the caller: the libraries' own progress bars would only litter worker logs.
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    pipeline = DubbingPipeline.from_pretrained(str(path), dtype=resolved_dtype, local_files_only=True)
    for component in (pipeline.vae, pipeline.transformer, pipeline.audio_encoder):
        _copy_out_of_file(component)
    pipeline.to(resolved_device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _copy_out_of_file(module: torch.nn.Module) -> None:
    """Give every weight its own freshly allocated memory.

    Weights memory-mapped from a safetensors file can sit at unaligned addresses, and CPU kernels then take
    other code paths that change the last bits of results: the copy makes a loaded pipeline bit-identical
    to the one that was saved.
    """
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.data = parameter.data.clone()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.checkpoints", description="Write a random checkpoint."
    )
    parser.add_argument("output", type=Path, help="directory to write the pipeline to")
    parser.add_argument("--config", default="tiny", help="tiny, small or base")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        build_random_checkpoint(args.output, args.config, args.seed)
    except ValueError as error:
        parser.error(str(error))
    sys.stdout.write(f"{args.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
