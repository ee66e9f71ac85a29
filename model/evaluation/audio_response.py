"""Does a checkpoint listen? Its lower face with and without the audio, on held-out training-shaped windows.

`redub eval`'s sync_r needs a mouth the face landmarks can read, and a young model's blurry mouth reads as
still (sync_r 0) long before it stops ignoring the audio. This measures below that threshold, straight on the
pipeline (no engine, no landmarks): for held-out synthetic windows cut as the corpus cuts them, the mean
brightness inside the lower-face mask per frame (an open mouth is dark) is correlated, within each window,
with the true mouth opening; once with the dub audio and once with the audio silenced (all-zero windows).

    python -m model.evaluation.audio_response CHECKPOINT [--pairs N] [--condition clean]

prints JSON: `truth_r` (the ground truth's own figure, about -0.6 on clean clips: the ceiling),
`audio_r` (the model with audio), `silent_r` (without; near 0 for a model that uses the audio),
`audio_effect` (mean absolute grey-level change in the mask that the audio makes).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import numpy as np
import torch

from model.checkpoints import load_pipeline
from model.pipeline_dubbing import DubbingCondition, DubbingPipeline
from model.synth import make_pair
from model.training.config import CorpusConfig
from model.training.corpus import audio_context_samples, pair_windows

FRAME_RATE = 25.0
SEED_BASE = 900_000  # held-out seeds, far from anything the evaluation's table uses


def _tensor(frames: np.ndarray) -> torch.Tensor:
    # (frames, size, size, 3) uint8 -> (1, frames, 3, size, size) in [0, 1]
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)[None].float() / 255


def _pixels(video: torch.Tensor) -> np.ndarray:
    # (1, frames, 3, h, w) in [0, 1] -> (frames, h, w, 3) in [0, 255]
    return video[0].permute(0, 2, 3, 1).clamp(0, 1).numpy() * 255


def mask_brightness(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(frames,) mean value of each frame's pixels where its mask is over 0.5."""
    inside = masks > 0.5
    pairs = zip(frames, inside, strict=True)
    return np.array([frame[where].mean() if where.any() else np.nan for frame, where in pairs])


def within_window_r(signals: list[np.ndarray], opening: list[np.ndarray]) -> float:
    """Pearson r of the signals and openings after removing each window's own mean from both."""

    def centred(values: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([value - np.nanmean(value) for value in values])

    signal, truth = centred(signals), centred(opening)
    finite = np.isfinite(signal) & np.isfinite(truth)
    if finite.sum() < 3 or signal[finite].std() == 0 or truth[finite].std() == 0:
        return 0.0
    return float(np.corrcoef(signal[finite], truth[finite])[0, 1])


@torch.no_grad()
def measure(
    pipeline: DubbingPipeline, pairs: int = 3, condition: str = "clean", window_frames: int = 9
) -> dict[str, float]:
    config = CorpusConfig(window_frames=window_frames, crop_size=128, references=2)
    truth, heard, silent, openings, effects = [], [], [], [], []
    for index in range(pairs):
        pair = make_pair(condition, SEED_BASE + index, "heldout", size=(144, 256))
        for window in pair_windows(pair, config, np.random.default_rng(index))[:4]:
            masks = window.masks.astype(np.float32)
            condition_inputs = pipeline.encode_condition(
                _tensor(window.source),
                torch.from_numpy(masks)[None],
                torch.from_numpy(window.audio)[None],
                FRAME_RATE,
                audio_offset=audio_context_samples(),
                reference_frames=_tensor(window.references),
            )
            quiet = DubbingCondition(
                condition_inputs.masked_latents,
                condition_inputs.latent_mask,
                torch.zeros_like(condition_inputs.audio_windows),
                condition_inputs.reference_latents,
                0,
            )
            # The same noise for both, so only the audio differs.
            with_audio = _pixels(pipeline.decode(pipeline.denoise(condition_inputs, generator=_seeded())))
            without = _pixels(pipeline.decode(pipeline.denoise(quiet, generator=_seeded())))
            truth.append(mask_brightness(window.target.astype(np.float32), masks))
            heard.append(mask_brightness(with_audio, masks))
            silent.append(mask_brightness(without, masks))
            effects.append(float(np.abs(with_audio - without)[masks > 0.5].mean()))
            openings.append(window.opening)
    return {
        "windows": len(openings),
        "truth_r": within_window_r(truth, openings),
        "audio_r": within_window_r(heard, openings),
        "silent_r": within_window_r(silent, openings),
        "audio_effect": float(np.mean(effects)),
    }


def _seeded() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.evaluation.audio_response", description=__doc__)
    parser.add_argument("checkpoint", help="a saved dubbing pipeline")
    parser.add_argument("--pairs", type=int, default=3, help="held-out pairs (4 windows each)")
    parser.add_argument("--condition", default="clean")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    figures = measure(load_pipeline(args.checkpoint, "cpu"), args.pairs, args.condition)
    print(json.dumps({name: round(value, 4) for name, value in figures.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
