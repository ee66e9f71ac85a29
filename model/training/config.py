"""One training run's settings: read from a TOML file, written back beside the checkpoints."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAGES = ("corpus", "vae", "audio", "latents", "probe", "dit", "decoder", "export")


@dataclass
class CorpusConfig:
    pairs: int = 160  # synthetic (source, target) pairs generated for training
    # How often each condition is drawn; the benchmark's conditions, clean faces most.
    conditions: dict[str, float] = field(
        default_factory=lambda: {
            "clean": 4.0,
            "hard_shadow": 1.0,
            "occluder": 1.0,
            "hair": 1.0,
            "dark": 1.0,
            "foliage": 1.0,
            "profile": 1.0,
            "head_turns": 1.0,
            "motion_blur": 1.0,
            "small_face": 0.5,
            "two_people": 1.0,
        }
    )
    # Frame sizes (height, width) the pairs are rendered at: the working sizes of landscape, square and
    # portrait video at the renderer's default longer side.
    sizes: list[list[int]] = field(default_factory=lambda: [[144, 256], [144, 256], [256, 256], [256, 144]])
    seconds: float = 3.0
    window_frames: int = 25  # frames per training window (the renderer never asks the model for more)
    crop_size: int = 128  # windows are square crops around the face, resized to this side
    # A crop's side in lower-face boxes (drawn uniformly in this range): the lower face then spans
    # crop_size / face_boxes pixels, the sizes the model learns and the renderer scales faces to.
    face_boxes: list[float] = field(default_factory=lambda: [2.0, 5.0])
    references: int = 2  # identity frames per window, taken from the source clip
    workers: int = 2

    @property
    def face_pixels(self) -> int:
        """The lower face's size in working pixels at the middle (geometric mean) of the trained range."""
        low, high = self.face_boxes
        return round(self.crop_size / math.sqrt(low * high))


@dataclass
class VaeConfig:
    steps: int = 1500
    batch_size: int = 4
    # Frames per training clip: the VAE encodes the first frame alone, then 4-frame chunks whose causal cache
    # holds the previous chunk; 9 frames train all three cases (5 would leave the warm-cache path untrained).
    frames: int = 9
    crop: int = 96
    learning_rate: float = 1e-3
    kl_weight: float = 1e-6
    mask_weight: float = 4.0  # the lower face weighs this much more in the reconstruction loss
    gradient_weight: float = 1.0  # L1 on image gradients: keeps lip edges sharp


@dataclass
class DecoderConfig:
    """The decoder's further training with the encoder frozen (stage `decoder`); 0 steps skips it."""

    steps: int = 0
    batch_size: int = 6
    frames: int = 9
    crop: int = 64
    learning_rate: float = 3e-4


@dataclass
class AudioConfig:
    steps: int = 1200
    batch_size: int = 16
    learning_rate: float = 1e-3
    noise_probability: float = 0.5  # augmentation: background noise and gain, so real recordings still map


@dataclass
class DitConfig:
    steps: int = 3000
    batch_size: int = 8
    learning_rate: float = 5e-4
    warmup_steps: int = 100
    ema_decay: float = 0.995
    audio_dropout: float = 0.1  # condition dropout: what guidance_scale > 1 needs
    motion_probability: float = 0.3  # windows whose first frames are given, as at segment seams
    max_motion_frames: int = 8
    mask_weight: float = 4.0
    gradient_checkpointing: bool = False
    # Weight of the latent sync loss: the frozen mouth probe (stage `probe`) scores the one-step clean
    # estimate against the true opening. 0 trains with the velocity loss alone (and skips the probe stage).
    sync_weight: float = 0.0
    probe_steps: int = 600
    # Share of samples trained from where the 3-step sampler itself stands after its first one or two steps
    # (the model's own blurred estimate), not from a noised truth, so the later steps learn to sharpen it.
    rollout_fraction: float = 0.0


@dataclass
class TrainConfig:
    model_config: str = "mini"
    seed: int = 0
    mixed_precision: str = "no"  # "bf16" on GPUs
    checkpoint_every: int = 200  # steps between resumable checkpoints
    log_every: int = 20
    # A saved pipeline folder whose VAE, audio encoder and transformer start this run (fine-tuning): the vae
    # and audio stages then copy its parts instead of training, and the DiT starts from its weights.
    init_from: str = ""
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    vae: VaeConfig = field(default_factory=VaeConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    dit: DitConfig = field(default_factory=DitConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        sections = {
            "corpus": CorpusConfig,
            "vae": VaeConfig,
            "audio": AudioConfig,
            "dit": DitConfig,
            "decoder": DecoderConfig,
        }
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        arguments: dict[str, Any] = {}
        for name, value in values.items():
            if name in sections:
                section = sections[name]
                section_known = {item.name for item in dataclasses.fields(section)}
                extra = set(value) - section_known
                if extra:
                    raise ValueError(f"unknown [{name}] settings: {', '.join(sorted(extra))}")
                arguments[name] = section(**value)
            else:
                arguments[name] = value
        return cls(**arguments)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        with path.open("rb") as file:
            return cls.from_dict(tomllib.load(file))

    def __post_init__(self) -> None:
        # The VAE encodes the first frame alone, then chunks of 4 frames: anything else is silently cut.
        for name, frames in (
            ("corpus.window_frames", self.corpus.window_frames),
            ("vae.frames", self.vae.frames),
            ("decoder.frames", self.decoder.frames),
        ):
            if frames < 5 or (frames - 1) % 4:
                raise ValueError(f"{name} must be 1 + 4k frames (5, 9, 13, ...), got {frames}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
