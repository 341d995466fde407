"""The scan's forked workers (nomira/sources/workers.py): results in job order whatever worker
made them and whenever, a job's exception raised in the parent with the worker's traceback, a
worker that dies reported (never a hang, never a result silently missing), no process left behind."""
import os
import signal
import time

import pytest

from nomira.sources import pipes, workers

pytestmark = pytest.mark.skipif(not workers.usable(), reason="POSIX fork only")


def slow_square(i):
    time.sleep(0.002 * ((i * 7) % 5))  # jobs finish out of order across workers
    return i * i, b"x" * (i * 997 % 70_000), str(i)


def boom(i):
    if i == 13:
        raise ValueError("job thirteen is bad")
    return i


def die(i):
    if i == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return i


def even(n, chunk):
    """Runs of `chunk` jobs (fewer in the last)."""
    return [(s, min(chunk, n - s)) for s in range(0, n, chunk)]


def alive(pids):
    out = []
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            out.append(done == 0)
        except ChildProcessError:
            out.append(False)
    return out


@pytest.mark.parametrize("n, n_workers, chunk", [(1, 1, 1), (50, 2, 1), (50, 2, 7), (200, 3, 4), (5, 4, 10)])
def test_results_in_job_order(n, n_workers, chunk):
    pool = workers.Forked(slow_square, list(range(n)), n_workers, even(n, chunk))
    try:
        assert list(pool) == [slow_square(i) for i in range(n)]  # (large payloads span many reads)
    finally:
        pids = list(pool.pids)
        pool.terminate()
    assert not any(alive(pids))


def test_a_jobs_exception_is_raised_with_the_workers_traceback():
    pool = workers.Forked(boom, list(range(40)), 2, even(40, 3))
    try:
        with pytest.raises(workers.WorkerError, match="job thirteen is bad") as info:
            list(pool)
        assert "ValueError" in str(info.value) and "Traceback" in str(info.value)
    finally:
        pool.terminate()


def test_a_worker_that_dies_is_reported_not_waited_for():
    pool = workers.Forked(die, list(range(20)), 2, even(20, 2))
    start = time.monotonic()
    try:
        with pytest.raises(workers.WorkerError, match="stopped before finishing"):
            list(pool)
    finally:
        pool.terminate()
    assert time.monotonic() - start < 10


def test_terminate_before_reading_stops_every_worker():
    pool = workers.Forked(slow_square, list(range(500)), 2, even(500, 1))
    pids = list(pool.pids)
    pool.terminate()
    assert pids and not any(alive(pids))


@pytest.mark.parametrize("sizes", [[1], [5] * 1000, [1 << 20] * 3, [10 << 20, 1, 1, 3 << 20, 1] * 40,
                                   [0] * 7, list(range(5000))])
def test_guided_runs_cover_every_job_once_and_end_short(sizes):
    runs = workers.guided(sizes, 2)
    assert [i for first, count in runs for i in range(first, first + count)] == list(range(len(sizes)))
    assert all(count >= 1 for _f, count in runs) and len(runs) <= workers.MAX_RUNS
    if sum(sizes) >= 64 << 20:  # a large history ends in runs of single files
        assert runs[-1][1] == 1 and runs[0][1] > 1


def test_runs_of_a_huge_history_stay_within_the_pipe():
    runs = workers.guided([1 << 20] * 20_000, 2)  # 20 GB in 20,000 files
    assert len(runs) <= workers.MAX_RUNS and sum(c for _f, c in runs) == 20_000


def test_result_pipes_hold_a_megabyte_where_linux_allows():
    """A worker writes up to 1 MB of results before it waits for the parent (64 KB by default: a
    worker of thousands of small files waited whenever the parent was writing the cache)."""
    import fcntl
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("pipe sizes are Linux's")
    with open("/proc/sys/fs/pipe-max-size") as fh:
        if int(fh.read()) < pipes.PIPE_BYTES:
            pytest.skip("pipe-max-size below 1 MB here")
    pool = workers.Forked(slow_square, list(range(20)), 2, even(20, 3))
    try:
        assert [fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) for fd in pool.fds] == [pipes.PIPE_BYTES] * 2
        assert list(pool) == [slow_square(i) for i in range(20)]
    finally:
        pool.terminate()


def test_widen_only_grows_a_pipe_and_leaves_other_files_alone(tmp_path):
    import fcntl
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("pipe sizes are Linux's")
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
        pipes.widen(w)
        with open("/proc/sys/fs/pipe-max-size") as fh:
            widest = int(fh.read())
        assert fcntl.fcntl(r, fcntl.F_GETPIPE_SZ) == (pipes.PIPE_BYTES if widest >= pipes.PIPE_BYTES else 4096)
        try:  # (past pipe-max-size only with CAP_SYS_RESOURCE: a reader's wider pipe is kept)
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4 * pipes.PIPE_BYTES)
        except PermissionError:
            pass
        else:
            pipes.widen(w)
            assert fcntl.fcntl(r, fcntl.F_GETPIPE_SZ) == 4 * pipes.PIPE_BYTES
    finally:
        os.close(r)
        os.close(w)
    with open(tmp_path / "f", "wb") as fh:
        pipes.widen(fh.fileno())  # (not a pipe: nothing happens, nothing raised)
