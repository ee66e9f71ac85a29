"""Frames per second of the dubbing pipeline, stage by stage, per named config and working size.

    python -m bench.model                      # the CPU-feasible grid, fp32
    python -m bench.model --device cuda        # every config and size, bf16, SDPA (flash where available)
    python -m bench.model --device cuda --compile --configs base --sizes 720

Stages: audio (Whisper windows), encode (3D VAE on the masked clip and the reference frames), dit (all Euler
steps; `--guidance` > 1 doubles each step's batch), decode (3D VAE on the latents around the mask, as the
pipeline does), composite (the feathered paste at working size). The mask is a lower-face-sized box (3/8 of
the height, 1/4 of the width); `--references` (default 2, as the dit renderer) unmasked frames join the
self-attention. Each figure is frames of video per
second of that stage; "x real time" divides the whole pipeline's fps by the source frame rate (25 fps).
Weights are random (speed does not depend on them; the pipeline is loaded directly, so the dit renderer's
refusal of untrained checkpoints does not apply); sizes are 16:9 frames of the given height.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import torch

from model.checkpoints import build_pipeline, load_pipeline
from model.configs import CONFIGS
from model.pipeline_dubbing import DEFAULT_DECODE_MARGIN, DubbingCondition, DubbingPipeline

log = logging.getLogger(__name__)

SOURCE_FPS = 25.0
# 192: the dit renderer's working frame for 720p video with a typical face (the lower face scaled to 40 px).
SIZES = {192: (192, 336), 256: (256, 448), 512: (512, 912), 720: (720, 1280)}
# What finishes in well under a minute per run on a 2-core CPU; the rest takes minutes there (GPU only).
CPU_FEASIBLE = {("tiny", 256), ("tiny", 512), ("small", 256), ("mini", 192), ("mini", 256)}

Result = TypeVar("Result")


@dataclass
class StageFigures:
    config: str
    size: int
    height: int
    width: int
    frames: int
    device: str
    dtype: str
    guidance_scale: float
    references: int
    seconds: dict[str, float]

    def fps(self) -> dict[str, float]:
        per_stage = {stage: self.frames / seconds for stage, seconds in self.seconds.items() if seconds > 0}
        per_stage["total"] = self.frames / sum(self.seconds.values())
        return per_stage


def _timed(device: torch.device, action: Callable[[], Result]) -> tuple[Result, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = action()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def measure(
    pipeline: DubbingPipeline,
    height: int,
    width: int,
    frames: int,
    device: torch.device,
    guidance_scale: float = 1.0,
    references: int = 0,
) -> dict[str, float]:
    """Seconds per stage for one clip of `frames` frames at height x width."""
    generator = torch.Generator().manual_seed(0)
    video = torch.rand(1, frames, 3, height, width, generator=generator).to(device)
    masks = torch.zeros(1, frames, height, width, device=device)
    masks[:, :, height // 2 : height * 7 // 8, width * 3 // 8 : width * 5 // 8] = 1.0
    audio = (torch.randn(1, int((frames / SOURCE_FPS + 2) * 16_000), generator=generator) * 0.1).to(device)
    seconds: dict[str, float] = {}
    with torch.no_grad():
        num_latent_frames = 1 + (frames - 1) // pipeline.frames_per_latent
        audio_windows, seconds["audio"] = _timed(
            device, lambda: pipeline.encode_audio_windows(audio, num_latent_frames, SOURCE_FPS, 16_000)
        )
        hard = (masks > 0).to(video.dtype)
        masked_latents, seconds["encode"] = _timed(
            device, lambda: pipeline.encode_video(video * (1 - hard[:, :, None]))
        )
        reference_latents = None
        if references:
            # Each reference is its own one-frame clip, as encode_condition encodes them.
            picked = video[0, :references, None]  # (references, 1, 3, height, width)
            encoded, reference_seconds = _timed(device, lambda: pipeline.encode_video(picked))
            seconds["encode"] += reference_seconds
            reference_latents = encoded.squeeze(2).transpose(0, 1)[None]  # (1, channels, references, h, w)
        condition = DubbingCondition(
            masked_latents, pipeline.pack_mask(hard), audio_windows, reference_latents, 0
        )
        latents, seconds["dit"] = _timed(
            device,
            lambda: pipeline.denoise(
                condition, generator=torch.Generator().manual_seed(1), guidance_scale=guidance_scale
            ),
        )
        generated, seconds["decode"] = _timed(
            device, lambda: pipeline.decode_region(latents, video, masks, DEFAULT_DECODE_MARGIN)
        )
        _, seconds["composite"] = _timed(device, lambda: pipeline.composite(video, generated, masks))
    return seconds


def run(
    configs: Sequence[str],
    sizes: Sequence[int],
    frames: int,
    device: torch.device,
    dtype: torch.dtype,
    compile_transformer: bool,
    warmup: bool,
    force: bool,
    guidance_scale: float = 1.0,
    references: int = 0,
) -> list[StageFigures | dict[str, Any]]:
    results: list[StageFigures | dict[str, Any]] = []
    for config in configs:
        pipeline: DubbingPipeline | None = None
        for size in sizes:
            if device.type == "cpu" and not force and (config, size) not in CPU_FEASIBLE:
                results.append({"config": config, "size": size, "skipped": "takes minutes on this CPU"})
                continue
            if pipeline is None:
                pipeline = _load(config, device, dtype)
                if compile_transformer:
                    pipeline.transformer = torch.compile(pipeline.transformer)
            height, width = SIZES[size]
            if warmup:
                measure(pipeline, height, width, frames, device, guidance_scale, references)
            seconds = measure(pipeline, height, width, frames, device, guidance_scale, references)
            figures = StageFigures(
                config,
                size,
                height,
                width,
                frames,
                str(device),
                str(dtype),
                guidance_scale,
                references,
                seconds,
            )
            results.append(figures)
            _print_row(figures)
    return results


def _load(config: str, device: torch.device, dtype: torch.dtype) -> DubbingPipeline:
    # Through save/load so bf16 keeps the modules that must stay fp32 in fp32, as in production.
    with tempfile.TemporaryDirectory(prefix="redub-bench-model-") as directory:
        build_pipeline(config).save_pretrained(directory)
        return load_pipeline(directory, device=device, dtype=dtype)


def _print_row(figures: StageFigures) -> None:
    fps = figures.fps()
    stages = "  ".join(f"{stage} {value:8.2f}" for stage, value in fps.items())
    sys.stdout.write(
        f"{figures.config:>5} {figures.size:>4}p {figures.width}x{figures.height} {figures.frames} frames "
        f"[{figures.device} {figures.dtype} guidance {figures.guidance_scale:g} "
        f"references {figures.references}] "
        f"fps: {stages}  = {fps['total'] / SOURCE_FPS:.4f}x real time\n"
    )
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--frames", type=int, default=None, help="1+4k frames per clip (CPU 5, GPU 81)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), help="default: GPU bf16, CPU fp32")
    parser.add_argument("--compile", action="store_true", help="torch.compile the transformer")
    parser.add_argument("--all", action="store_true", help="also run the sizes that take minutes on a CPU")
    parser.add_argument(
        "--no-warmup", action="store_true", help="time the first run (includes kernel selection, 2-3x slower)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--guidance", type=float, default=1.0, help="audio guidance scale (1: none)")
    parser.add_argument("--references", type=int, default=2, help="reference frames per clip (0: none)")
    parser.add_argument(
        "--json", action="store_true", help="print the figures as one JSON document at the end"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    on_gpu = device.type == "cuda"
    frames = args.frames or (81 if on_gpu else 5)
    if (frames - 1) % 4:
        parser.error("--frames must be 1+4k")
    if args.references < 0 or args.guidance < 1:
        parser.error("--references must be >= 0 and --guidance >= 1")
    results = run(
        args.configs,
        args.sizes,
        frames,
        device,
        getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if on_gpu else torch.float32),
        args.compile,
        warmup=not args.no_warmup,
        force=args.all,
        guidance_scale=args.guidance,
        references=args.references,
    )
    for result in results:
        if isinstance(result, dict):
            sys.stdout.write(f"{result['config']:>5} {result['size']:>4}p skipped: {result['skipped']}\n")
    if args.json:
        document = [
            {**asdict(result), "fps": result.fps()} if isinstance(result, StageFigures) else result
            for result in results
        ]
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
