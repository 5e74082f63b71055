"""One container's runs on real processes: termination message, OOM kill, restarts."""

import asyncio
import os
import time

from mlkube.local.runtime import containers, images, probes, processes

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"terminationGracePeriodSeconds": 2}}


def launch_of(spec, tmp_path):
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True, exist_ok=True)
    env = {"PATH": images.search_path(os.environ["PATH"]), "MLKUBE_CONTAINER_ROOT": str(root)}
    return containers.launch_for(spec, pod=POD, root=root, env=env, log_dir=tmp_path / "logs", records=tmp_path / "records")


def container(spec, changes=None):
    return containers.Container(
        spec,
        pod=POD,
        pod_ip="127.0.0.1",
        restart_count=0,
        on_change=lambda: changes.append(1) if changes is not None else None,
        memory_poll=0.05,
    )


def test_termination_message_is_read_from_the_container_path(tmp_path):
    spec = {
        "name": "main",
        "image": "python:3.11",
        "command": [
            "python",
            "-c",
            "from mlkube.common import containerpath; "
            "containerpath.resolve('/dev/termination-log').write_text('bad input: x'); "
            "raise SystemExit(2)",
        ],
    }
    c = container(spec)
    outcome = asyncio.run(c.run_once(launch_of(spec, tmp_path)))
    assert (outcome.exit_code, outcome.reason, outcome.message) == (2, "Error", "bad input: x")
    assert c.status()["state"]["terminated"]["message"] == "bad input: x"


def test_fallback_to_logs_on_error(tmp_path):
    spec = {
        "name": "main",
        "image": "python",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "command": ["python", "-c", "print('line 1'); print('boom'); raise SystemExit(1)"],
    }
    outcome = asyncio.run(container(spec).run_once(launch_of(spec, tmp_path)))
    assert outcome.message == "line 1\nboom"


def test_memory_limit_kills_with_oomkilled(tmp_path):
    spec = {
        "name": "hog",
        "image": "python",
        "resources": {"limits": {"memory": "64Mi"}},
        "command": ["python", "-c", "import time; b = bytearray(256 * 2**20); time.sleep(30)"],
    }
    outcome = asyncio.run(container(spec).run_once(launch_of(spec, tmp_path)))
    assert (outcome.exit_code, outcome.reason) == (137, "OOMKilled")


def test_working_dir_and_variable_expansion(tmp_path):
    spec = {
        "name": "main",
        "image": "python",
        "workingDir": "/work/dir",
        "command": ["python", "-c", "import os, sys; print(os.getcwd(), sys.argv[1])", "$(PATH_X)"],
    }
    launch = launch_of({**spec}, tmp_path)
    assert launch.cwd == tmp_path / "root" / "work" / "dir" and launch.cwd.is_dir()
    assert launch.argv[-1] == "$(PATH_X)"  # unknown variables stay as written


def test_always_restarts_with_back_off_and_counts(tmp_path):
    spec = {"name": "crash", "image": "python", "command": ["python", "-c", "raise SystemExit(1)"]}
    c = container(spec)
    backoff = containers.Backoff(base=0.05, limit=0.1)
    waits = []

    async def scenario():
        task = asyncio.create_task(c.run_until_done(lambda: launch_of(spec, tmp_path), restart_policy="Always", backoff=backoff))
        while c.restart_count < 2:
            if "waiting" in c.state:
                waits.append(c.state["waiting"]["reason"])
            await asyncio.sleep(0.005)
        await c.stop(1)
        return await asyncio.wait_for(task, 5)

    last = asyncio.run(scenario())
    assert last.exit_code in (1, 143)
    assert "CrashLoopBackOff" in waits
    assert c.last_state["terminated"]["exitCode"] == 1
    assert sorted(p.name for p in (tmp_path / "logs").iterdir())[:2] == ["0.log", "1.log"]


def test_on_failure_stops_after_success(tmp_path):
    spec = {"name": "ok", "image": "python", "command": ["python", "-c", "pass"]}
    outcome = asyncio.run(
        container(spec).run_until_done(
            lambda: launch_of(spec, tmp_path), restart_policy="OnFailure", backoff=containers.Backoff(base=0.01)
        )
    )
    assert (outcome.exit_code, outcome.reason) == (0, "Completed")


def test_backoff_restarts_at_once_then_doubles_up_to_the_limit():
    backoff = containers.Backoff(base=10, limit=300)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 7, 9)] == [0, 10, 20, 40, 300, 300]


def test_failing_liveness_probe_stops_the_container(tmp_path):
    spec = {
        "name": "stuck",
        "image": "python",
        "command": ["python", "-c", "import time; time.sleep(60)"],
        "livenessProbe": {
            "exec": {"command": ["python", "-c", "raise SystemExit(1)"]},
            "periodSeconds": 0.1,
            "failureThreshold": 2,
            "timeoutSeconds": 5,
        },
    }
    outcome = asyncio.run(container(spec).run_once(launch_of(spec, tmp_path)))
    assert (outcome.exit_code, outcome.reason) == (143, "Error")


def test_startup_probe_gates_readiness(tmp_path):
    marker = tmp_path / "root" / "started"
    spec = {
        "name": "slow",
        "image": "python",
        "command": [
            "python",
            "-c",
            "import time, pathlib, os; time.sleep(0.3); "
            "pathlib.Path(os.environ['MLKUBE_CONTAINER_ROOT'], 'started').touch(); time.sleep(60)",
        ],
        "startupProbe": {
            "exec": {"command": ["python", "-c", f"import os; os.stat({str(marker)!r})"]},
            "periodSeconds": 0.1,
            "failureThreshold": 50,
            "timeoutSeconds": 5,
        },
    }
    c = container(spec)
    observed = []

    async def scenario():
        task = asyncio.create_task(c.run_once(launch_of(spec, tmp_path)))
        while not c.ready:
            observed.append((c.status()["started"], marker.exists()))
            await asyncio.sleep(0.02)
        await c.stop(1)
        await task

    asyncio.run(scenario())
    assert observed and not any(started for started, _ in observed)
    assert marker.exists()


def test_startup_probe_that_never_passes_kills_the_container(tmp_path):
    spec = {
        "name": "never",
        "image": "python",
        "command": ["python", "-c", "import time; time.sleep(60)"],
        "startupProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 0.05, "failureThreshold": 3},
    }
    outcome = asyncio.run(container(spec).run_once(launch_of(spec, tmp_path)))
    assert outcome.exit_code == 143


def test_a_cancelled_run_leaves_no_process(tmp_path):
    spec = {"name": "main", "image": "python", "command": ["python", "-c", "import time; time.sleep(60)"]}
    c = container(spec)

    async def scenario():
        task = asyncio.create_task(c.run_once(launch_of(spec, tmp_path)))
        while "running" not in c.state:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return c.process.pid

    pid = asyncio.run(scenario())

    def alive():
        fields = processes.stat_fields(pid)
        return fields is not None and fields[0] != "Z"

    deadline = time.monotonic() + 5
    while alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive()


def test_an_exec_probe_that_times_out_leaves_no_process_behind(tmp_path):
    marker = tmp_path / "probe.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    probe = {"exec": {"command": ["python", "-c", script]}, "timeoutSeconds": 3}
    target = probes.Target(pod=POD, host="127.0.0.1", env={"PATH": os.environ["PATH"]}, cwd=tmp_path)
    assert asyncio.run(probes.succeeds(probe, target)) is False
    pid = int(marker.read_text())
    deadline = time.monotonic() + 5
    while (f := processes.stat_fields(pid)) and f[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    fields = processes.stat_fields(pid)
    assert fields is None or fields[0] == "Z"
