from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from model.cards import MODEL_CARD_NAME, ModelCard, write_model_card
from model.checkpoints import build_pipeline, build_random_checkpoint
from tests.media import FeatheredBox, decode_planes, luma_weights, write_audio, write_video
from worker.engine.compositing import ColourSpace
from worker.engine.errors import MODEL_UNAVAILABLE, EngineError
from worker.engine.pipeline import DubOptions, dub
from worker.engine.probe import probe_video
from worker.engine.renderers import SegmentInput, create_renderer
from worker.engine.renderers import dit as dit_renderer
from worker.engine.renderers.dit import (
    DitRenderer,
    choose_reference_frames,
    mask_bounding_box,
    paste_upsampled_box,
    plan_view,
    shown_frames,
)
from worker.engine.segments import Segment

HEIGHT, WIDTH = 48, 64
BOX = (24, 44, 20, 48)  # top, bottom, left, right


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    # 2 cores shared between several jobs: one intra-op thread avoids oversubscription (see tests/model).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_checkpoint(tmp_path_factory.mktemp("checkpoint") / "tiny", "tiny")


@pytest.fixture(scope="module")
def renderer(checkpoint: Path) -> DitRenderer:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("REDUB_MODEL_PATH", str(checkpoint))
        monkeypatch.setenv("REDUB_DIT_WORKING_SIZE", "32")
        monkeypatch.setenv("REDUB_DIT_DEVICE", "cpu")
        monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")  # random weights, on purpose
        return DitRenderer()


def segment_input(frame_count: int = 9, start: int = 0, previous: np.ndarray | None = None) -> SegmentInput:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (frame_count, HEIGHT, WIDTH, 3), dtype=np.uint8)
    masks = np.zeros((frame_count, HEIGHT, WIDTH), np.float32)
    top, bottom, left, right = BOX
    masks[:, top:bottom, left:right] = 1.0
    masks[:, top, left:right] = 0.5  # a feathered edge
    audio = (rng.standard_normal(16_000 * 3) * 0.1).astype(np.float32)
    return SegmentInput(
        segment=Segment(0, start, start + frame_count, 0),
        frames=frames,
        masks=masks,
        audio=audio,
        audio_start=round(start / 25 * 16_000),
        frame_rate=25.0,
        previous_frames=previous,
    )


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    changed = (before != after).any(axis=(0, 3))
    rows, columns = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1


def test_renders_only_the_masked_region_at_the_source_size(renderer: DitRenderer) -> None:
    request = segment_input()
    output = renderer.render(request)
    assert output.shape == request.frames.shape
    assert output.dtype == np.uint8
    # Every changed pixel lies in the mask's box, and the box is re-rendered.
    top, bottom, left, right = changed_box(request.frames, output)
    assert BOX[0] <= top and bottom <= BOX[1] and BOX[2] <= left and right <= BOX[3]
    assert (bottom - top) * (right - left) > 0.8 * (BOX[1] - BOX[0]) * (BOX[3] - BOX[2])


def test_segment_lengths_other_than_1_plus_4k_are_padded_and_trimmed(renderer: DitRenderer) -> None:
    request = segment_input(frame_count=7)
    assert renderer.render(request).shape == request.frames.shape


def test_previous_frames_condition_the_next_segment_and_runs_repeat(renderer: DitRenderer) -> None:
    first = renderer.render(segment_input(start=0))
    previous = first[4:]  # the next segment starts 4 frames later and overlaps 5
    without = renderer.render(segment_input(start=4))
    continued = renderer.render(segment_input(start=4, previous=previous))
    assert continued.shape == without.shape
    assert not np.array_equal(continued, without)
    assert np.array_equal(renderer.render(segment_input(start=4)), without)


def test_the_model_sees_the_persons_own_frames_as_references(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDUB_MODEL_PATH", str(checkpoint))
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")
    monkeypatch.setenv("REDUB_DIT_DEVICE", "cpu")
    # 48x64 as it is: no resampling mixes hidden pixels in
    monkeypatch.setenv("REDUB_DIT_WORKING_SIZE", "0")
    monkeypatch.setattr(dit_renderer, "MAX_UPSCALE", 1.0)
    with_references = DitRenderer()
    monkeypatch.setenv("REDUB_DIT_REFERENCE_FRAMES", "0")
    without = DitRenderer()
    assert (with_references.reference_count, without.reference_count) == (2, 0)
    request = segment_input()
    other = segment_input()
    hidden = other.masks > 0  # pixels the model only ever sees through the reference frames
    other.frames[hidden] = 255 - other.frames[hidden]

    reference_shapes: list[tuple[int, ...] | None] = []

    def record(_module: torch.nn.Module, args: tuple[torch.Tensor | None, ...]) -> None:
        reference = args[3] if len(args) > 3 else None
        reference_shapes.append(None if reference is None else tuple(reference.shape))

    handle = with_references.pipeline.transformer.register_forward_pre_hook(record)
    try:
        first = with_references.render(request)
        assert reference_shapes == [(1, 16, 2, 6, 8)] * 3  # 2 frames, 48x64 -> 6x8 latents, every step
        reference_shapes.clear()
        assert without.render(request).shape == request.frames.shape
        assert reference_shapes == [None] * 3
    finally:
        handle.remove()
    # The source mouth reaches the output only through the references.
    assert not np.array_equal(with_references.render(other), first)
    assert np.array_equal(without.render(other), without.render(request))


def test_reference_frames_are_spread_and_prefer_a_closed_mouth() -> None:
    frames = np.full((12, 20, 20, 3), 180, np.uint8)
    masks = np.zeros((12, 20, 20), np.float32)
    masks[:, 8:16, 4:16] = 1.0
    open_mouths = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    frames[open_mouths, 10:14, 7:13] = 20  # a dark mouth interior inside the mask's box
    assert choose_reference_frames(frames, masks, 2).tolist() == [4, 11]
    assert choose_reference_frames(frames, masks, 1).tolist() == [4]
    assert choose_reference_frames(frames, masks, 0).tolist() == []
    assert choose_reference_frames(frames[:3], masks[:3], 5).tolist() == [0, 1, 2]
    # Without a mask, nothing tells the frames apart: the first of each span.
    assert choose_reference_frames(frames, np.zeros_like(masks), 3).tolist() == [0, 4, 8]


def test_a_segment_with_an_empty_mask_is_returned_untouched(renderer: DitRenderer) -> None:
    request = segment_input()
    request.masks[:] = 0
    assert renderer.render(request) is request.frames


def test_renderers_share_one_loaded_pipeline_per_process(renderer: DitRenderer, checkpoint: Path) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("REDUB_MODEL_PATH", str(checkpoint))
        monkeypatch.setenv("REDUB_DIT_DEVICE", "cpu")
        monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")
        assert DitRenderer().pipeline is renderer.pipeline


def test_a_missing_checkpoint_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDUB_MODEL_PATH", str(tmp_path))
    with pytest.raises(EngineError) as empty:
        DitRenderer()
    assert empty.value.code == MODEL_UNAVAILABLE


def test_an_untrained_checkpoint_is_refused_unless_allowed(
    renderer: DitRenderer, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDUB_MODEL_PATH", str(checkpoint))
    monkeypatch.setenv("REDUB_DIT_DEVICE", "cpu")
    monkeypatch.delenv("REDUB_ALLOW_UNTRAINED_MODEL", raising=False)
    with pytest.raises(EngineError) as refused:
        create_renderer("dit")
    assert refused.value.code == MODEL_UNAVAILABLE
    assert refused.value.message == (
        f"checkpoint {checkpoint} is untrained (random weights); "
        "set REDUB_ALLOW_UNTRAINED_MODEL=1 to render with it anyway"
    )
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "0")
    with pytest.raises(EngineError):
        DitRenderer()
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")
    assert DitRenderer().pipeline is renderer.pipeline
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "maybe")
    with pytest.raises(EngineError) as bad:
        DitRenderer()
    assert bad.value.code == "invalid_option"


def test_a_checkpoint_without_a_card_is_refused_and_a_trained_card_is_accepted(
    renderer: DitRenderer, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(checkpoint, copy)
    (copy / MODEL_CARD_NAME).unlink()
    monkeypatch.setenv("REDUB_MODEL_PATH", str(copy))
    monkeypatch.setenv("REDUB_DIT_DEVICE", "cpu")
    monkeypatch.delenv("REDUB_ALLOW_UNTRAINED_MODEL", raising=False)
    with pytest.raises(EngineError) as refused:
        DitRenderer()
    assert refused.value.code == MODEL_UNAVAILABLE
    assert "no model card" in refused.value.message
    assert "REDUB_ALLOW_UNTRAINED_MODEL=1" in refused.value.message
    write_model_card(copy, ModelCard(name="trained", config="tiny", trained=True, steps=10))
    assert DitRenderer().face_pixels == 40  # a card from before face_pixels: the first checkpoints' scale
    write_model_card(copy, ModelCard(name="trained", config="tiny", trained=True, steps=10, face_pixels=65))
    assert DitRenderer().face_pixels == 65
    (copy / MODEL_CARD_NAME).write_text("{")
    with pytest.raises(EngineError) as malformed:
        DitRenderer()
    assert malformed.value.code == MODEL_UNAVAILABLE


def test_audio_guidance_is_a_setting(
    renderer: DitRenderer, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert renderer.guidance_scale == 1.0
    monkeypatch.setenv("REDUB_MODEL_PATH", str(checkpoint))
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")
    monkeypatch.setenv("REDUB_DIT_WORKING_SIZE", "32")
    monkeypatch.setenv("REDUB_DIT_DEVICE", "cpu")
    monkeypatch.setenv("REDUB_DIT_GUIDANCE", "2.5")
    guided = DitRenderer()
    assert guided.guidance_scale == 2.5
    assert guided.pipeline is renderer.pipeline  # still one pipeline per process
    assert not np.array_equal(guided.render(segment_input()), renderer.render(segment_input()))
    for bad in ("strong", "0.5", "nan"):
        monkeypatch.setenv("REDUB_DIT_GUIDANCE", bad)
        with pytest.raises(EngineError) as error:
            DitRenderer()
        assert error.value.code == "invalid_option"


def test_a_bad_working_size_is_a_clear_error(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDUB_MODEL_PATH", str(checkpoint))
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")
    monkeypatch.setenv("REDUB_DIT_WORKING_SIZE", "big")
    with pytest.raises(EngineError) as error:
        DitRenderer()
    assert error.value.code == "invalid_option"


def test_the_model_can_render_in_bfloat16(checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDUB_MODEL_PATH", str(checkpoint))
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")
    monkeypatch.setenv("REDUB_DIT_WORKING_SIZE", "32")
    monkeypatch.setenv("REDUB_DIT_DEVICE", "cpu")
    monkeypatch.setenv("REDUB_DIT_DTYPE", "bfloat16")
    half = DitRenderer()
    assert half.pipeline.transformer.dtype == torch.bfloat16
    request = segment_input()
    output = half.render(request)
    assert output.shape == request.frames.shape and output.dtype == np.uint8
    top, bottom, left, right = changed_box(request.frames, output)
    assert BOX[0] <= top and bottom <= BOX[1] and BOX[2] <= left and right <= BOX[3]
    monkeypatch.setenv("REDUB_DIT_DTYPE", "float16")
    with pytest.raises(EngineError) as error:
        DitRenderer()
    assert error.value.code == "invalid_option" and "float32, bfloat16" in error.value.message


def test_the_whole_frame_is_seen_when_it_fits_at_the_face_scale() -> None:
    # A lower face 150 px tall in 720p lands at the default face size (40): scale 0.267, the whole frame.
    view = plan_view(720, 1280, (400, 550, 560, 720), 384, 16)
    assert (view.top, view.bottom, view.left, view.right) == (0, 720, 0, 1280)
    assert (view.work_height, view.work_width) == (192, 336)
    # No cap: the whole frame whatever the scale.
    assert plan_view(720, 1280, (400, 420, 600, 630), 0, 16).is_whole(720, 1280)
    # A huge face is not shrunk below MIN_WORKING_SIDE on the longer side.
    view = plan_view(720, 1280, (0, 700, 200, 1000), 384, 16)
    assert view.is_whole(720, 1280) and (view.work_height, view.work_width) == (80, 128)


def test_a_small_face_in_a_large_frame_gets_a_window_at_the_trained_scale() -> None:
    # A 20 px lower face in 720p: the whole frame at 384 px would leave it 6 px tall. The view is a window
    # around it that fits the cap at scale 2 (40 px face), the face in its middle.
    box = (500, 520, 900, 930)
    view = plan_view(720, 1280, box, 384, 16)
    assert not view.is_whole(720, 1280)
    assert view.bottom - view.top == view.right - view.left == 192
    assert view.top <= box[0] and box[1] <= view.bottom and view.left <= box[2] and box[3] <= view.right
    assert abs((view.top + view.bottom) / 2 - 510) <= 1 and abs((view.left + view.right) / 2 - 915) <= 1
    assert (view.work_height, view.work_width) == (384, 384)
    # Near the frame's edge the window stays inside the frame.
    view = plan_view(720, 1280, (700, 720, 1250, 1280), 384, 16)
    assert (view.bottom, view.right) == (720, 1280)
    # A face that moves a lot (a wide box): the window holds CONTEXT_BOXES boxes and the scale gives way.
    view = plan_view(720, 1280, (500, 520, 300, 500), 384, 16)
    assert view.right - view.left == 600 and view.work_width == 384


def test_faces_are_scaled_to_the_size_the_checkpoint_was_trained_at() -> None:
    # The 150 px lower face of the test above, for a model trained on 65 px faces: scale 0.433.
    view = plan_view(720, 1280, (400, 550, 560, 720), 0, 16, face_pixels=65)
    assert view.is_whole(720, 1280) and (view.work_height, view.work_width) == (320, 560)
    # Under a 384 px cap that frame no longer fits at that scale: a window around the face does.
    view = plan_view(720, 1280, (400, 550, 560, 720), 384, 16, face_pixels=65)
    assert not view.is_whole(720, 1280) and view.work_width == 384
    assert abs(150 * view.work_height / (view.bottom - view.top) - 65) < 2  # 16-pixel multiples round it


def test_mask_bounding_box() -> None:
    masks = np.zeros((2, 10, 12), np.float32)
    assert mask_bounding_box(masks) is None
    masks[1, 3:5, 4:9] = 0.2
    assert mask_bounding_box(masks) == (3, 5, 4, 9)


class BoxMasks:
    def segment_masks(self, source_indices: np.ndarray, output_start: int) -> np.ndarray:
        masks = np.zeros((len(source_indices), 64, 96), np.float32)
        masks[:, 32:56, 32:64] = 1.0
        return masks


def test_the_engine_dubs_a_video_with_the_dit_renderer(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDUB_MODEL_PATH", str(checkpoint))
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")
    monkeypatch.setenv("REDUB_DIT_WORKING_SIZE", "48")
    video = write_video(tmp_path / "in.mp4", frames=13, width=96, height=64)
    audio = write_audio(tmp_path / "dub.wav", 0.52)
    options = DubOptions(
        renderer="dit",
        lossless=True,
        preset="ultrafast",
        segment_frames=9,
        segment_overlap=5,
        sync_mode="cut_off",
    )
    report = dub(video, audio, tmp_path / "out.mp4", options, mask_source=BoxMasks())
    assert report.frames_rendered >= 13
    source, output = decode_planes(video), decode_planes(tmp_path / "out.mp4")
    assert len(output) == 13
    outside = np.ones((64, 96), bool)
    outside[32:56, 32:64] = False
    for before, after in zip(source, output, strict=True):
        assert np.array_equal(before[0][outside], after[0][outside])
    assert any(not np.array_equal(before[0], after[0]) for before, after in zip(source, output, strict=True))


def test_pasting_the_box_equals_resizing_the_whole_frame() -> None:
    generated = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    frames = np.zeros((2, 48, 72, 3), np.uint8)
    box = (20, 41, 9, 50)
    pasted = paste_upsampled_box(frames, generated, box)
    whole = torch.nn.functional.interpolate(generated, size=(48, 72), mode="bicubic", align_corners=False)
    expected = (whole.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    top, bottom, left, right = box
    difference = np.abs(pasted[:, top:bottom, left:right].astype(int) - expected[:, top:bottom, left:right])
    assert difference.max() <= 1
    outside = np.ones((48, 72), bool)
    outside[top:bottom, left:right] = False
    assert not pasted[:, outside].any()


def test_the_feathered_edge_weighs_generated_pixels_by_the_mask_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real pipeline whose VAE decoder paints one colour (its last convolution: zero weights, that colour
    # as bias), so the output shows exactly the weight each generated pixel was given.
    colour = (200, 60, 120)
    pipeline = build_pipeline("tiny", seed=0)
    conv_out = pipeline.vae.decoder.conv_out
    with torch.no_grad():
        conv_out.weight.zero_()
        conv_out.bias.copy_(torch.tensor(colour) / 255 * 2 - 1)
    checkpoint = tmp_path / "constant"
    pipeline.save_pretrained(checkpoint)
    write_model_card(checkpoint, ModelCard(name="constant", config="tiny", trained=False))
    monkeypatch.setenv("REDUB_MODEL_PATH", str(checkpoint))
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")
    monkeypatch.setenv("REDUB_DIT_WORKING_SIZE", "48")
    monkeypatch.setenv("REDUB_DIT_DEVICE", "cpu")
    video = write_video(tmp_path / "in.mp4", frames=13, width=96, height=64)
    audio = write_audio(tmp_path / "dub.wav", 0.52)
    masks = FeatheredBox(96, 64, (12, 56, 24, 80), band=8)
    options = DubOptions(
        renderer="dit",
        lossless=True,
        preset="ultrafast",
        segment_frames=9,
        segment_overlap=5,
        sync_mode="cut_off",
    )
    dub(video, audio, tmp_path / "out.mp4", options, mask_source=masks)
    info = probe_video(video)
    colours = ColourSpace(info.colorspace, info.color_range, info.height, info.pix_fmt)
    colour_luma = float(colours.to_yuv(np.array([[colour]], np.uint8))[0][0, 0])
    source, output = decode_planes(video), decode_planes(tmp_path / "out.mp4")
    expected, ratios = luma_weights(source, output, colour_luma, masks.mask)
    lumas = np.stack([planes[0] for planes in output])
    assert np.abs(lumas - expected).max() <= 1  # rounding only
    assert ratios.size > 1000
    assert abs(float(ratios.mean()) - 1) < 0.02  # blended twice, it was about the mean mask (~0.5)


def test_motion_frames_are_the_previous_rendering_as_shown() -> None:
    sources = np.full((2, 4, 4, 3), 100, np.uint8)
    rendered = np.full((2, 4, 4, 3), 200, np.uint8)
    masks = np.zeros((3, 4, 4), np.float32)
    masks[:, 1:3, 1:3] = 0.25
    masks[:, 2, 2] = 1.0
    shown = shown_frames(sources, rendered, masks)
    assert shown.shape == sources.shape
    assert (shown[:, 0] == 100).all()
    assert (shown[:, 1, 1] == 125).all()
    assert (shown[:, 2, 2] == 200).all()


def test_segments_longer_than_the_trained_clips_are_rendered_as_chained_windows(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "windowed"
    shutil.copytree(checkpoint, copy)
    write_model_card(copy, ModelCard(name="windowed", config="tiny", trained=True, max_frames=9))
    monkeypatch.setenv("REDUB_MODEL_PATH", str(copy))
    monkeypatch.setenv("REDUB_DIT_WORKING_SIZE", "32")
    windowed = DitRenderer()
    calls: list[tuple[int, int]] = []
    pipeline = windowed.pipeline

    class Recording:
        def __getattr__(self, name: str) -> object:
            return getattr(pipeline, name)

        def __call__(self, frames: torch.Tensor, *args: object, **kwargs: object) -> object:
            motion = kwargs.get("motion_frames")
            calls.append((frames.shape[1], 0 if motion is None else motion.shape[1]))  # type: ignore[union-attr]
            return pipeline(frames, *args, **kwargs)

    windowed.pipeline = Recording()  # type: ignore[assignment]
    request = segment_input(frame_count=13)
    output = windowed.render(request)
    assert output.shape == request.frames.shape
    # Frames [0, 9) and [7, 13) (padded to 9 for the causal VAE); the second continues the first's motion
    # from its last 2 frames (a quarter of a 9-frame window).
    assert calls == [(9, 0), (9, 2)]


def test_a_dub_can_name_its_checkpoint_by_folder_and_an_unknown_model_is_refused(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")
    monkeypatch.setenv("REDUB_DIT_WORKING_SIZE", "32")
    monkeypatch.delenv("REDUB_MODEL_PATH", raising=False)
    assert DitRenderer(str(checkpoint)).pipeline.transformer.config.num_layers == 2
    with pytest.raises(EngineError) as error:
        create_renderer("dit", "no-such-model")
    assert error.value.code == "invalid_option" and "no-such-model" in error.value.message


def test_a_cancel_stops_the_sampling_of_a_segment(renderer: DitRenderer) -> None:
    asked: list[int] = []

    def should_cancel() -> bool:
        asked.append(1)
        return True

    request = segment_input()
    request.should_cancel = should_cancel
    with pytest.raises(EngineError) as raised:
        renderer.render(request)
    assert raised.value.code == "canceled" and len(asked) == 1  # after the first denoising step


def test_a_cancel_during_the_only_segments_render_stops_the_dub(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One segment: the engine's own check before it passes, so only the renderer can notice the cancel."""
    monkeypatch.setenv("REDUB_MODEL_PATH", str(checkpoint))
    monkeypatch.setenv("REDUB_ALLOW_UNTRAINED_MODEL", "1")
    monkeypatch.setenv("REDUB_DIT_WORKING_SIZE", "48")
    video = write_video(tmp_path / "in.mp4", frames=13, width=96, height=64)
    audio = write_audio(tmp_path / "dub.wav", 0.52)
    options = DubOptions(renderer="dit", preset="ultrafast", segment_frames=81, sync_mode="cut_off")
    stages: list[str] = []
    with pytest.raises(EngineError) as raised:
        dub(
            video,
            audio,
            tmp_path / "out.mp4",
            options,
            mask_source=BoxMasks(),
            progress=lambda stage, _fraction: stages.append(stage),
            should_cancel=lambda: "rendering" in stages,
        )
    assert raised.value.code == "canceled"
    assert list(tmp_path.glob("*out.mp4*")) == []
