"""The benchmark's result as a plain-text table (one row per condition)."""

from __future__ import annotations

from model.evaluation.benchmark import BenchmarkResult

_COLUMNS = (
    ("condition", "{}"),
    ("clips", "{}"),
    ("sync r", "{:.3f}"),
    ("offset", "{:+d}"),
    ("source sync r", "{:.3f}"),
    ("lower-face PSNR dB", "{:.2f}"),
    ("outside changed px", "{}"),
    ("occluder PSNR dB", "{:.2f}"),
    ("listener changed px", "{}"),
    ("seam flicker", "{:.2f}"),
    ("truth seam flicker", "{:.2f}"),
)


def format_table(result: BenchmarkResult) -> str:
    """A Markdown table (it reads as plain text too); '-' where a measure does not apply."""
    rows = [
        [
            condition.name,
            condition.clips,
            condition.sync_r,
            condition.sync_offset_frames,
            condition.source_sync_r,
            condition.lower_face_psnr_db,
            condition.outside_mask_changed_pixels,
            condition.occluder_psnr_db,
            condition.listener_changed_pixels,
            condition.seam_flicker,
            condition.truth_seam_flicker,
        ]
        for condition in result.conditions
    ]
    header = "| " + " | ".join(name for name, _ in _COLUMNS) + " |"
    rule = "|" + "|".join(" --- " for _ in _COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        cells = [
            "-" if value is None else form.format(value)
            for value, (_, form) in zip(row, _COLUMNS, strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    summary = result.summary()
    figures = [
        f"{label} {'-' if summary[key] is None else form.format(summary[key])}"
        for label, key, form in (
            ("sync r", "sync_r", "{:.3f}"),
            ("source sync r", "source_sync_r", "{:.3f}"),
            ("lower-face PSNR", "lower_face_psnr_db", "{:.2f} dB"),
            ("outside changed", "outside_mask_changed_pixels", "{} px"),
            ("occluder PSNR", "occluder_psnr_db", "{:.2f} dB"),
            ("listener changed", "listener_changed_pixels", "{} px"),
            ("seam flicker", "seam_flicker", "{:.2f}"),
        )
    ]
    lines.append("")
    lines.append(f"over {summary['conditions']} conditions: " + ", ".join(figures))
    settings = result.settings
    checkpoint = f", checkpoint {settings.checkpoint}" if settings.checkpoint is not None else ""
    lines.append(
        f"renderer {settings.renderer}{checkpoint}; held-out seeds 0-{settings.seeds - 1}, "
        f"{settings.seconds:g} s clips, {settings.segment_frames}-frame segments; {result.seconds:.0f} s"
    )
    return "\n".join(lines)
