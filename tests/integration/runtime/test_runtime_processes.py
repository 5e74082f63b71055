"""Container processes: whole process groups are stopped, and orphans of a crash are killed."""

import asyncio
import os
import signal
import subprocess
import sys
import time

from mlkube.local.runtime import processes

# A parent that starts a sleeping child and waits: the child must not survive the group.
PARENT = (
    "import subprocess, sys, time; "
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "print(c.pid, flush=True); time.sleep(60)"
)


def alive(pid):
    fields = processes.stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def gone_within(pid, *, seconds):
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(pid), f"process {pid} is still alive"


def wait_for_line(path, deadline=10):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} stayed empty")


def test_stop_terminates_the_whole_group_and_reports_the_signal(tmp_path):
    async def scenario():
        process = await processes.spawn(
            [sys.executable, "-c", PARENT],
            env=dict(os.environ),
            cwd=tmp_path,
            log_path=tmp_path / "logs" / "0.log",
            records=tmp_path / "records",
            owner="pod/c",
        )
        child = int(await asyncio.to_thread(wait_for_line, tmp_path / "logs" / "0.log"))
        assert (tmp_path / "records" / f"{process.pid}.json").exists()
        code = await process.stop(grace_seconds=5)
        return code, child, process

    code, child, process = asyncio.run(scenario())
    assert code == 128 + signal.SIGTERM
    assert not alive(process.pid)
    gone_within(child, seconds=5)  # the SIGKILL of the group is delivered asynchronously
    assert not (tmp_path / "records" / f"{process.pid}.json").exists()


def test_exit_code_and_output_are_captured(tmp_path):
    async def scenario():
        process = await processes.spawn(
            [sys.executable, "-c", "print('out'); import sys; print('err', file=sys.stderr); sys.exit(3)"],
            env=dict(os.environ),
            cwd=tmp_path,
            log_path=tmp_path / "0.log",
            records=tmp_path / "r",
            owner="x",
        )
        return await process.wait()

    assert asyncio.run(scenario()) == 3
    assert (tmp_path / "0.log").read_text().split() == ["out", "err"]


def test_orphans_recorded_by_a_crashed_runtime_are_killed(tmp_path):
    records = tmp_path / "records"
    log = tmp_path / "orphan.log"
    # A "runtime" that spawns a container and is SIGKILLed before it can stop it.
    runtime = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import asyncio, os, sys, pathlib
from mlkube.local.runtime import processes
async def main():
    await processes.spawn([sys.executable, "-c", {PARENT!r}], env=dict(os.environ),
                          cwd=pathlib.Path({str(tmp_path)!r}), log_path=pathlib.Path({str(log)!r}),
                          records=pathlib.Path({str(records)!r}), owner="pod-uid/main")
    await asyncio.sleep(60)
asyncio.run(main())
""",
        ]
    )
    child = int(wait_for_line(log))
    runtime.kill()
    runtime.wait()
    assert alive(child)
    assert processes.kill_orphans(records) == ["pod-uid/main"]
    gone_within(child, seconds=5)
    assert list(records.glob("*.json")) == []


def test_stale_record_of_a_reused_pid_kills_nothing(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        (records / f"{sleeper.pid}.json").write_text(f'{{"pid": {sleeper.pid}, "started": 1, "owner": "old"}}')
        assert processes.kill_orphans(records) == []
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_group_rss_sums_the_members():
    usage = processes.group_rss({os.getpgrp()})
    assert usage[os.getpgrp()] > 10 * 2**20
