"""Scene analysis: shots, face tracks, who speaks, the speaker map and lower-face masks (a plain library)."""

from worker.engine.analysis.analysis import Analysis, analyze
from worker.engine.analysis.options import AnalysisOptions, PinBox, SpeakerPin
from worker.engine.analysis.storage import load_analysis, save_analysis

__all__ = ["Analysis", "AnalysisOptions", "PinBox", "SpeakerPin", "analyze", "load_analysis", "save_analysis"]
