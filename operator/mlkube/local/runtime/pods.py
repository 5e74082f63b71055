"""The pod worker: one pod's volumes, init containers, containers and published status.

Owns what the kubelet does for a single pod: give it a directory and a loopback IP, check its
images, materialise its volumes under each container's root (``MLKUBE_CONTAINER_ROOT``),
build each container's environment, run the init containers in order and then the
containers, and keep ``status`` (phase, conditions, container states) in step through the
``pods/status`` subresource. Terminating stops every process of the pod. The set of pods and
their IPs is managed by :mod:`mlkube.local.runtime.kubelet`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib

from mlkube.local.runtime import containers, events, execenv, images, kube, objects, podspec, serviceaccount

log = logging.getLogger(__name__)

RESUMED_MESSAGE = "the local runtime stopped while the container was running"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the runtime keeps things under the state directory."""

    state_dir: pathlib.Path

    @property
    def records(self) -> pathlib.Path:
        return self.state_dir / "runtime" / "processes"

    def pod_dir(self, uid: str) -> pathlib.Path:
        return self.state_dir / "runtime" / "pods" / uid

    def log_dir(self, namespace: str, pod: str, container: str | None = None) -> pathlib.Path:
        path = self.state_dir / "logs" / namespace / pod
        return path / container if container else path

    def claim_dir(self, namespace: str, claim: str) -> pathlib.Path:
        return self.state_dir / "runtime" / "claims" / namespace / claim


class PodWorker:
    """Runs one pod until it finishes or is terminated."""

    def __init__(
        self,
        pod: dict,
        *,
        client: kube.Client,
        layout: Layout,
        pod_ip: str,
        backoff: containers.Backoff,
        recorder: events.Recorder,
        memory_poll: float = 0.5,
    ) -> None:
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.ip = pod_ip
        self._client = client
        self._layout = layout
        self._backoff = backoff
        self._recorder = recorder
        self._last_problem = ""
        spec = pod.get("spec") or {}
        self.restart_policy: str = spec.get("restartPolicy") or "Always"
        previous = {s["name"]: s for s in (pod.get("status") or {}).get("containerStatuses") or []}
        previous.update({s["name"]: s for s in (pod.get("status") or {}).get("initContainerStatuses") or []})
        self._previous = previous

        def container(c: dict) -> containers.Container:
            return containers.Container(
                c,
                pod=pod,
                pod_ip=pod_ip,
                on_change=self._changed,
                memory_poll=memory_poll,
                on_event=lambda reason, message, warning, name=c["name"]: self._event(
                    reason, message, warning=warning, container=name
                ),
                restart_count=previous.get(c["name"], {}).get("restartCount", 0),
            )

        self.init_containers = [container(c) for c in spec.get("initContainers") or []]
        self.containers = [container(c) for c in spec.get("containers") or []]
        self.initialized = not self.init_containers
        self._failed = False
        self._deadline_exceeded = False
        self._disrupted = False  # stopped with the runtime: a DisruptionTarget, as a node shutdown
        self._start_time = (pod.get("status") or {}).get("startTime") or objects.now()
        self._published = dict(pod.get("status") or {})
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.terminating = False

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        name = self.pod["metadata"]["name"]
        self._tasks = [
            asyncio.create_task(self._run(), name=f"pod {name}"),
            asyncio.create_task(self._publish_forever(), name=f"status {name}"),
        ]
        deadline = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
        if deadline is not None:
            self._tasks.append(asyncio.create_task(self._enforce_deadline(deadline)))
        self._changed()

    async def _enforce_deadline(self, seconds: float) -> None:
        """``spec.activeDeadlineSeconds``: stop the pod and fail it with DeadlineExceeded."""
        await asyncio.sleep(max(seconds - objects.seconds_since(self._start_time), 0))
        if self.phase() in ("Succeeded", "Failed"):
            return
        self._deadline_exceeded = True
        grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        await asyncio.gather(*(c.stop(grace) for c in [*self.init_containers, *self.containers]))
        self._tasks[0].cancel()
        self._changed()

    async def terminate(self, grace_seconds: float) -> None:
        """Stop every container (SIGTERM, SIGKILL after the grace period) and the worker."""
        self.terminating = True
        everything = [*self.init_containers, *self.containers]
        await asyncio.gather(*(c.stop(grace_seconds) for c in everything))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        try:
            await self._run_pod()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not take the other pods down; the pod shows it
            log.exception("pod %s failed in the local runtime", self.pod["metadata"]["name"])
            for c in self.containers:
                if "terminated" not in c.state:
                    c.wait_with("RunContainerError", "the local runtime failed; see its log")

    async def _run_pod(self) -> None:
        if not await self._images_available():
            return
        if self.resume_after_restart():
            return
        launches = await self._prepare()
        if not self.initialized:
            for c in self.init_containers:
                policy = "Never" if self.restart_policy == "Never" else "OnFailure"
                outcome = await c.run_until_done(lambda c=c: launches[c.name], restart_policy=policy, backoff=self._backoff)
                if outcome.exit_code != 0:
                    self._failed = True
                    for main in self.containers:
                        main.wait_with("PodInitializing")
                    return
            self.initialized = True
        await asyncio.gather(
            *(
                c.run_until_done(lambda c=c: launches[c.name], restart_policy=self.restart_policy, backoff=self._backoff)
                for c in self.containers
                if not self._finished_before(c)
            )
        )

    async def _images_available(self) -> bool:
        """Leave the pod Pending with ErrImagePull/ImagePullBackOff for an unknown image."""
        missing = []
        for c in [*self.init_containers, *self.containers]:
            try:
                images.lookup(c.spec.get("image") or "")
            except images.ImageNotFound as e:
                missing.append((c, str(e)))
        for c, message in missing:
            c.wait_with("ErrImagePull", message)
            self._event("Failed", f"Failed to pull image: {message}", warning=True, container=c.name)
        if not missing:
            return True
        await asyncio.sleep(self._backoff.base)
        for c, message in missing:
            c.wait_with("ImagePullBackOff", f"Back-off pulling image: {message}")
            self._event("BackOff", f"Back-off pulling image {c.spec.get('image')!r}", warning=True, container=c.name)
        return False

    def resume_after_restart(self) -> bool:
        """Apply the states the pod had before the runtime restarted; True when it is over.

        Processes never outlive the runtime, so a container that was running has stopped.
        With ``restartPolicy: Never`` the pod fails as after a node shutdown (reason
        ``Terminated`` and a ``DisruptionTarget`` condition, which a Job's podFailurePolicy
        can ``Ignore`` to retry it); otherwise its containers start again with their restart
        counts increased.
        """
        was_running = [
            c for c in [*self.init_containers, *self.containers] if "running" in self._previous.get(c.name, {}).get("state", {})
        ]
        if objects.is_true(self.pod, "Initialized") and self.init_containers:
            self.initialized = True
            for c in self.init_containers:
                c.state = self._previous.get(c.name, {}).get("state") or c.state
        if not was_running:
            return False
        if self.restart_policy == "Never":
            self._disrupted = True
            for c in self.containers:
                state = self._previous.get(c.name, {}).get("state", {})
                started = (state.get("running") or {}).get("startedAt") or self._start_time
                if "terminated" in state:
                    c.state = state
                else:
                    c.end_with(containers.Outcome(137, "Error", RESUMED_MESSAGE, started, objects.now()))
            self._failed = not self.initialized
            return True
        for c in was_running:
            c.last_state = self._previous[c.name]["state"]
            c.restart_count += 1
        return False

    def _finished_before(self, c: containers.Container) -> bool:
        state = self._previous.get(c.name, {}).get("state", {})
        done = "terminated" in state and (
            self.restart_policy == "Never" or (self.restart_policy == "OnFailure" and state["terminated"]["exitCode"] == 0)
        )
        if done:
            c.state = state
        return done

    # -- volumes and environment -----------------------------------------------------
    async def _prepare(self) -> dict[str, containers.Launch]:
        """Materialise volumes and build every container's launch; retry while a
        referenced ConfigMap, Secret or key is missing."""
        while True:
            try:
                configmaps, secrets = await self._fetch_references()
                volumes = self.materialise_volumes(configmaps, secrets)
                return {
                    c.name: self.launch(c.spec, volumes, configmaps, secrets) for c in [*self.init_containers, *self.containers]
                }
            except podspec.ConfigError as e:
                for c in [*self.init_containers, *self.containers]:
                    c.wait_with("CreateContainerConfigError", str(e))
                self._problem(f"Error: {e}")
            except (images.ImageNotFound, ValueError) as e:
                for c in self.containers:
                    c.wait_with("CreateContainerError", str(e))
                self._problem(f"Error: {e}")
            await asyncio.sleep(2)

    async def _fetch_references(self) -> tuple[dict[str, dict], dict[str, dict]]:
        namespace = self.pod["metadata"].get("namespace") or "default"
        needed = podspec.references(self.pod)
        found: list[dict[str, dict]] = [{}, {}]
        for index, (resource, names) in enumerate(((kube.CONFIGMAPS, needed.configmaps), (kube.SECRETS, needed.secrets))):
            for name in names:
                with contextlib.suppress(kube.NotFound):
                    found[index][name] = await self._client.get(resource, namespace, name)
        return found[0], found[1]

    def materialise_volumes(self, configmaps: dict[str, dict], secrets: dict[str, dict]) -> dict[str, pathlib.Path]:
        namespace = self.pod["metadata"].get("namespace") or "default"
        paths: dict[str, pathlib.Path] = {}
        for volume in (self.pod.get("spec") or {}).get("volumes") or []:
            name = volume["name"]
            if "hostPath" in volume:
                paths[name] = pathlib.Path(volume["hostPath"]["path"])
                continue
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                path = self._layout.claim_dir(namespace, claim)
            else:
                path = self._layout.pod_dir(self.uid) / "volumes" / name
            path.mkdir(parents=True, exist_ok=True)
            files = podspec.volume_files(volume, configmaps=configmaps, secrets=secrets)
            if files is None and not ({"emptyDir", "persistentVolumeClaim"} & volume.keys()):
                kinds = sorted(set(volume) - {"name"})
                raise podspec.ConfigError(
                    f"volume {name!r}: type {kinds} is not supported "
                    "by the local runtime (use emptyDir, configMap, "
                    "secret, hostPath or persistentVolumeClaim)"
                )
            # Secret values are stored unencrypted on this machine: only this user may read them
            # (a cluster's kubelet keeps them on tmpfs inside the pod's own mount namespace).
            private = "secret" in volume
            if private:
                path.chmod(0o700)
            for relative, content in (files or {}).items():
                target = path / relative
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
                if private:
                    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(descriptor, "wb") as out:
                        out.write(content)
                    target.chmod(0o600)
                else:
                    target.write_bytes(content)
            paths[name] = path
        return paths

    def launch(
        self, spec: dict, volumes: dict[str, pathlib.Path], configmaps: dict[str, dict], secrets: dict[str, dict]
    ) -> containers.Launch:
        root = self._layout.pod_dir(self.uid) / "roots" / spec["name"]
        for mount in spec.get("volumeMounts") or []:
            if mount["name"] not in volumes:
                raise podspec.ConfigError(f"container {spec['name']!r}: volumeMount {mount['name']!r} names no volume of the pod")
            source = volumes[mount["name"]] / (mount.get("subPath") or "")
            _link(containers.containerpath_under(root, mount["mountPath"]), source, mount_path=mount["mountPath"])
        message_path = spec.get("terminationMessagePath") or "/dev/termination-log"
        containers.containerpath_under(root, message_path).parent.mkdir(parents=True, exist_ok=True)
        home = containers.containerpath_under(root, "/root")
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": images.search_path(os.environ.get("PATH", "/usr/bin:/bin")),
            "HOME": str(home),
            "HOSTNAME": self.pod["metadata"]["name"],
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(podspec.environment(self.pod, spec, configmaps=configmaps, secrets=secrets, pod_ip=self.ip))
        # The two local-mode contracts always hold, whatever the pod sets.
        env["MLKUBE_CONTAINER_ROOT"] = str(root)
        env["MLKUBE_BIND_HOST"] = self.ip
        identity = serviceaccount.identity(self._client.credentials)
        env.update(serviceaccount.mount(self.pod, root, identity))
        namespace = self.pod["metadata"].get("namespace") or "default"
        launch = containers.launch_for(
            spec,
            pod=self.pod,
            root=root,
            env=env,
            records=self._layout.records,
            log_dir=self._layout.log_dir(namespace, self.pod["metadata"]["name"], spec["name"]),
        )
        launch.exec_record = execenv.path(self._layout.state_dir, self.uid, spec["name"])
        return launch

    # -- events -----------------------------------------------------------------------
    def _event(self, reason: str, message: str, *, warning: bool = False, container: str | None = None) -> None:
        field = None
        if container is not None:
            kind = "initContainers" if any(c.name == container for c in self.init_containers) else "containers"
            field = f"spec.{kind}{{{container}}}"
        self._recorder.record({"apiVersion": "v1", "kind": "Pod", **self.pod}, reason, message, warning=warning, field_path=field)

    def _problem(self, message: str) -> None:
        """Record a failure to start once per distinct message (the start is retried)."""
        if message != self._last_problem:
            self._last_problem = message
            self._event("Failed", message, warning=True)

    # -- status -----------------------------------------------------------------------
    def phase(self) -> str:
        if self._failed or self._deadline_exceeded:
            return "Failed"
        if not self.initialized:
            return "Pending"
        states = [c.state for c in self.containers]
        if states and all("terminated" in s for s in states):
            codes = [s["terminated"]["exitCode"] for s in states]
            return "Succeeded" if all(code == 0 for code in codes) else "Failed"
        if any("running" in s or "terminated" in s for s in states) or any(c.restart_count for c in self.containers):
            return "Running"
        return "Pending"

    def status(self) -> dict:
        phase = self.phase()
        previous = self._published.get("conditions") or []
        ready = phase == "Running" and all(c.ready for c in self.containers)
        reason = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
        not_ready = [c.name for c in self.containers if not c.ready]
        message = "" if ready else f"containers with unready status: [{' '.join(not_ready)}]"
        conditions = [
            objects.condition("PodScheduled", True, "", previous=previous),
            objects.condition(
                "Initialized", self.initialized, "" if self.initialized else "ContainersNotInitialized", previous=previous
            ),
            objects.condition("ContainersReady", ready, "" if ready else reason, message, previous=previous),
            objects.condition("Ready", ready, "" if ready else reason, message, previous=previous),
        ]
        status = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": self._start_time,
            "qosClass": "BestEffort",
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.init_containers:
            status["initContainerStatuses"] = [c.status() for c in self.init_containers]
        if self._deadline_exceeded:
            status["reason"] = "DeadlineExceeded"
            status["message"] = "Pod was active on the node longer than the specified deadline"
        if self._disrupted:
            status["reason"] = "Terminated"
            status["message"] = RESUMED_MESSAGE
            conditions.append(
                objects.condition("DisruptionTarget", True, "TerminationByKubelet", RESUMED_MESSAGE, previous=previous)
            )
        return status

    def _changed(self) -> None:
        self._dirty.set()

    async def _publish_forever(self) -> None:
        namespace = self.pod["metadata"].get("namespace") or "default"
        name = self.pod["metadata"]["name"]
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.02)  # coalesce a burst of container changes
            self._dirty.clear()
            status = self.status()
            patch = objects.merge_patch(self._published, status)
            if patch is None:
                continue
            try:
                await self._client.patch(kube.PODS, namespace, name, {"status": patch}, sub="status")
                self._published = status
            except kube.NotFound:
                return
            except kube.APIError as e:
                log.warning("could not write the status of pod %s/%s: %s", namespace, name, e)
                await asyncio.sleep(1)
                self._dirty.set()


def _link(target: pathlib.Path, source: pathlib.Path, *, mount_path: str) -> None:
    """Present ``source`` at ``target`` (a volume mount), replacing an earlier mount or an
    empty directory, never files: nested mounts can land inside another volume."""
    if pathlib.PurePosixPath(mount_path) == pathlib.PurePosixPath("/"):
        raise podspec.ConfigError("volumeMount at '/': the local runtime cannot mount over the container root")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    elif target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    elif target.exists():
        raise podspec.ConfigError(
            f"volumeMount {mount_path}: {target} already holds files; the local runtime cannot mount over them"
        )
    target.symlink_to(source, target_is_directory=source.is_dir())
