"""The face model comes from an installed wheel and is checked against its pinned checksum."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.engine.analysis.models import MODEL_SHA256, load_model_files, model_path, verify_model
from worker.engine.errors import MODEL_UNAVAILABLE, EngineError


def test_the_installed_model_verifies() -> None:
    path = model_path()
    assert path.name == "face_landmarker.task"
    assert len(verify_model(path)) > 3_000_000
    files = load_model_files()
    assert files.detector and files.landmarks


def test_a_changed_model_file_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "face_landmarker.task"
    content = bytearray(model_path().read_bytes())
    content[1000] ^= 0xFF
    tampered.write_bytes(bytes(content))
    with pytest.raises(EngineError) as raised:
        verify_model(tampered)
    assert raised.value.code == MODEL_UNAVAILABLE
    assert MODEL_SHA256 in raised.value.message
