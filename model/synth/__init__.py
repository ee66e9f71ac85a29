"""Synthetic talking-face pairs with exact ground truth (see README, "Synthetic corpus").

Usage::

    pair = make_pair("clean", seed=0, split="train", size=(256, 256), seconds=3.0)
    write_pair(pair, Path("out/clean/0"))
    again = read_pair(Path("out/clean/0"))
"""

from model.synth.data import CONDITIONS, MOUTH_PARAMETERS, SAMPLE_RATE, SPLITS, SynthClip, SynthPair
from model.synth.io import read_pair, write_pair
from model.synth.pairs import SynthError, make_pair

__all__ = [
    "CONDITIONS",
    "MOUTH_PARAMETERS",
    "SAMPLE_RATE",
    "SPLITS",
    "SynthClip",
    "SynthError",
    "SynthPair",
    "make_pair",
    "read_pair",
    "write_pair",
]
