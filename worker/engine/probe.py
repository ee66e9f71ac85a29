"""Probe media files: what the container holds, and an exact index of the video's frames.

The frame index comes from demuxing packets (no decoding), so it is cheap even for long videos and tells the
true frame count and timestamps of variable-frame-rate sources whose headers only give an average.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from worker.engine.errors import (
    INPUT_NOT_FOUND,
    INVALID_MEDIA,
    MEDIA_TOO_LARGE,
    MEDIA_TOO_LONG,
    NO_AUDIO_STREAM,
    NO_VIDEO_STREAM,
    EngineError,
)

log = logging.getLogger(__name__)

# Cap on how long the network is waited for when PyAV opens a URL-like input.
_OPEN_TIMEOUT_S = 30.0
# A decoder may reject a damaged packet and go on with the next, as players do. Past this many rejected
# packets, and this share of those read, the file is corrupt rather than scratched: fail, don't play repeats.
_REJECTED_PACKETS_ALLOWED = 8
_REJECTED_SHARE_ALLOWED = 0.1
# Demuxers that read other files (or the network) on a file's say-so: playlists, concat scripts, session
# descriptions. An input must be media itself, not a pointer that makes the worker read what sits beside it.
_REFERENCING_FORMATS = frozenset({"concat", "hls", "dash", "imf", "sdp", "rtsp", "rtp"})
# Streams a file may hold (video, dubs, subtitles...); the demuxer is told to stop one past it, so a file
# declaring thousands costs nothing before it is refused.
MAX_STREAMS = 32


@dataclass(frozen=True)
class Limits:
    """What the engine accepts; every limit is a setting of the caller."""

    max_duration_s: float = 3600.0
    max_pixels: int = 4096 * 2304
    max_frames: int = 3600 * 120


@dataclass(frozen=True)
class VideoInfo:
    container: str
    codec: str
    width: int  # coded size; `rotation` says how it is displayed
    height: int
    pix_fmt: str
    frame_rate: Fraction  # average over the whole stream
    frame_count: int
    duration_s: float
    rotation: int  # counter-clockwise degrees to turn a decoded frame upright (0, 90, 180, 270)
    variable_frame_rate: bool
    time_base: Fraction
    color_primaries: int
    color_trc: int
    colorspace: int
    color_range: int
    has_audio: bool
    start_pts: int  # the container's timestamp of the first frame; `timestamps` count from it
    # Presentation timestamps of every frame in `time_base`, starting at 0, in presentation order.
    # None when the container gives no usable timestamps: frames are then numbered in decode order.
    timestamps: np.ndarray | None = field(repr=False, compare=False)
    # How long the last frame is shown (`time_base` ticks), as its packet says; None when the container does
    # not say. An animated GIF may hold its last picture longer than the others.
    last_frame_ticks: int | None = None

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as a viewer shows the video."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height

    def summary(self) -> dict[str, Any]:
        facts = asdict(self)
        facts.pop("timestamps")
        facts["frame_rate"] = float(self.frame_rate)
        facts["time_base"] = str(self.time_base)
        return facts


@dataclass(frozen=True)
class AudioInfo:
    container: str
    codec: str
    sample_rate: int
    channels: int
    duration_s: float  # from headers; the decoded length is authoritative

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def ffmpeg_reason(error: av.FFmpegError) -> str:
    """FFmpeg's reason for a failure, without the file's full path (a server detail no client should see)."""
    return error.strerror or type(error).__name__


def decoder_pixel_cap(max_pixels: int) -> int:
    """The decoders' own picture-size cap: the limit plus room for codecs that allocate aligned (padded)
    sizes; the exact limit is checked on the stream's declared size."""
    return max_pixels + max_pixels // 8


def open_container(path: Path, max_pixels: int = Limits.max_pixels) -> av.container.InputContainer:
    """Open a media file for reading, turning every failure into an EngineError.

    FFmpeg decodes a few frames while opening a file to learn its codecs: the decoders it opens then, and
    every decoder opened later on this container, refuse a picture larger than `max_pixels` (with slack)
    before allocating it, so a small file declaring one huge frame costs no memory."""
    if not path.is_file():
        raise EngineError(INPUT_NOT_FOUND, f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise EngineError(INVALID_MEDIA, f"{path.name} is empty")
    cap = {"max_pixels": str(decoder_pixel_cap(max_pixels))}
    try:
        container = av.open(
            str(path),
            metadata_errors="ignore",
            timeout=_OPEN_TIMEOUT_S,
            options=cap,
            container_options={"max_streams": str(MAX_STREAMS + 1)},
        )
    except av.FFmpegError as error:
        raise EngineError(
            INVALID_MEDIA, f"{path.name} is not a media file PyAV can read ({ffmpeg_reason(error)})"
        ) from error
    if _REFERENCING_FORMATS.intersection(container.format.name.split(",")):
        container.close()
        raise EngineError(
            INVALID_MEDIA, f"{path.name} is a {container.format.name} playlist that refers to other files"
        )
    if len(container.streams) > MAX_STREAMS:
        container.close()
        raise EngineError(
            MEDIA_TOO_LARGE, f"{path.name} has more than {MAX_STREAMS} streams; the limit is {MAX_STREAMS}"
        )
    for stream in container.streams:
        if stream.codec_context is not None:
            stream.codec_context.options = {**stream.codec_context.options, **cap}
    return container


def decode_frames(
    container: av.container.InputContainer, stream: av.VideoStream | av.AudioStream, path: Path
) -> Iterator[Any]:
    """Decode one stream, skipping packets its decoder rejects as invalid, within the bounds above."""
    packets = rejected = 0
    try:
        for packet in container.demux(stream):
            packets += 1
            try:
                frames = packet.decode()
            except av.InvalidDataError as error:
                rejected += 1
                if rejected > _REJECTED_PACKETS_ALLOWED and rejected > _REJECTED_SHARE_ALLOWED * packets:
                    raise EngineError(
                        INVALID_MEDIA,
                        f"{path.name}: {rejected} of {packets} {stream.type} packets are damaged "
                        f"({ffmpeg_reason(error)})",
                    ) from error
                continue
            yield from frames
    except av.FFmpegError as error:
        raise EngineError(
            INVALID_MEDIA, f"{path.name}: the {stream.type} cannot be decoded ({ffmpeg_reason(error)})"
        ) from error
    if rejected:
        log.warning(
            "damaged packets skipped",
            extra={"file": path.name, "stream": stream.type, "rejected": rejected, "packets": packets},
        )


def probe_video(path: Path, limits: Limits = Limits()) -> VideoInfo:
    """Probe a video (or still image) and index its frames; raise EngineError on anything unusable."""
    with open_container(path, limits.max_pixels) as container:
        if not container.streams.video:
            raise EngineError(NO_VIDEO_STREAM, f"{path.name} has no video stream")
        stream = container.streams.video[0]
        container_name = container.format.name
        if container.duration is not None and container.duration / av.time_base > limits.max_duration_s:
            raise _too_long(container.duration / av.time_base, limits)
        codec = stream.codec_context.codec.canonical_name
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > limits.max_pixels:
            raise EngineError(
                MEDIA_TOO_LARGE, f"video is {width}x{height}; the limit is {limits.max_pixels} pixels a frame"
            )
        time_base = stream.time_base or Fraction(1, 90000)
        average_rate = stream.average_rate
        timestamps, last_frame_ticks = _scan_timestamps(container, stream, path, limits)
        has_audio = bool(container.streams.audio)

    first = _decode_first_frame(path, limits.max_pixels)
    if first.width * first.height == 0:
        raise EngineError(INVALID_MEDIA, f"{path.name}: the video has no picture size")
    frame_count = len(timestamps)
    frame_rate = _frame_rate(average_rate, timestamps, time_base)
    usable = _timestamps_usable(timestamps)
    start_pts = 0
    if usable:
        stamps = np.sort(np.asarray(timestamps, dtype=np.int64))
        start_pts = int(stamps[0])
        stamps -= start_pts
        durations = np.diff(stamps)
        variable = bool(len(durations) > 1 and durations.std() > 0.1 * max(durations.mean(), 1))
        last_frame = last_frame_ticks * time_base if last_frame_ticks else 1 / frame_rate
        duration_s = float(stamps[-1] * time_base + last_frame)
    else:
        stamps = None
        last_frame_ticks = None
        variable = False
        duration_s = frame_count / float(frame_rate)
    if duration_s > limits.max_duration_s:
        raise _too_long(duration_s, limits)
    return VideoInfo(
        container=container_name,
        codec=codec,
        width=first.width,
        height=first.height,
        pix_fmt=first.format.name,
        frame_rate=frame_rate,
        frame_count=frame_count,
        duration_s=duration_s,
        rotation=int(first.rotation) % 360 // 90 * 90,
        variable_frame_rate=variable,
        time_base=time_base,
        color_primaries=int(first.color_primaries),
        color_trc=int(first.color_trc),
        colorspace=int(first.colorspace),
        color_range=int(first.color_range),
        has_audio=has_audio,
        start_pts=start_pts,
        timestamps=stamps,
        last_frame_ticks=last_frame_ticks,
    )


def probe_audio(path: Path, limits: Limits = Limits()) -> AudioInfo:
    """Probe the dub audio: any container with an audio stream (a video file with sound is fine)."""
    with open_container(path, limits.max_pixels) as container:
        if not container.streams.audio:
            raise EngineError(NO_AUDIO_STREAM, f"{path.name} has no audio stream")
        stream = container.streams.audio[0]
        duration_s = 0.0
        if container.duration is not None:
            duration_s = container.duration / av.time_base
        elif stream.duration is not None and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
        if duration_s > limits.max_duration_s:
            raise _too_long(duration_s, limits)
        context = stream.codec_context
        if not context.sample_rate:
            raise EngineError(INVALID_MEDIA, f"{path.name}: the audio stream has no sample rate")
        return AudioInfo(
            container=container.format.name,
            codec=context.codec.canonical_name,
            sample_rate=int(context.sample_rate),
            channels=int(context.channels or 1),
            duration_s=duration_s,
        )


def _too_long(seconds: float, limits: Limits) -> EngineError:
    return EngineError(
        MEDIA_TOO_LONG, f"media lasts {seconds:.1f} s; the limit is {limits.max_duration_s:.0f} s"
    )


def _scan_timestamps(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path, limits: Limits
) -> tuple[list[int | None], int | None]:
    """Presentation timestamps of every video packet, by demuxing only (no decoding), and the duration of
    the last one to be shown (None when its packet does not say)."""
    stamps: list[int | None] = []
    latest: int | None = None
    last_duration: int | None = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            stamps.append(packet.pts if packet.pts is not None else None)
            if packet.pts is not None and (latest is None or packet.pts > latest):
                latest, last_duration = packet.pts, packet.duration or None
            if len(stamps) > limits.max_frames:
                raise EngineError(MEDIA_TOO_LONG, f"video has more than {limits.max_frames} frames")
    except av.FFmpegError as error:
        raise EngineError(
            INVALID_MEDIA, f"{path.name} is truncated or corrupt ({ffmpeg_reason(error)})"
        ) from error
    if not stamps:
        raise EngineError(INVALID_MEDIA, f"{path.name}: the video stream holds no frames")
    return stamps, last_duration


def _timestamps_usable(stamps: list[int | None]) -> bool:
    """Timestamps can number frames only if every packet has one and no two are equal."""
    if any(stamp is None for stamp in stamps):
        return False
    return len(set(stamps)) == len(stamps)


def _frame_rate(average: Fraction | None, stamps: list[int | None], time_base: Fraction) -> Fraction:
    if average and 0 < average <= 1000:
        return Fraction(average).limit_denominator(1001)
    if _timestamps_usable(stamps) and len(stamps) > 1:
        ordered = sorted(stamp for stamp in stamps if stamp is not None)
        span = (ordered[-1] - ordered[0]) * time_base
        if span > 0:
            return Fraction((len(stamps) - 1) / span).limit_denominator(1001)
    return Fraction(25)


def _decode_first_frame(path: Path, max_pixels: int) -> av.VideoFrame:
    """Decode one frame: the codec must work, and frames carry rotation and colour tags."""
    with open_container(path, max_pixels) as container:
        stream = container.streams.video[0]
        size_known = stream.codec_context.width * stream.codec_context.height > 0
        try:
            frames = decode_frames(container, stream, path)
            frame = next(frames, None)
        except EngineError as error:
            if size_known:
                raise
            # FFmpeg could not even learn the picture size: damaged, or over the decoders' cap.
            raise EngineError(
                INVALID_MEDIA,
                f"{error.message}: the picture is damaged or larger than the limit of {max_pixels} pixels",
            ) from error
        if frame is not None:
            if frame.width * frame.height > max_pixels:
                raise EngineError(
                    MEDIA_TOO_LARGE,
                    f"video is {frame.width}x{frame.height}; the limit is {max_pixels} pixels a frame",
                )
            return frame
    raise EngineError(INVALID_MEDIA, f"{path.name}: no frame of the video could be decoded")
