"""Every error code Redub gives, what it means and what to do about it: the source of docs/errors.md
(`python -m app.core.error_catalog > docs/errors.md`). tests/test_docs.py checks that this catalog, the
codes the code raises and that page agree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: str
    # An HTTP problem's status ("" where the code is never an HTTP answer).
    status: str
    # Where it is seen: "request" (a problem answer), "job" (`error.code` of a failed dub or preflight),
    # "cli" (`redub … --json`).
    where: tuple[str, ...]
    retryable: str
    meaning: str
    action: str


CATALOG: tuple[ErrorCode, ...] = (
    # --- Requests -----------------------------------------------------------------------------------
    ErrorCode(
        "invalid_json",
        "400",
        ("request",),
        "no",
        "The body does not parse as JSON.",
        "Fix the JSON; `errors` says where parsing stopped.",
    ),
    ErrorCode(
        "invalid_multipart",
        "400",
        ("request",),
        "no",
        "The upload's multipart body is malformed.",
        "Send `multipart/form-data` with the file in the field `file` (`curl -F file=@talk.mp4`).",
    ),
    ErrorCode(
        "invalid_cursor",
        "400",
        ("request",),
        "no",
        "The `cursor` is not one this API gave out.",
        "Pass `next_cursor` from the previous page back unchanged.",
    ),
    ErrorCode(
        "invalid_idempotency_key",
        "400",
        ("request",),
        "no",
        "The `Idempotency-Key` header is empty, too long or has other characters.",
        "Use 1-255 of `A-Z a-z 0-9 . _ ~ : -`, for example a UUID.",
    ),
    ErrorCode(
        "unauthorized",
        "401",
        ("request",),
        "no",
        "No key, an unknown key or a revoked key.",
        "Send `Authorization: Bearer rdb_…` with an active key (`redub keys list`).",
    ),
    ErrorCode(
        "invalid_signature",
        "403",
        ("request",),
        "no",
        "A download link of the embedded mode's local storage is altered or has expired.",
        "Read the dub again (`GET /v1/dubs/{id}`) or call `GET /v1/dubs/{id}/output` for a fresh link.",
    ),
    ErrorCode(
        "not_found",
        "404",
        ("request", "cli"),
        "no",
        "No such dub, preflight, file, delivery or path, or one of another account (never `403`). "
        "From `redub keys` or `redub train`: no such key, run or folder.",
        "Check the id and that the key belongs to the account that made it.",
    ),
    ErrorCode(
        "method_not_allowed",
        "405",
        ("request",),
        "no",
        "The path does not take this method.",
        "See `/docs` or `/openapi.json` for the methods each path takes.",
    ),
    ErrorCode(
        "http_error",
        "4xx",
        ("request",),
        "no",
        "Another HTTP error raised by the web framework itself.",
        "Read `detail`; the request does not match what the API expects.",
    ),
    ErrorCode(
        "dub_not_finished",
        "409",
        ("request",),
        "yes",
        "`DELETE /v1/dubs/{id}` on a dub that is still queued or processing.",
        "Cancel it (`POST /v1/dubs/{id}/cancel`), wait until it reads `canceled`, then delete it.",
    ),
    ErrorCode(
        "not_cancelable",
        "409",
        ("request",),
        "no",
        "The dub has already succeeded, failed or been canceled.",
        "Nothing to cancel: read its `status`.",
    ),
    ErrorCode(
        "output_not_ready",
        "409",
        ("request",),
        "while queued or processing",
        "The dub has no output: not yet (queued, processing) or never (failed, canceled).",
        "Poll `GET /v1/dubs/{id}` or wait for `dub.succeeded`; a failed dub's `error` says why.",
    ),
    ErrorCode(
        "preflight_not_ready",
        "409",
        ("request",),
        "while queued or processing",
        "The preflight has no frame: not yet, or never (it failed).",
        "Poll `GET /v1/dubs/preflight/{id}` until it reads `succeeded`.",
    ),
    ErrorCode(
        "idempotency_in_progress",
        "409",
        ("request",),
        "yes",
        "A request with this `Idempotency-Key` is still being answered.",
        "Retry shortly with the same key and body; you get the first answer.",
    ),
    ErrorCode(
        "output_expired",
        "410",
        ("request",),
        "no",
        "The output was deleted when its retention period ended (`REDUB_RETENTION_DAYS`).",
        "Dub again; download outputs before `output.expires_at`.",
    ),
    ErrorCode(
        "frame_expired",
        "410",
        ("request",),
        "no",
        "The preflight's frame was deleted when its retention period ended (`REDUB_RETENTION_DAYS`).",
        "Run the preflight again for a new frame.",
    ),
    ErrorCode(
        "file_too_large",
        "413",
        ("request",),
        "no",
        "The upload is larger than `REDUB_MAX_UPLOAD_BYTES` (2 GiB by default).",
        "Send a smaller file (shorter, or re-encoded), or a URL.",
    ),
    ErrorCode(
        "unsupported_media_type",
        "415",
        ("request",),
        "no",
        "A body not sent as `application/json`, or an upload that is not `multipart/form-data`.",
        "Set `Content-Type: application/json` (uploads: multipart with the field `file`).",
    ),
    ErrorCode(
        "validation_error",
        "422",
        ("request",),
        "no",
        "A field is missing, of the wrong type or out of range; `param` names the first, `errors` all.",
        "Fix the fields `errors` lists; the reference (`/docs`) gives each field's rules.",
    ),
    ErrorCode(
        "unknown_model",
        "422",
        ("request",),
        "no",
        "`model` names no model this server has.",
        "Use an `id` from `GET /v1/models`, or leave `model` out for the default.",
    ),
    ErrorCode(
        "file_not_found",
        "422",
        ("request",),
        "no",
        "`video_file_id` or `audio_file_id` is unknown, deleted, expired or another account's.",
        "Upload the file again (`POST /v1/files`) and use the new id.",
    ),
    ErrorCode(
        "url_not_allowed",
        "422",
        ("request", "job"),
        "no",
        "A media URL that is not public `http(s)`: another scheme, credentials in it, or a host that "
        "resolves to a private address (also after a redirect, which fails the job).",
        "Give a public `http(s)` URL (a presigned S3 link works), or upload the file.",
    ),
    ErrorCode(
        "webhook_url_not_allowed",
        "422",
        ("request",),
        "no",
        "`webhook_url` breaks the same rules as media URLs.",
        "Give a public `https` endpoint.",
    ),
    ErrorCode(
        "not_media",
        "422",
        ("request", "job"),
        "no",
        "The upload, or what a URL answered, is not a video or audio file (an HTML page, text…).",
        "Point at the media file itself; an upload must be the file's bytes.",
    ),
    ErrorCode(
        "idempotency_key_reused",
        "422",
        ("request",),
        "no",
        "This `Idempotency-Key` was used with another body or another endpoint within 24 h.",
        "Use a new key for a new request; reuse a key only to retry the same request.",
    ),
    ErrorCode(
        "rate_limited",
        "429",
        ("request",),
        "yes",
        "More requests this minute than the key's limit (reads have their own, larger budget).",
        "Wait `Retry-After` seconds; watch `RateLimit-Remaining`. Prefer webhooks to fast polling.",
    ),
    ErrorCode(
        "concurrency_limited",
        "429",
        ("request",),
        "yes",
        "The key already has as many unfinished dubs as it may (`redub keys create --max-concurrent`).",
        "Start the dub when one of yours ends (a webhook tells you), or ask for a higher limit.",
    ),
    ErrorCode(
        "internal_error",
        "500",
        ("request", "job"),
        "yes",
        "Something failed on our side.",
        "Retry with backoff (with the same `Idempotency-Key`); if it lasts, report the `X-Request-Id`.",
    ),
    ErrorCode(
        "database_unavailable",
        "503",
        ("request",),
        "yes",
        "The service cannot reach its database for a moment (a restart or a failover); nothing was changed.",
        "Retry after `Retry-After` seconds (with the same `Idempotency-Key` for a `POST`).",
    ),
    # --- Jobs: a failed dub's or preflight's `error.code` -------------------------------------------
    ErrorCode(
        "fetch_failed",
        "",
        ("job",),
        "for a refused connection, 5xx, 408, 425, 429",
        "An input URL could not be downloaded: no such host, refused, an HTTP error, too many redirects. "
        "The message starts with the input (`video_url: …`).",
        "Check that the URL opens from the public internet; retry when `retryable`.",
    ),
    ErrorCode(
        "fetch_timeout",
        "",
        ("job",),
        "yes",
        "An input download took longer than `REDUB_FETCH_TIMEOUT_S`.",
        "Retry, host the file somewhere faster, or upload it (`POST /v1/files`).",
    ),
    ErrorCode(
        "fetch_too_large",
        "",
        ("job",),
        "no",
        "An input is larger than `REDUB_FETCH_MAX_BYTES`.",
        "Send a shorter or re-encoded file.",
    ),
    ErrorCode(
        "canceled",
        "",
        ("job", "cli"),
        "no",
        "The dub was canceled (its `status` is `canceled`), or the command was interrupted.",
        "Nothing to fix; dub again if you want the result.",
    ),
    ErrorCode(
        "worker_lost",
        "",
        ("job",),
        "yes",
        "The worker dubbing it stopped (`REDUB_MAX_JOB_ATTEMPTS` times in a row).",
        "Retry once; a dub that keeps failing this way likely breaks the worker: report its id.",
    ),
    ErrorCode(
        "worker_disk_full",
        "",
        ("job",),
        "yes",
        "The worker's temporary disk filled up while dubbing (`REDUB_MAX_JOB_ATTEMPTS` times).",
        "Retry later; operators give `REDUB_WORK_DIR` more room, or send the dub to a worker that has it.",
    ),
    ErrorCode(
        "deadline_exceeded",
        "",
        ("job",),
        "yes",
        "The dub was still processing `REDUB_JOB_DEADLINE_S` after it started (6 hours by default).",
        "Retry later or dub a shorter video; a dub that misses it every time: report its id.",
    ),
    ErrorCode(
        "invalid_media",
        "",
        ("job", "cli"),
        "no",
        "An input cannot be opened or decoded (damaged, truncated or an unknown format).",
        "Re-encode it, for example `ffmpeg -i in.mov -c:v libx264 -c:a aac out.mp4`.",
    ),
    ErrorCode(
        "no_video_stream",
        "",
        ("job", "cli"),
        "no",
        "The video input has no video stream.",
        "Give a video file (or a still image) as the video.",
    ),
    ErrorCode(
        "no_audio_stream",
        "",
        ("job", "cli"),
        "no",
        "The audio input has no audio stream.",
        "Give an audio file, or a video with sound, as the audio.",
    ),
    ErrorCode(
        "media_too_long",
        "",
        ("job", "cli"),
        "no",
        "An input is longer than the key's `max_duration_s` (or the engine's limit of an hour).",
        "Split it, or ask for a key with a higher `--max-duration-s`.",
    ),
    ErrorCode(
        "media_too_large",
        "",
        ("job", "cli"),
        "no",
        "A frame is larger than 4096x2304 pixels, or the file has more than 32 streams.",
        "Scale the video down (for example to 1920x1080) or drop extra streams.",
    ),
    ErrorCode(
        "input_not_found",
        "",
        ("job", "cli"),
        "no",
        "An uploaded input was deleted before the worker read it; on the command line, no such file.",
        "Upload it again (or fix the path) and dub again.",
    ),
    ErrorCode(
        "no_face",
        "",
        ("job", "cli"),
        "no",
        "`on_no_face: fail` and some frames have no usable face; the message says how many and where.",
        "Trim those frames, or use `on_no_face: passthrough` to leave them unchanged.",
    ),
    ErrorCode(
        "speaker_not_found",
        "",
        ("job", "cli"),
        "no",
        "A `speakers` pin matches no face track.",
        "Run a preflight and pin a `track_id` from `report.frame.faces` or `report.analysis.tracks`.",
    ),
    ErrorCode(
        "model_unavailable",
        "",
        ("job", "cli"),
        "no",
        "The worker does not have the model's files, or their checksum is wrong.",
        "Choose another model from `GET /v1/models`; operators install the checkpoint on every worker.",
    ),
    ErrorCode(
        "renderer_failed",
        "",
        ("job", "cli"),
        "no",
        "The renderer gave frames of the wrong shape or failed on a segment.",
        "Report the dub id; try the `passthrough` model to get the new audio meanwhile.",
    ),
    ErrorCode(
        "output_failed",
        "",
        ("job", "cli"),
        "no",
        "The output could not be encoded or written (on the command line: the output path).",
        "Check the output folder is writable and has space; report the dub id otherwise.",
    ),
    # --- Command line only --------------------------------------------------------------------------
    ErrorCode(
        "invalid_option",
        "",
        ("cli",),
        "no",
        "An option is out of range or contradicts another (`--crf 80`, an empty `--speakers`…).",
        "Fix the option; `redub COMMAND --help` lists the valid values.",
    ),
    ErrorCode(
        "database_unreachable",
        "",
        ("cli",),
        "no",
        "`redub keys` cannot reach `REDUB_DATABASE_URL`.",
        "Start the database or fix the URL; for the embedded mode pass `--data-dir`.",
    ),
    ErrorCode(
        "account_not_found",
        "",
        ("cli",),
        "no",
        "`redub keys create --account` names an account no key belongs to.",
        "Use the account of an existing key (`redub keys list`), or leave `--account` out.",
    ),
)

_SECTIONS = (
    ("request", "Request errors", "The answer is an `application/problem+json` with this `code`."),
    ("job", "Job errors", "A failed dub's or preflight's `error: {code, message, retryable}`."),
    ("cli", "Command line", '`redub … --json` prints `{"error": {"code", "message"}}` and exits 1.'),
)


_EXAMPLE = """{
  "type": "https://docs.redub.dev/errors/validation_error",
  "title": "Unprocessable Content",
  "status": 422,
  "code": "validation_error",
  "detail": "The request is not valid; see `errors`.",
  "retryable": false,
  "param": "sync_mode",
  "errors": [{"loc": ["body", "sync_mode"], "message": "Input should be 'auto', …", "type": "literal_error"}]
}"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """docs/errors.md."""
    lines = [
        "# Error codes",
        "",
        "<!-- Generated: edit app/core/error_catalog.py, then "
        "`python -m app.core.error_catalog > docs/errors.md`. -->",
        "",
        "Every error carries a stable `code` (match on it, not on the message) and `retryable`: whether the "
        "same request may succeed later. A problem about the request's content also names the field: "
        "`param` (the first, dotted: `speakers.0.point.x`) and `errors: [{loc, message, type}]` (all).",
        "",
        "```json",
        _EXAMPLE,
        "```",
    ]
    for where, title, intro in _SECTIONS:
        lines += ["", f"## {title}", "", intro, ""]
        columns = ["code", "status", "retryable", "meaning", "what to do"]
        if where != "request":
            columns.remove("status")
        if where == "cli":
            columns.remove("retryable")
        lines += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        for entry in CATALOG:
            if where not in entry.where:
                continue
            values = {
                "code": f"`{entry.code}`",
                "status": entry.status,
                "retryable": entry.retryable,
                "meaning": _cell(entry.meaning),
                "what to do": _cell(entry.action),
            }
            lines.append("| " + " | ".join(values[column] for column in columns) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
