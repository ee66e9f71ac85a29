"""The fleet simulator's logic, on made-up times: the limits it must meet and the bottleneck it names."""

from __future__ import annotations

import pytest

from bench.fleet import Measured, Work, simulate, single_assembly_s, target_segments, work_for

SEGMENTS = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0]
WORK = Work(segments_s=SEGMENTS, download_s=2.0, chunks_s=[6.0], join_s=0.0)


def test_one_worker_takes_the_download_every_segment_and_the_assembly() -> None:
    result = simulate(WORK, 1)
    # The CPU worker downloads the inputs too before its first chunk.
    assert result.wall_s == pytest.approx(2.0 + 25.0 + 2.0 + 6.0)
    assert result.parts == {"download": 4.0, "segments": 25.0, "assembly": 6.0, "join": 0.0}
    assert result.bottleneck == "segments" and result.busy == pytest.approx(25.0 / 27.0)


@pytest.mark.parametrize("workers", [7, 8, 1000])
def test_enough_workers_take_the_longest_segment(workers: int) -> None:
    result = simulate(WORK, workers)
    assert result.wall_s == pytest.approx(2.0 + 9.0 + 2.0 + 6.0)
    assert result.parts["segments"] == pytest.approx(9.0)


def test_two_workers_share_the_queue_first_in_first_out() -> None:
    # 0: 3 (2-5), 1: 1 (2-3), 4 (3-7), 1 (5-6), 5 (6-11), 9 (7-16), 2 (11-13): the last ends at 16.
    result = simulate(WORK, 2)
    assert result.wall_s == pytest.approx(16.0 + 8.0)
    assert result.parts["segments"] == pytest.approx(14.0)


def test_chunks_share_the_cpu_workers_after_the_last_segment_and_the_join_follows() -> None:
    work = Work(segments_s=[4.0], download_s=1.0, chunks_s=[3.0] * 5, join_s=2.0)
    # Segment 1-5; two CPU workers download 5-6, then chunks 6-9, 6-9, 9-12, 9-12, 12-15; join 15-17.
    result = simulate(work, 1, cpu_workers=2)
    assert result.wall_s == pytest.approx(17.0)
    assert result.parts == {"download": 2.0, "segments": 4.0, "assembly": 9.0, "join": 2.0}
    assert result.bottleneck == "assembly"
    assert simulate(work, 1, cpu_workers=5).parts["assembly"] == pytest.approx(3.0)


def test_a_gpu_worker_decodes_and_loads_the_cached_inputs_before_its_first_segment_only() -> None:
    work = Work(segments_s=[1.0] * 4, download_s=2.0, chunks_s=[3.0], join_s=0.0, segment_setup_s=0.5)
    # Two GPU workers: inputs 0-2.5, then two segments each, 2.5-4.5; the CPU worker's download, its chunk.
    result = simulate(work, 2)
    assert result.parts == {"download": 4.5, "segments": 2.0, "assembly": 3.0, "join": 0.0}
    assert result.wall_s == pytest.approx(2.5 + 2.0 + 2.0 + 3.0)


def test_the_bottleneck_is_the_largest_part_of_the_critical_path() -> None:
    assert simulate(Work([1.0] * 10, 0.5, [30.0], 1.0), 10).bottleneck == "assembly"
    assert simulate(Work([1.0] * 10, 60.0, [3.0], 1.0), 10).bottleneck == "download"
    assert simulate(Work([1.0] * 10, 0.5, [1.0] * 4, 9.0), 10, 4).bottleneck == "join"


def test_more_workers_never_take_longer() -> None:
    work = Work(SEGMENTS, 2.0, [5.0, 1.0, 3.0, 2.0, 4.0], 1.0)
    walls = [simulate(work, workers, cpu_workers).wall_s for workers in range(1, 9) for cpu_workers in (1, 2)]
    assert walls[::2] == sorted(walls[::2], reverse=True)
    assert all(two <= one for one, two in zip(walls[::2], walls[1::2], strict=True))


def test_ten_minutes_cut_into_81_frame_segments_and_scaled() -> None:
    assert target_segments(81, 81, 8) == 1
    assert target_segments(82, 81, 8) == 2
    assert target_segments(15000, 81, 8) == 206
    measured = Measured(
        render_s_per_frame=[1.0, 2.0],
        segment_cpu_s={"dub track decode": 1.0, "frame decode": 3.0},
        patch_bytes=1e6,
        analysis_bytes=1e6,
        assembly_s_per_frame=0.01,
        assembly_stages_s_per_frame={"encode": 0.01},
        output_bytes_per_frame=1e5,
        chunk_s_per_frame=0.008,
        join_s_per_frame=0.001,
        join_fixed_s=1.0,
    )
    work = work_for(
        measured,
        gpu_speed=81.0,
        cpu_speed=2.0,
        bandwidth_bytes_s=1e6,
        dispatch_s=0.5,
        input_bytes=7e6,
        chunk_frames=1000,
    )
    assert len(work.segments_s) == 206
    # 0.5 dispatch + 3/2 frame decode + the 1 MB patch at 1 MB/s, then 81 frames at 1 or 2 s/frame / 81.
    assert work.segments_s[:3] == pytest.approx([4.0, 5.0, 4.0])
    assert work.download_s == pytest.approx(7.0)
    # Once per GPU worker (its input cache keeps them): the dub track decoded, 1/2, the 1 MB analysis fetched.
    assert work.segment_setup_s == pytest.approx(1.5)
    # 15 chunks of 1000 frames: 0.5 dispatch + 15 patches (206 / 15 + 1) and 1000 frames' output at 1 MB/s,
    # 1000 frames at 0.008 / 2 s.
    assert work.chunks_s == pytest.approx([0.5 + 15 + 100 + 4.0] * 15)
    # 0.5 dispatch + (1 s + 15000 frames at 0.001 s) / 2 + the output down and up at 1 MB/s.
    assert work.join_s == pytest.approx(0.5 + 8.0 + 3000)
    assert single_assembly_s(measured, cpu_speed=2.0, bandwidth_bytes_s=1e6) == pytest.approx(75 + 1500)
