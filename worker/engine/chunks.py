"""Assembly in chunks: the output's frames cut into ranges that CPU workers encode at once, then joined.

Each chunk pastes the patches of the segments it covers into the source, blends their overlaps and encodes its
range of output frames, video only, as one closed run of GOPs that starts on a keyframe (`encode_chunk`);
a frame's value depends only on the segments that cover it, so it is the frame `assemble` would encode.
`join_chunks` copies the chunks' packets into one MP4 without decoding them and encodes the AAC track beside
them, once. Lossless chunks therefore decode to exactly the frames of one assembly; lossy ones differ only
where x264 would have placed its keyframes and spent its bits otherwise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av

from worker.engine.audio_io import AudioTrackWriter
from worker.engine.errors import CANCELED, OUTPUT_FAILED, EngineError
from worker.engine.fanout import JobPlan, PasteStep, SegmentPatch
from worker.engine.pipeline import (
    DubOptions,
    DubReport,
    ProgressCallback,
    StageTimer,
    encode_frame_range,
    open_output,
    write_verified,
)
from worker.engine.probe import ffmpeg_reason, open_container, probe_audio, probe_video
from worker.engine.segments import Segment


@dataclass(frozen=True)
class Chunk:
    """Output frames [start, end), encoded by one task."""

    index: int
    start: int
    end: int

    @property
    def frame_count(self) -> int:
        return self.end - self.start


def plan_chunks(plan: JobPlan, chunk_frames: int) -> list[Chunk]:
    """Ranges of at most about `chunk_frames` output frames, spread evenly (no short last one); a boundary
    moves to a shot cut within a quarter of a chunk, where a keyframe costs nothing (x264 puts one at a
    scene change anyway). `chunk_frames` <= 0: one chunk."""
    total = plan.length.output_frames
    if chunk_frames <= 0 or total <= chunk_frames:
        return [Chunk(0, 0, total)]
    count = math.ceil(total / chunk_frames)
    cuts = [later.start for earlier, later in itertools.pairwise(plan.segments) if later.shot != earlier.shot]
    reach = chunk_frames // 4
    bounds = [0]
    for number in range(1, count):
        nominal = round(number * total / count)
        near = [cut for cut in cuts if abs(cut - nominal) <= reach]
        bound = min(near, key=lambda cut: (abs(cut - nominal), cut)) if near else nominal
        if bounds[-1] < bound < total:
            bounds.append(bound)
    bounds.append(total)
    return [Chunk(index, start, end) for index, (start, end) in enumerate(itertools.pairwise(bounds))]


def encode_chunk(
    video: Path,
    destination: Path,
    options: DubOptions,
    plan: JobPlan,
    chunk: Chunk,
    load_patch: Callable[[Segment], SegmentPatch | None],
    should_cancel: Callable[[], bool] | None = None,
) -> dict[str, float]:
    """Encode the chunk's frames (video only, the options' quality) into `destination`; returns the time
    its stages took. `load_patch` is asked only for the segments that reach into the chunk."""
    timer = StageTimer()
    with timer("probe"):
        video_info = probe_video(video, options.limits)
    encode_frame_range(
        destination,
        video,
        video_info,
        plan.length,
        plan.segments,
        options,
        PasteStep(load_patch, timer),
        timer,
        chunk.start,
        chunk.end,
        should_cancel,
    )
    return timer.seconds


def join_chunks(
    chunks: Sequence[Chunk],
    fetch: Callable[[Chunk], Path],
    video: Path,
    audio: Path,
    output: Path,
    options: DubOptions,
    plan: JobPlan,
    frames_rendered: int,
    *,
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> DubReport:
    """The chunks' video packets, in order and unchanged, with the dub's AAC track, as one MP4. `fetch`
    gives a chunk's encoded file; it is asked for one chunk at a time, in order, and the file is read once.

    Every chunk must hold its frames exactly, start on a keyframe and carry the same codec parameters as the
    first (same encoder settings), or the dub fails as `output_failed` instead of playing back broken."""
    timer = StageTimer()
    with timer("probe"):
        video_info = probe_video(video, options.limits)
        audio_info = probe_audio(audio, options.limits)
    bounds = [0, *(chunk.end for chunk in chunks)]
    if [chunk.start for chunk in chunks] != bounds[:-1] or bounds[-1] != plan.length.output_frames:
        raise EngineError(OUTPUT_FAILED, "the chunks do not cover the output's frames once each")

    def join(partial: Path) -> int:
        with open_output(partial) as container:
            stream: av.VideoStream | None = None
            audio_writer: AudioTrackWriter | None = None
            extradata = b""
            for position, chunk in enumerate(chunks):
                if should_cancel is not None and should_cancel():
                    raise EngineError(CANCELED, "the dub was canceled")
                if progress is not None:
                    progress("assembling", position / len(chunks))
                with timer("fetch"):
                    path = fetch(chunk)
                with timer("join"), _open_piece(path) as piece:
                    source = piece.streams.video[0]
                    if stream is None:  # the output's streams, in `dub()`'s order: video, then audio
                        extradata = bytes(source.codec_context.extradata or b"")
                        stream = container.add_stream_from_template(source)
                        audio_writer = AudioTrackWriter(
                            container, audio, audio_info, plan.length.audio_used_seconds
                        )
                    if bytes(source.codec_context.extradata or b"") != extradata:
                        raise EngineError(
                            OUTPUT_FAILED, f"chunk {chunk.index} was encoded with other settings"
                        )
                    assert audio_writer is not None
                    _copy_packets(container, piece, stream, audio_writer, chunk)
            assert audio_writer is not None
            with timer("encode"):
                audio_writer.finish(plan.length.output_seconds)
        return frames_rendered

    rendered, facts = write_verified(output, join, timer)
    if progress is not None:
        progress("done", 1.0)
    return plan.report(video_info, audio_info, facts, timer, rendered)


def _copy_packets(
    container: av.container.OutputContainer,
    piece: av.container.InputContainer,
    stream: av.VideoStream,
    audio_writer: AudioTrackWriter,
    chunk: Chunk,
) -> None:
    """A chunk's packets into the output as they are, the audio encoded up to each one's time."""
    count = 0
    for packet in piece.demux(piece.streams.video[0]):
        if packet.dts is None:
            continue  # the demuxer's end-of-stream marker
        if count == 0 and not packet.is_keyframe:
            raise EngineError(OUTPUT_FAILED, f"chunk {chunk.index} does not start on a keyframe")
        count += 1
        seconds = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
        packet.stream = stream
        try:
            container.mux(packet)
        except av.FFmpegError as error:
            raise EngineError(OUTPUT_FAILED, f"joining the chunks failed ({ffmpeg_reason(error)})") from error
        audio_writer.write_until(seconds)
    if count != chunk.frame_count:
        raise EngineError(OUTPUT_FAILED, f"chunk {chunk.index} holds {count} frames, not {chunk.frame_count}")


def _open_piece(path: Path) -> av.container.InputContainer:
    try:
        return open_container(path)
    except EngineError as error:
        raise EngineError(OUTPUT_FAILED, f"a chunk cannot be read ({error.message})") from error
