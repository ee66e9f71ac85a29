"""Stable error codes that only analysis raises (the shared ones live in worker/engine/errors.py)."""

from __future__ import annotations

NO_FACE = "no_face"  # on_no_face=fail and some frames have no usable face
SPEAKER_NOT_FOUND = "speaker_not_found"  # a pinned speaker matches no face track
MODEL_UNAVAILABLE = "model_unavailable"  # the face model package is missing or its checksum is wrong
CANCELED = "canceled"
