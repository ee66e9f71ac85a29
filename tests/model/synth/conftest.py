"""Pairs shared by the synth tests: made once per session (each takes about a second)."""

from __future__ import annotations

import pytest

from model.synth import SynthPair, make_pair


@pytest.fixture(scope="session")
def clean_pair() -> SynthPair:
    return make_pair("clean", 3)
