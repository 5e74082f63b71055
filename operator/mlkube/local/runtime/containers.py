"""One container of a pod: its runs, restarts with back-off, probes, memory limit, status.

Owns the life of a single container the way the kubelet runs it: start the process, watch its
readiness and liveness probes and its memory, record how it ended (exit code, reason,
termination message), and restart it as the pod's ``restartPolicy`` says with exponential
back-off (``CrashLoopBackOff``). Its ``status()`` is the container's entry in the pod's
``containerStatuses``. Must not talk to the API server: the pod worker publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pathlib
import signal
import time
from collections.abc import Callable

from mlkube.local.runtime import execenv, images, objects, podspec, probes, processes

EventSink = Callable[[str, str, bool], None]  # (reason, message, warning)

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Restart delays as the kubelet's: the first restart at once, then ``base`` doubling
    up to ``limit``; the count resets after ``reset`` seconds of running (10 s, 5 min,
    10 min)."""

    base: float = 10.0
    limit: float = 300.0
    reset: float = 600.0

    def delay(self, failures: int) -> float:
        if failures <= 1:
            return 0.0
        return min(self.base * 2 ** (failures - 2), self.limit)


@dataclasses.dataclass
class Launch:
    """Everything needed to start the container once."""

    argv: list[str]
    env: dict[str, str]
    root: pathlib.Path
    cwd: pathlib.Path
    log_dir: pathlib.Path
    records: pathlib.Path
    owner: str
    exec_record: pathlib.Path | None = None  # where `kubectl exec` finds env and cwd (execenv.py)


@dataclasses.dataclass
class Outcome:
    exit_code: int
    reason: str
    message: str
    started_at: str
    finished_at: str

    def terminated(self) -> dict:
        state = {"exitCode": self.exit_code, "reason": self.reason, "startedAt": self.started_at, "finishedAt": self.finished_at}
        if self.message:
            state["message"] = self.message
        return {"terminated": state}


class Container:
    """The runtime side of one ``spec.containers[]`` (or ``initContainers[]``) entry."""

    def __init__(
        self,
        spec: dict,
        *,
        pod: dict,
        pod_ip: str,
        restart_count: int,
        on_change: Callable[[], None],
        on_event: EventSink | None = None,
        memory_poll: float = 0.5,
    ) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self._pod = pod
        self._pod_ip = pod_ip
        self._on_change = on_change
        self._on_event: EventSink = on_event or (lambda reason, message, warning: None)
        self._memory_poll = memory_poll
        self.restart_count = restart_count
        self.state: dict = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: dict = {}
        self.ready = False
        self.started = False
        self.process: processes.Process | None = None
        self._stopping = False
        self._oom = False

    # -- status -----------------------------------------------------------------------
    def status(self) -> dict:
        status = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": "running" in self.state and self.started,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.process is not None:
            status["containerID"] = f"mlkube://{self.process.pid}"
        return status

    def wait_with(self, reason: str, message: str = "") -> None:
        self.state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        self.ready = False
        self._on_change()

    def end_with(self, outcome: Outcome) -> None:
        """Record a final state without running (used when the runtime cannot resume it)."""
        self.state = outcome.terminated()
        self.ready = False
        self._on_change()

    # -- running ----------------------------------------------------------------------
    async def run_until_done(self, launch: Callable[[], Launch], *, restart_policy: str, backoff: Backoff) -> Outcome:
        """Run, and restart per ``restart_policy`` until no restart is due; return the last
        outcome. ``launch`` gives what to start, and is asked again before each restart."""
        failures = 0
        while True:
            began = time.monotonic()
            outcome = await self.run_once(launch())
            if self._stopping:
                return outcome
            if restart_policy == "Never" or (restart_policy == "OnFailure" and outcome.exit_code == 0):
                return outcome
            failures = 1 if time.monotonic() - began > backoff.reset else failures + 1
            delay = backoff.delay(failures)
            self.last_state = self.state
            if delay > 0:
                pod = self._pod["metadata"]
                self._on_event("BackOff", f"Back-off restarting failed container {self.name} in pod {pod['name']}", True)
                self.wait_with(
                    "CrashLoopBackOff",
                    f"back-off {delay:g}s restarting failed container={self.name} "
                    f"pod={pod['name']}_{pod.get('namespace', 'default')}"
                    f"({pod.get('uid', '')})",
                )
                await asyncio.sleep(delay)
            if self._stopping:
                return outcome
            self.restart_count += 1

    async def run_once(self, launch: Launch) -> Outcome:
        started_at = objects.now()
        log_path = launch.log_dir / f"{self.restart_count}.log"
        try:
            self.process = await processes.spawn(
                launch.argv, env=launch.env, cwd=launch.cwd, log_path=log_path, records=launch.records, owner=launch.owner
            )
        except OSError as e:
            outcome = Outcome(128, "StartError", f"failed to start {launch.argv[0]!r}: {e}", started_at, objects.now())
            self._on_event("Failed", f"Error: {outcome.message}", True)
            self.state = outcome.terminated()
            self._on_change()
            return outcome
        if launch.exec_record is not None:
            execenv.write(launch.exec_record, env=launch.env, cwd=launch.cwd, pid=self.process.pid)
        self.state = {"running": {"startedAt": started_at}}
        self._on_event("Started", f"Started container {self.name}", False)
        log.info("%s: started %s (pid %d)", self._where(), " ".join(launch.argv)[:200], self.process.pid)
        self.started = "startupProbe" not in self.spec
        self.ready = self.started and "readinessProbe" not in self.spec
        self._oom = False
        self._on_change()
        target = probes.Target(pod=self._pod, host=self._pod_ip, env=launch.env, cwd=launch.cwd)
        watchers = [
            asyncio.create_task(self._watch_memory(), name=f"memory {self.name}"),
            asyncio.create_task(self._probe(target), name=f"probes {self.name}"),
        ]
        try:
            exit_code = await self.process.wait()
        except asyncio.CancelledError:
            self.process.signal(signal.SIGKILL)  # never leave a process behind a cancelled run
            raise
        finally:
            for task in watchers:
                task.cancel()
            for task in watchers:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:  # a failing watcher must not lose the container's outcome
                    log.exception("watcher of container %s failed", self.name)
        reason = "OOMKilled" if self._oom else ("Completed" if exit_code == 0 else "Error")
        outcome = Outcome(exit_code, reason, self._termination_message(launch, log_path, exit_code), started_at, objects.now())
        self.state = outcome.terminated()
        self.ready = False
        self._on_change()
        log.info("%s: exited with %d (%s)", self._where(), exit_code, reason)
        return outcome

    def _where(self) -> str:
        meta = self._pod["metadata"]
        return f"{meta.get('namespace', 'default')}/{meta['name']}/{self.name}"

    async def stop(self, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after the grace period; no restart follows."""
        self._stopping = True
        if self.process is not None and "running" in self.state:
            self._on_event("Killing", f"Stopping container {self.name}", False)
            await self.process.stop(grace_seconds)

    def _termination_message(self, launch: Launch, log_path: pathlib.Path, exit_code: int) -> str:
        path = self.spec.get("terminationMessagePath") or "/dev/termination-log"
        message_file = containerpath_under(launch.root, path)
        message = ""
        with contextlib.suppress(OSError):
            message = message_file.read_bytes()[:MESSAGE_LIMIT].decode(errors="replace")
        if not message and exit_code != 0 and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            with contextlib.suppress(OSError):
                tail = log_path.read_bytes()[-FALLBACK_LOG_BYTES:]
                message = b"\n".join(tail.splitlines()[-FALLBACK_LOG_LINES:]).decode(errors="replace")
        return message

    async def _watch_memory(self) -> None:
        limit = podspec.memory_limit(self.spec)
        if limit is None or self.process is None:
            return
        while True:
            await asyncio.sleep(self._memory_poll)
            used = processes.group_rss({self.process.pid})[self.process.pid]
            if used > limit:
                self._oom = True
                self.process.signal(signal.SIGKILL)
                return

    async def _probe(self, target: probes.Target) -> None:
        """The startup probe until it succeeds, then the readiness and liveness probes.

        A container failing its startup or liveness probe is stopped (and restarted as the
        restart policy says)."""
        if "startupProbe" in self.spec:
            if not await self._passes(self.spec["startupProbe"], target):
                await self._kill_unhealthy(self.spec["startupProbe"], "startup")
                return
            self.started = True
            self.ready = "readinessProbe" not in self.spec
            self._on_change()
        loops = []
        if "readinessProbe" in self.spec:
            loops.append(self._probe_readiness(target))
        if "livenessProbe" in self.spec:
            loops.append(self._probe_liveness(target))
        await asyncio.gather(*loops)

    async def _passes(self, probe: dict, target: probes.Target) -> bool:
        timing = probes.timing(probe)
        await asyncio.sleep(timing.initial_delay)
        for _ in range(timing.failure_threshold):
            if await probes.succeeds(probe, target):
                return True
            await asyncio.sleep(timing.period)
        return False

    async def _kill_unhealthy(self, probe: dict, kind: str) -> None:
        self._on_event("Unhealthy", f"{kind.capitalize()} probe failed", True)
        self._on_event("Killing", f"Container {self.name} failed {kind} probe, will be restarted", False)
        if self.process is not None:
            grace = self._pod["spec"].get("terminationGracePeriodSeconds", 30)
            await self.process.stop(probe.get("terminationGracePeriodSeconds", grace))

    async def _probe_readiness(self, target: probes.Target) -> None:
        probe = self.spec["readinessProbe"]
        timing = probes.timing(probe)
        await asyncio.sleep(timing.initial_delay)
        successes = failures = 0
        while True:
            if await probes.succeeds(probe, target):
                successes, failures = successes + 1, 0
                if not self.ready and successes >= timing.success_threshold:
                    self.ready = True
                    self._on_change()
            else:
                successes, failures = 0, failures + 1
                if self.ready and failures >= timing.failure_threshold:
                    self.ready = False
                    self._on_event("Unhealthy", "Readiness probe failed", True)
                    self._on_change()
            await asyncio.sleep(timing.period)

    async def _probe_liveness(self, target: probes.Target) -> None:
        probe = self.spec["livenessProbe"]
        timing = probes.timing(probe)
        await asyncio.sleep(timing.initial_delay)
        failures = 0
        while failures < timing.failure_threshold:
            failures = 0 if await probes.succeeds(probe, target) else failures + 1
            await asyncio.sleep(timing.period)
        await self._kill_unhealthy(probe, "liveness")


def launch_for(
    container: dict, *, pod: dict, root: pathlib.Path, env: dict[str, str], log_dir: pathlib.Path, records: pathlib.Path
) -> Launch:
    """The launch of ``container`` with its variables expanded in command and args.

    Raises :class:`images.ImageNotFound` or ``ValueError`` (nothing to run).
    """
    expanded = dict(container)
    for field in ("command", "args"):
        if container.get(field) is not None:
            expanded[field] = [podspec.expand(word, env) for word in container[field]]
    argv = _in_volumes(images.argv(expanded), container, root)
    working_dir = container.get("workingDir")
    cwd = containerpath_under(root, working_dir) if working_dir else root
    cwd.mkdir(parents=True, exist_ok=True)
    return Launch(
        argv=argv,
        env=env,
        root=root,
        cwd=cwd,
        log_dir=log_dir,
        records=records,
        owner=f"{pod['metadata'].get('uid')}/{container['name']}",
    )


def _in_volumes(argv: list[str], container: dict, root: pathlib.Path) -> list[str]:
    """``argv`` with the program, or the script an interpreter runs (``python -u /opt/app.py``,
    ``sh /scripts/run.sh``), pointed at the mounted file under the container root when it lies
    inside one of the container's volume mounts and the volume holds it. Other arguments stay container paths: the
    project's entrypoints resolve those themselves (``mlkube.common.containerpath``)."""
    mounts = [m["mountPath"].rstrip("/") for m in container.get("volumeMounts") or [] if m.get("mountPath", "/") != "/"]

    def inside(word: str) -> bool:
        # Only a file the volume holds: a host path that merely lies under a mount path (the
        # interpreter of a virtualenv in /tmp, with an emptyDir at /tmp) stays the host's.
        in_mount = word.startswith("/") and any(word == m or word.startswith(m + "/") for m in mounts)
        return in_mount and containerpath_under(root, word).exists()

    result = list(argv)
    if result and inside(result[0]):
        result[0] = str(containerpath_under(root, result[0]))
        return result
    for index, word in enumerate(result[1:], start=1):
        if word in ("-c", "-m"):  # a command string or a module: no script file
            break
        if not word.startswith("-"):
            if inside(word):
                result[index] = str(containerpath_under(root, word))
            break
    return result


def containerpath_under(root: pathlib.Path, path: str) -> pathlib.Path:
    """Where the absolute container ``path`` lives under a container ``root`` (the layout
    ``mlkube.common.containerpath.resolve`` reads through ``MLKUBE_CONTAINER_ROOT``)."""
    return root / pathlib.PurePosixPath(path).relative_to("/")
