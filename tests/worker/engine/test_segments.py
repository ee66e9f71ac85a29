import itertools

import pytest

from worker.engine.errors import EngineError
from worker.engine.segments import largest_valid_length, plan_segments, smallest_valid_length


@pytest.mark.parametrize("frame_count", [1, 2, 3, 5, 7, 9, 80, 81, 82, 83, 100, 250, 1000, 4097])
@pytest.mark.parametrize(("max_frames", "overlap"), [(81, 8), (33, 4), (17, 0), (5, 2)])
def test_segments_cover_the_timeline_with_valid_lengths(
    frame_count: int, max_frames: int, overlap: int
) -> None:
    segments = plan_segments(frame_count, max_frames, overlap)
    assert segments[0].start == 0
    assert segments[-1].end == frame_count
    for segment in segments:
        assert (segment.frame_count - 1) % 4 == 0
        assert segment.frame_count <= max_frames
    for earlier, later in itertools.pairwise(segments):
        assert later.start > earlier.start
        assert later.start <= earlier.end  # no gap
        if frame_count >= 2 * max_frames:
            assert earlier.end - later.start >= overlap - 1


def test_long_timelines_do_not_render_frames_much_more_than_once() -> None:
    segments = plan_segments(1000, 81, 8)
    rendered = sum(segment.frame_count for segment in segments)
    assert rendered < 1000 * 1.15


def test_segments_never_cross_a_cut() -> None:
    cuts = [40, 41, 300]
    segments = plan_segments(500, 81, 8, cuts)
    for segment in segments:
        assert not any(segment.start < cut < segment.end for cut in cuts)
    assert {segment.start for segment in segments} >= {0, 40, 41, 300}
    shots = [segment.shot for segment in segments]
    assert shots == sorted(shots) and shots[-1] == 3


@pytest.mark.parametrize(
    ("frames", "max_frames", "overlap", "message"),
    [
        (0, 81, 8, "nothing to plan: the output has no frames"),
        (10, 80, 8, "segment length must be 1+4k frames, got 80"),
        (10, -3, 0, "segment length must be 1+4k frames, got -3"),
        (10, 81, 81, "overlap must be in [0, 81), got 81"),
        (10, 81, -1, "overlap must be in [0, 81), got -1"),
    ],
)
def test_bad_plans_are_refused(frames: int, max_frames: int, overlap: int, message: str) -> None:
    with pytest.raises(EngineError) as raised:
        plan_segments(frames, max_frames, overlap)
    assert (raised.value.code, raised.value.message) == ("invalid_option", message)


def test_one_frame_segments_are_a_valid_plan() -> None:
    assert [(segment.start, segment.end) for segment in plan_segments(3, 1, 0)] == [(0, 1), (1, 2), (2, 3)]


def test_a_cut_after_the_first_frame_makes_a_one_frame_shot() -> None:
    segments = plan_segments(10, 9, 2, cuts=[1, 0, 10, 12])  # cuts at either end or past it change nothing
    assert [(segment.index, segment.start, segment.end, segment.shot) for segment in segments] == [
        (0, 0, 1, 0),
        (1, 1, 10, 1),
    ]


def test_valid_lengths_round_to_the_nearest_1_plus_4k() -> None:
    assert [smallest_valid_length(minimum) for minimum in (0, 1, 2, 5, 6, 53, 54)] == [1, 1, 5, 5, 9, 53, 57]
    assert [largest_valid_length(limit) for limit in (1, 4, 5, 8, 9, 81, 84)] == [1, 1, 5, 5, 9, 81, 81]


@pytest.mark.parametrize(
    ("frame_count", "plan"),
    [
        (81, [(0, 81)]),
        (98, [(0, 53), (45, 98)]),  # two segments need 53 frames each to share 8
        (100, [(0, 57), (43, 100)]),  # 54 frames each: 57 is the next 1+4k
        (200, [(0, 73), (64, 137), (127, 200)]),
    ],
)
def test_a_shot_is_split_into_the_shortest_evenly_spread_segments(
    frame_count: int, plan: list[tuple[int, int]]
) -> None:
    segments = plan_segments(frame_count)  # by default up to 81 frames, sharing 8
    assert [(segment.start, segment.end) for segment in segments] == plan
    assert [segment.index for segment in segments] == list(range(len(plan)))
