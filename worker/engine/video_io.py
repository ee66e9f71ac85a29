"""Frame-accurate video decoding and H.264 encoding, in the source's own YUV values.

Frames travel through the engine as 8-bit 4:2:0 planes exactly as the decoder produced them (after one
conversion for sources stored in another pixel format), so a pixel nobody changed is written back with the
value it was decoded with: there is no RGB round trip on the path from decoder to encoder.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from worker.engine.errors import INVALID_MEDIA, OUTPUT_FAILED, EngineError
from worker.engine.probe import VideoInfo, decode_frames, ffmpeg_reason, open_container

# A forward gap (in frames) below which decoding on beats seeking to the next keyframe.
_SEEK_THRESHOLD = 96
# Pixel formats whose planes are already 8-bit 4:2:0 and are kept as they are (yuvj420p is full-range 420).
_NATIVE_420 = ("yuv420p", "yuvj420p")


@dataclass
class Planes:
    """One frame as 8-bit 4:2:0 planes: luma (height, width), chroma (ceil(height/2), ceil(width/2))."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    def copy(self) -> Planes:
        return Planes(self.y.copy(), self.u.copy(), self.v.copy())


def frame_to_planes(frame: av.VideoFrame) -> Planes:
    if frame.format.name not in _NATIVE_420:
        frame = frame.reformat(format="yuv420p")
    arrays = []
    for plane in frame.planes:
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        arrays.append(rows[:, : plane.width].copy())  # copy: the decoder recycles its buffers
    return Planes(*arrays)


class FrameReader:
    """Returns source frames by index, decoding forward and seeking only when that is cheaper.

    Frames are numbered by presentation timestamp when the probe found unique ones, else in decode order.
    A frame the decoder never produces is replaced by the one before it, so callers always get exactly the
    frames they ask for and the output keeps the planned frame count.
    """

    def __init__(self, path: Path, info: VideoInfo, keep_recent: int = 16) -> None:
        self._path = path
        self._info = info
        # The last frames decoded: the next segment's overlap asks for them again, and a seek back to their
        # keyframe would decode up to a whole GOP a second time.
        self._recent: OrderedDict[int, Planes] = OrderedDict()
        self._keep_recent = keep_recent
        self._container: av.container.InputContainer | None = None
        self._next = 0  # index of the next frame `_sequence` yields
        self._open()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, indices: np.ndarray) -> list[Planes]:
        """Frames for the given source indices (any order, repeats allowed)."""
        wanted = {int(index) for index in indices}
        found = {index: self._recent[index] for index in wanted if index in self._recent}
        missing = wanted - found.keys()
        if not missing:
            return [found[int(index)] for index in indices]
        low, high = min(missing), max(missing)
        if low < self._next or low - self._next > _SEEK_THRESHOLD:
            self._seek(low)
        while self._next <= high:
            item = next(self._sequence, None)
            if item is None:
                raise EngineError(
                    INVALID_MEDIA, f"{self._path.name}: frame {self._next} could not be decoded"
                )
            index, planes = item
            self._next = index + 1
            self._remember(index, planes)
            if index in wanted:
                found[index] = planes
        return [found[int(index)] for index in indices]

    def _remember(self, index: int, planes: Planes) -> None:
        self._recent[index] = planes
        self._recent.move_to_end(index)
        while len(self._recent) > self._keep_recent:
            self._recent.popitem(last=False)

    def _open(self) -> None:
        self.close()
        self._container = open_container(self._path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._sequence = self._numbered_frames(from_start=True)
        self._next = 0

    def _seek(self, index: int) -> None:
        if self._info.timestamps is None or index == 0:
            self._open()  # no reliable timestamps: decode from the start
            return
        assert self._container is not None
        target = int(self._info.timestamps[index]) + self._info.start_pts
        try:
            self._container.seek(target, stream=self._stream, backward=True)
        except av.FFmpegError:
            self._open()  # a damaged index: decode from the start instead
            return
        sequence = self._numbered_frames(from_start=False)
        first = next(sequence, None)
        if first is None or first[0] > index:  # the seek overshot: decode from the start instead
            self._open()
            return
        self._sequence = itertools.chain([first], sequence)
        self._next = first[0]

    def _numbered_frames(self, *, from_start: bool) -> Iterator[tuple[int, Planes]]:
        """(index, planes) for consecutive indices, gaps filled by repeats.

        From the start of the file the indices begin at 0 (frames before the first decodable one repeat it);
        after a seek they begin at whatever frame the decoder gives first.
        """
        assert self._container is not None
        expected: int | None = 0 if from_start else None
        last: Planes | None = None
        decoded = 0
        try:
            for frame in decode_frames(self._container, self._stream, self._path):
                index = self._index_of(frame, decoded)
                decoded += 1
                if index is None or (expected is not None and index < expected):
                    continue  # a frame the probe did not count, or one before the seek target
                planes = frame_to_planes(frame)
                expected = index if expected is None else expected
                while expected < index:  # frames the decoder never produced
                    yield expected, last if last is not None else planes
                    expected += 1
                yield index, planes
                last, expected = planes, index + 1
        except av.FFmpegError as error:
            raise EngineError(
                INVALID_MEDIA, f"{self._path.name}: decoding failed ({ffmpeg_reason(error)})"
            ) from error
        while last is not None and expected is not None and expected < self._info.frame_count:
            yield expected, last  # the stream ended early: hold the last picture
            expected += 1

    def _index_of(self, frame: av.VideoFrame, decoded: int) -> int | None:
        stamps = self._info.timestamps
        if stamps is None:
            return decoded
        if frame.pts is None:
            return None
        relative = frame.pts - self._info.start_pts
        position = int(np.searchsorted(stamps, relative))
        if position < len(stamps) and stamps[position] == relative:
            return position
        return None


class VideoWriter:
    """Encodes Planes to H.264 yuv420p, keeping the source's timestamps, rotation and colour tags."""

    def __init__(
        self,
        container: av.container.OutputContainer,
        info: VideoInfo,
        *,
        time_base: Fraction,
        lossless: bool,
        crf: int,
        preset: str,
    ) -> None:
        # 4:2:0 H.264 needs even sizes: an odd edge is padded by repeating the last row/column.
        self.width = info.width + info.width % 2
        self.height = info.height + info.height % 2
        self._pad = (info.height % 2, info.width % 2)
        stream = container.add_stream("libx264", rate=info.frame_rate)
        stream.width = self.width
        stream.height = self.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        context = stream.codec_context
        context.time_base = time_base
        context.color_primaries = info.color_primaries
        context.color_trc = info.color_trc
        context.colorspace = info.colorspace
        context.color_range = info.color_range
        options = {"preset": preset}
        options.update({"qp": "0"} if lossless else {"crf": str(crf)})
        context.options = options
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        self._info = info
        self._stream = stream
        self._container = container
        self._time_base = time_base
        # x264 does not carry a frame's duration to its packet, and the muxer then guesses the last frame's
        # from the one before: a source that holds its last picture would end early. Frame durations by pts.
        self._durations: dict[int, int] = {}

    def write(self, planes: Planes, pts: int, duration: int) -> None:
        frame = av.VideoFrame.from_ndarray(self._pack(planes), format="yuv420p")
        frame.pts = pts
        frame.time_base = self._time_base
        frame.duration = duration
        self._durations[pts] = duration
        frame.color_range = self._info.color_range
        frame.colorspace = self._info.colorspace
        self._mux(self._stream.encode(frame))

    def flush(self) -> None:
        self._mux(self._stream.encode(None))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            if packet.pts is not None and packet.pts in self._durations:
                packet.duration = self._durations.pop(packet.pts)
        try:
            self._container.mux(packets)
        except av.FFmpegError as error:
            raise EngineError(OUTPUT_FAILED, f"writing the video failed ({ffmpeg_reason(error)})") from error

    def _pack(self, planes: Planes) -> np.ndarray:
        """Contiguous I420 buffer of shape (height * 3 / 2, width)."""
        y, u, v = planes.y, planes.u, planes.v
        if any(self._pad):
            y = np.pad(y, ((0, self._pad[0]), (0, self._pad[1])), mode="edge")
        return np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(-1, self.width)
