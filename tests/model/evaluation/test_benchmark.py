"""Scoring a dub end to end through the real engine, on a talking pair whose right answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.evaluation.benchmark import PairFiles, Truth, score_pair
from model.evaluation.frames import engine_rgb_frames
from model.evaluation.metrics import PSNR_CAP_DB, pearson
from model.evaluation.mouth import measure_opening
from model.synth import make_pair, write_pair
from tests.model.evaluation.conftest import TalkingPair
from tests.worker.engine.analysis.footage import load_speech, write_clip
from worker.engine.pipeline import DubOptions
from worker.engine.renderers import SegmentInput, register_renderer

OPTIONS = DubOptions(lossless=True, sync_mode="silence", segment_frames=29, preset="ultrafast")


class _PaintWhite:
    """Paints everything white: only what the masks let through reaches the output."""

    name = "paint-white-eval-test"
    changes_pixels = True

    def render(self, segment: SegmentInput) -> np.ndarray:
        return np.full_like(segment.frames, 255)


def test_the_measured_mouth_follows_the_drawn_jaw(talking_pair: TalkingPair) -> None:
    measured = measure_opening(talking_pair.truth, talking_pair.truth_scores.landmarks)
    assert np.isfinite(measured).all()
    assert pearson(measured, talking_pair.truth_opening) > 0.8


def test_the_truth_scores_perfect(talking_pair: TalkingPair, tmp_path: Path) -> None:
    # The truth itself, dubbed with its own audio by a renderer that changes nothing: a perfect dub.
    files = PairFiles(talking_pair.truth, talking_pair.dub_audio, talking_pair.truth)
    scores = score_pair(files, talking_pair.truth_scores, OPTIONS, False, tmp_path / "out.mp4")
    assert scores["sync_r"] == pytest.approx(1.0) and scores["sync_offset_frames"] == 0
    assert scores["source_sync_r"] == pytest.approx(1.0)  # the source is the truth here
    assert scores["lower_face_psnr_db"] == PSNR_CAP_DB
    assert scores["outside_mask_changed_pixels"] == 0
    assert scores["frames"] == 60 and len(scores["segments"]) == 3
    assert scores["seam_flicker"] == pytest.approx(scores["truth_seam_flicker"])
    assert scores["speaker_found"] == {"output": 1.0, "truth": 1.0}


def test_a_frozen_mouth_scores_badly(talking_pair: TalkingPair, tmp_path: Path) -> None:
    files = PairFiles(talking_pair.frozen, talking_pair.dub_audio, talking_pair.truth)
    scores = score_pair(files, talking_pair.truth_scores, OPTIONS, False, tmp_path / "out.mp4")
    assert scores["sync_r"] < 0.3
    assert scores["lower_face_psnr_db"] < 25


def test_the_source_mouth_says_the_wrong_words(talking_pair: TalkingPair, tmp_path: Path) -> None:
    files = PairFiles(talking_pair.source, talking_pair.dub_audio, talking_pair.truth)
    scores = score_pair(files, talking_pair.truth_scores, OPTIONS, False, tmp_path / "out.mp4")
    assert scores["sync_r"] < 0.4
    assert scores["outside_mask_changed_pixels"] == 0 and scores["lower_face_psnr_db"] < 25


def test_a_renderer_changes_only_the_masked_face(talking_pair: TalkingPair, tmp_path: Path) -> None:
    register_renderer(_PaintWhite.name, lambda _model: _PaintWhite())
    files = PairFiles(talking_pair.source, talking_pair.dub_audio, talking_pair.truth)
    options = DubOptions(
        renderer=_PaintWhite.name, lossless=True, sync_mode="silence", segment_frames=29, preset="ultrafast"
    )
    scores = score_pair(files, talking_pair.truth_scores, options, True, tmp_path / "out.mp4")
    # The floor is the source's own mouth, measured apart from the painted output.
    unpainted = score_pair(files, talking_pair.truth_scores, OPTIONS, False, tmp_path / "plain.mp4")
    assert scores["source_sync_r"] == unpainted["source_sync_r"] == unpainted["sync_r"]
    # Every pixel outside the engine's masks (on its chroma grid) is the source's; the mouth is painted over.
    assert scores["outside_mask_changed_pixels"] == 0
    assert scores["lower_face_psnr_db"] < 15
    assert scores["sync_r"] < 0.3  # a white blob has no lips to measure, or no motion


@pytest.fixture(scope="module")
def synthetic_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[PairFiles, Truth, np.ndarray]:
    """A held-out clean pair from the generator the benchmark runs on, and its true mouth opening."""
    pair = make_pair("clean", 0, "heldout", size=(360, 640), seconds=2.0)
    directory = tmp_path_factory.mktemp("synthetic")
    write_pair(pair, directory)
    return PairFiles.in_directory(directory), Truth.of(pair.target), pair.target.opening


def test_synthetic_truth_is_perfect_and_a_frozen_mouth_is_not(
    synthetic_pair: tuple[PairFiles, Truth, np.ndarray], tmp_path: Path
) -> None:
    files, truth, opening = synthetic_pair
    # The landmarks measure the generator's mouths: what makes sync_r mean anything.
    assert pearson(measure_opening(files.truth, truth.landmarks), opening) > 0.85
    perfect = PairFiles(files.truth, files.dub_audio, files.truth)
    scores = score_pair(perfect, truth, OPTIONS, False, tmp_path / "perfect.mp4")
    assert scores["sync_r"] == pytest.approx(1.0) and scores["lower_face_psnr_db"] == PSNR_CAP_DB
    # The truth's first frame held still: the face stays, the mouth never moves.
    frozen = tmp_path / "frozen.mp4"
    first = next(engine_rgb_frames(files.truth))
    write_clip(frozen, (first for _ in range(len(opening))), audio=load_speech(files.dub_audio))
    scores = score_pair(
        PairFiles(frozen, files.dub_audio, files.truth), truth, OPTIONS, False, tmp_path / "f.mp4"
    )
    assert scores["sync_r"] < 0.3
