"""The training corpus: synthetic talking-face pairs cut into fixed-size windows, stored as shards.

A window is what one training sample needs and nothing more: `window_frames` frames of the target (the
ground truth, saying the dub audio) and of the source (the same person saying something else), the engine's
lower-face masks of the source, a few identity frames of the source, the target's audio with a second of
context on each side (as the renderer cuts it), and the target's articulation per frame. Frames are square
crops around the face, resized to `crop_size`, so the model sees faces of many sizes at one cost.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model.training.config import CorpusConfig

log = logging.getLogger(__name__)

AUDIO_RATE = 16_000
AUDIO_CONTEXT_SECONDS = 1.0  # as the dit renderer cuts a segment's audio
SHARD_WINDOWS = 32


@dataclass
class Window:
    target: np.ndarray  # (frames, crop, crop, 3) uint8
    source: np.ndarray  # (frames, crop, crop, 3) uint8
    masks: np.ndarray  # (frames, crop, crop) float16: the source's lower-face masks
    references: np.ndarray  # (references, crop, crop, 3) uint8, frames of the source clip
    audio: np.ndarray  # (samples,) float32: the window's target audio with AUDIO_CONTEXT_SECONDS each side
    mouth: np.ndarray  # (frames, parameters) float32: the target's articulation
    opening: np.ndarray  # (frames,) float32: the target's inner-lip gap over eye-corner distance


FIELDS = ("target", "source", "masks", "references", "audio", "mouth", "opening")


def audio_context_samples() -> int:
    return round(AUDIO_CONTEXT_SECONDS * AUDIO_RATE)


def crop_box(masks: np.ndarray, rng: np.random.Generator, boxes: Sequence[float]) -> tuple[int, int, int]:
    """(top, left, side) of a square around every pixel the masks cover, `boxes` mask sizes wide, jittered.

    After resizing to the crop size the lower face spans crop_size / boxes pixels (25 to 64 at 128 and
    CorpusConfig's default 2 to 5): the range of face sizes the model learns, and the one the renderer
    scales faces into.
    """
    height, width = masks.shape[1:]
    covered = np.any(masks > 0.05, axis=0)
    rows, columns = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
    if rows.size == 0:
        centre_y, centre_x, box = height / 2, width / 2, min(height, width) / 2.5
    else:
        centre_y, centre_x = (rows[0] + rows[-1]) / 2, (columns[0] + columns[-1]) / 2
        box = max(rows[-1] - rows[0], columns[-1] - columns[0]) + 1
    side = int(np.clip(round(box * rng.uniform(float(boxes[0]), float(boxes[1]))), 32, min(height, width)))
    centre_y += rng.uniform(-0.1, 0.1) * side
    centre_x += rng.uniform(-0.1, 0.1) * side
    top = int(np.clip(round(centre_y - side / 2), 0, height - side))
    left = int(np.clip(round(centre_x - side / 2), 0, width - side))
    return top, left, side


def _resize(images: np.ndarray, side: int, size: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(image, (size, size), interpolation=interpolation) for image in images])


def pair_windows(pair: object, config: CorpusConfig, rng: np.random.Generator) -> list[Window]:
    """Cut a SynthPair into non-overlapping windows of `config.window_frames` frames."""
    source, target = pair.source, pair.target  # type: ignore[attr-defined]
    frame_count = min(len(source.frames), len(target.frames))
    length = config.window_frames
    samples_per_frame = AUDIO_RATE / target.frame_rate
    context = audio_context_samples()
    padded_audio = np.concatenate(
        [np.zeros(context, np.float32), target.audio.astype(np.float32), np.zeros(2 * context, np.float32)]
    )
    audio_length = round(length * samples_per_frame) + 2 * context
    windows = []
    for start in range(0, frame_count - length + 1, length):
        stop = start + length
        top, left, side = crop_box(source.masks[start:stop], rng, config.face_boxes)
        rows, columns = slice(top, top + side), slice(left, left + side)
        size = config.crop_size
        reference_indices = np.sort(rng.choice(len(source.frames), config.references, replace=False))
        first_sample = round(start * samples_per_frame)
        windows.append(
            Window(
                target=_resize(target.frames[start:stop, rows, columns], side, size),
                source=_resize(source.frames[start:stop, rows, columns], side, size),
                masks=_resize(source.masks[start:stop, rows, columns], side, size).astype(np.float16),
                references=_resize(source.frames[reference_indices][:, rows, columns], side, size),
                audio=padded_audio[first_sample : first_sample + audio_length].copy(),
                mouth=target.mouth[start:stop].astype(np.float32),
                opening=target.opening[start:stop].astype(np.float32),
            )
        )
    return windows


def _draw(config: CorpusConfig, seed: int, index: int) -> tuple[str, int, tuple[int, int]]:
    rng = np.random.default_rng([seed, index, 1])
    names = sorted(config.conditions)
    weights = np.asarray([config.conditions[name] for name in names], dtype=np.float64)
    condition = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    height, width = config.sizes[int(rng.integers(len(config.sizes)))]
    return condition, seed * 1_000_003 + index, (int(height), int(width))


def _windows_of(job: tuple[CorpusConfig, int, int]) -> list[Window]:
    from model.synth import make_pair  # imported in the worker process

    config, seed, index = job
    condition, pair_seed, size = _draw(config, seed, index)
    pair = make_pair(condition, pair_seed, "train", size=size, seconds=config.seconds)
    return pair_windows(pair, config, np.random.default_rng([seed, index, 2]))


def build_corpus(config: CorpusConfig, seed: int, directory: Path, progress: bool = True) -> int:
    """Generate `config.pairs` training pairs into shards under `directory`; returns the window count.

    Shards already written are kept, so a stopped run resumes at the first missing shard.
    """
    from tqdm import tqdm

    directory.mkdir(parents=True, exist_ok=True)
    pairs_per_shard = max(1, SHARD_WINDOWS // max(1, int(config.seconds * 25) // config.window_frames))
    shard_count = -(-config.pairs // pairs_per_shard)
    total = 0
    bar = tqdm(total=config.pairs, desc="corpus", unit="pair", disable=not progress, mininterval=10)
    context = multiprocessing.get_context("spawn")
    with context.Pool(max(1, config.workers)) as pool:
        for shard in range(shard_count):
            path = directory / f"shard-{shard:05d}.npz"
            indices = range(shard * pairs_per_shard, min(config.pairs, (shard + 1) * pairs_per_shard))
            if path.is_file():
                total += int(np.load(path)["target"].shape[0])
                bar.update(len(indices))
                continue
            windows: list[Window] = []
            for result in pool.imap(_windows_of, [(config, seed, index) for index in indices]):
                windows.extend(result)
                bar.update(1)
            save_shard(windows, path)
            total += len(windows)
    bar.close()
    log.info("corpus ready", extra={"windows": total, "shards": shard_count})
    return total


def save_shard(windows: list[Window], path: Path) -> None:
    partial = path.with_name(path.name + ".partial.npz")
    arrays = {name: np.stack([getattr(window, name) for window in windows]) for name in FIELDS}
    np.savez(partial, **arrays)  # type: ignore[arg-type]
    partial.replace(path)


def shard_paths(directory: Path) -> list[Path]:
    return sorted(directory.glob("shard-*.npz"))


class CorpusReader:
    """Every window of a corpus folder, held in memory (a CPU-sized corpus is a few GB at most)."""

    def __init__(self, directory: Path, fields: tuple[str, ...] = FIELDS) -> None:
        paths = shard_paths(directory)
        if not paths:
            raise FileNotFoundError(f"no corpus shards in {directory}")
        loaded = [np.load(path) for path in paths]
        self.arrays = {name: np.concatenate([shard[name] for shard in loaded]) for name in fields}

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def windows(self) -> Iterator[dict[str, np.ndarray]]:
        for index in range(len(self)):
            yield {name: array[index] for name, array in self.arrays.items()}
