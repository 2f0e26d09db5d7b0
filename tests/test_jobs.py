"""Indexing jobs for front-ends without worker threads: progress, the writer lock, cancel."""

from __future__ import annotations

import time

import pytest
from conftest import make_folder

from desktop_app.core.engine import Engine
from desktop_app.core.errors import UsageError
from desktop_app.core.jobs import Job, JobQueue
from desktop_app.core.storage.lock import WriterLock


@pytest.fixture
def engine(settings):
    engine = Engine.open(settings, create=True)
    yield engine
    engine.close()


@pytest.fixture
def jobs(engine):
    jobs = JobQueue(lambda: engine, "the test's jobs")
    yield jobs
    jobs.close()


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def finish(job: Job) -> Job:
    wait_until(lambda: job.finished)
    return job


def test_a_job_indexes_its_folder_and_keeps_its_report(jobs, engine, aero_corpus) -> None:
    job = finish(jobs.submit([str(aero_corpus)]))
    record = job.to_dict()
    assert record["state"] == "done" and record["error"] == ""
    assert record["report"]["added"] == 4
    assert record["progress"]["files_done"] == 4
    assert engine.search("wing stall", k=1).hits[0].path.endswith("stall.txt")
    assert jobs.get(job.id) is job


def test_paths_are_checked_when_the_job_is_submitted(jobs, tmp_path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        jobs.submit([str(tmp_path / "missing")])


def test_a_job_waits_for_the_writer_lock_says_who_holds_it_and_cancels_while_waiting(jobs, settings,
                                                                                       aero_corpus) -> None:
    with WriterLock(settings.index_dir, purpose="a terminal's index"):
        job = jobs.submit([str(aero_corpus)])
        wait_until(lambda: job.progress is not None and job.progress.phase == "waiting")
        assert "a terminal's index" in job.progress.current
        queued = jobs.submit([str(aero_corpus)])
        jobs.cancel(queued.id)
        assert queued.state == "cancelled"
        jobs.cancel(job.id)
        assert finish(job).state == "cancelled"
    assert job.report.cancelled and job.report.added == 0


def test_without_waiting_a_held_lock_fails_the_job_naming_the_holder(jobs, settings, aero_corpus) -> None:
    with WriterLock(settings.index_dir, purpose="the window"):
        job = finish(jobs.submit([str(aero_corpus)], wait=False))
    assert job.state == "failed" and "the window" in job.error


def test_a_job_without_an_engine_fails_with_a_reason(tmp_path) -> None:
    jobs = JobQueue(lambda: None, "the test's jobs")
    try:
        job = finish(jobs.submit([str(make_folder(tmp_path, "docs", {"a.txt": "text"}))]))
    finally:
        jobs.close()
    assert job.state == "failed" and "try again" in job.error


def test_an_update_merges_into_the_update_still_queued(jobs, engine, aero_corpus) -> None:
    finish(jobs.submit([str(aero_corpus)]))
    (aero_corpus / "slats.txt").write_text("Leading-edge slats delay the stall at high angles of attack.")
    (aero_corpus / "noise.txt").write_text("Chevrons on the nozzle lower jet noise.")
    jobs.hold()
    first = jobs.submit([str(aero_corpus / "slats.txt")], kind="update", events=3)
    second = jobs.submit([str(aero_corpus / "noise.txt")], kind="update", events=2)
    assert second is first and first.events == 5
    assert first.paths == sorted([str(aero_corpus / "slats.txt"), str(aero_corpus / "noise.txt")])
    forced = jobs.submit([str(aero_corpus / "stall.txt")], kind="update", rebuild=True)
    assert forced is not first, "a re-encoding keeps to its own job"
    jobs.release()
    report = finish(first).report
    assert (report.added, report.updated) == (1, 1)
    assert finish(forced).report.updated == 1
    after = jobs.submit([str(aero_corpus / "slats.txt")], kind="update")
    assert after is not first, "a job that ran takes no more paths"
    finish(after)


def test_listeners_see_a_job_start_progress_and_finish_in_order(jobs, aero_corpus) -> None:
    from desktop_app.core.jobs import JobListener

    seen: list[str] = []
    jobs.listen(JobListener(started=lambda job: seen.append("started"),
                            progress=lambda job, progress: seen.append("progress"),
                            finished=lambda job: seen.append(job.state)))
    finish(jobs.submit([str(aero_corpus)]))
    wait_until(lambda: seen[-1:] == ["done"])
    assert seen[0] == "started" and "progress" in seen and seen.count("done") == 1


def test_a_held_queue_starts_nothing_and_a_job_put_first_runs_first(jobs, aero_corpus) -> None:
    order: list[str] = []
    from desktop_app.core.jobs import JobListener

    jobs.listen(JobListener(started=lambda job: order.append(job.kind)))
    jobs.hold()
    index = jobs.submit([str(aero_corpus)])
    refresh = jobs.submit([], kind="refresh", first=True)
    assert index.state == refresh.state == "queued" and jobs.busy
    jobs.release()
    finish(index)
    assert order == ["refresh", "index"]


def test_pause_holds_the_queue_and_cancel_all_clears_it(jobs, aero_corpus) -> None:
    jobs.pause()
    job = jobs.submit([str(aero_corpus)])
    later = jobs.submit([str(aero_corpus)])
    assert jobs.paused and job.state == "queued", "nothing starts while paused"
    jobs.cancel_all()
    assert not jobs.paused and job.state == later.state == "cancelled" and not jobs.busy


def test_remove_jobs_forget_a_folder(jobs, engine, aero_corpus) -> None:
    finish(jobs.submit([str(aero_corpus)]))
    job = finish(jobs.submit([str(aero_corpus)], kind="remove"))
    assert job.state == "done" and job.report.removed == 4 and not engine.roots()


def test_a_full_disk_and_an_unexpected_error_read_as_sentences() -> None:
    import errno

    from desktop_app.core import UsageError, readable

    assert readable(OSError(errno.ENOSPC, "No space left on device")).startswith("the disk is full")
    assert readable(UsageError("give a query")) == "give a query"
    assert readable(KeyError("x")) == "unexpected KeyError: 'x'"
