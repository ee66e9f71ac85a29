"""Scene analysis: shots, face tracks, who speaks, the speaker map and lower-face masks (a plain library).

Import from the modules (`analysis.analysis`, `analysis.options`): this package file stays empty so that
reading the options does not load torch and the face models.
"""
