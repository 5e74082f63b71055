"""The Job controller (batch/v1) for what mlkube uses: one pod at a time, or an Indexed Job.

Owns the decision of what a Job needs next (:func:`plan`, pure: the Job, its pods and the
time in, a :class:`Plan` out) and its application through the API. Semantics follow the
upstream controller for ``parallelism: 1, completions: 1``: a new pod
``<job>-<5 chars>`` per attempt with exponential retry delay, ``backoffLimit``,
``activeDeadlineSeconds``, ``podFailurePolicy`` (``FailJob``/``Ignore``/``Count`` on exit
codes and pod conditions), ``suspend``, ``ttlSecondsAfterFinished``, and the status fields and
condition reasons kubectl and Kopf read.

``completionMode: Indexed`` (what a BatchPrediction runs) as upstream: one pod per index not yet
succeeded, at most ``parallelism`` at once, lowest index first; each pod named
``<job>-<index>-<5 chars>``, the index in the annotation and label
``batch.kubernetes.io/job-completion-index`` and, in every container, ``JOB_COMPLETION_INDEX``
(from that annotation); a failed index is recreated after the retry delay; ``backoffLimit``
counts failures over all indexes; ``status.completedIndexes`` lists the succeeded indexes in
upstream's compressed form (``0-2,4``) and the Job completes when every index has. A NonIndexed
Job with ``parallelism`` or ``completions`` above one is refused with a clear condition message.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime

from mlkube.local.runtime import events, kube, objects, store

FINISHED = ("Complete", "Failed")
INDEX_KEY = "batch.kubernetes.io/job-completion-index"  # the index of an Indexed Job's pod
INDEX_ENV = "JOB_COMPLETION_INDEX"


@dataclasses.dataclass
class Plan:
    status: dict
    create_pods: list[dict] = dataclasses.field(default_factory=list)
    delete_pods: list[dict] = dataclasses.field(default_factory=list)
    delete_job: bool = False
    selector: dict | None = None  # the selector to default into spec when it has none


def selector_of(job: dict) -> dict:
    uid = job["metadata"]["uid"]
    return {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}


def pod_for(job: dict, *, index: int | None = None) -> dict:
    """A new pod of ``job``: its template, named ``<job>-<5 chars>`` by the API server; for an
    Indexed Job, ``<job>-<index>-<5 chars>``, carrying its index."""
    meta, template = job["metadata"], copy.deepcopy(job["spec"]["template"])
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.update(
        {
            "job-name": meta["name"],
            "batch.kubernetes.io/job-name": meta["name"],
            "controller-uid": meta["uid"],
            "batch.kubernetes.io/controller-uid": meta["uid"],
        }
    )
    pod_meta = {
        "generateName": f"{meta['name']}-",
        "namespace": meta.get("namespace") or "default",
        "labels": labels,
        "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
        "ownerReferences": [objects.owner_reference(job)],
    }
    spec = template["spec"]
    if index is not None:
        pod_meta["generateName"] = f"{meta['name']}-{index}-"
        pod_meta["annotations"][INDEX_KEY] = str(index)
        pod_meta["labels"][INDEX_KEY] = str(index)
        from_annotation = {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            env = [e for e in container.get("env") or [] if e.get("name") != INDEX_ENV]
            container["env"] = [{"name": INDEX_ENV, "valueFrom": from_annotation}, *env]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def index_of(pod: dict) -> int | None:
    """The completion index of a pod of an Indexed Job."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_KEY, "")
    return int(value) if value.isdigit() else None


def compressed(indexes: set[int]) -> str:
    """Upstream's form of a set of indexes: ``{0, 1, 2, 4}`` -> ``"0-2,4"``."""
    ranges: list[list[int]] = []
    for index in sorted(indexes):
        if ranges and ranges[-1][1] == index - 1:
            ranges[-1][1] = index
        else:
            ranges.append([index, index])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _failure_time(pod: dict) -> str:
    times = [
        s["state"]["terminated"].get("finishedAt", "")
        for s in (pod.get("status") or {}).get("containerStatuses") or []
        if "terminated" in (s.get("state") or {})
    ]
    return max(times, default="")


@dataclasses.dataclass(frozen=True)
class RuleMatch:
    """A failed pod matched by a ``podFailurePolicy`` rule."""

    index: int
    action: str
    pod: dict
    container: str | None = None
    exit_code: int | None = None

    def message(self, namespace: str) -> str:
        name = self.pod["metadata"]["name"]
        if self.container is not None:
            cause = f"Container {self.container} for pod {namespace}/{name} failed with exit code {self.exit_code}"
        else:
            cause = f"Pod {namespace}/{name} has a condition"
        return f"{cause} matching {self.action} rule at index {self.index}"


def matching_rule(job: dict, pod: dict) -> RuleMatch | None:
    """The first ``podFailurePolicy`` rule matching a failed pod."""
    rules = ((job["spec"].get("podFailurePolicy") or {}).get("rules")) or []
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for index, rule in enumerate(rules):
        codes = rule.get("onExitCodes")
        for status in statuses if codes else []:
            terminated = (status.get("state") or {}).get("terminated")
            if not terminated or terminated.get("exitCode") == 0:
                continue
            if codes.get("containerName") not in (None, status["name"]):
                continue
            inside = terminated["exitCode"] in codes.get("values", [])
            if inside == (codes.get("operator", "In") == "In"):
                return RuleMatch(index, rule["action"], pod, status["name"], terminated["exitCode"])
        for pattern in rule.get("onPodConditions") or []:
            cond = objects.find_condition(pod, pattern["type"])
            if cond and cond.get("status") == pattern.get("status", "True"):
                return RuleMatch(index, rule["action"], pod)
    return None


def _failures(job: dict, failed: list[dict], active: list[dict]) -> tuple[int, RuleMatch | None]:
    """How many failures count against ``backoffLimit``, and the first FailJob match."""
    counted, fail_job = 0, None
    for pod in failed:
        match = matching_rule(job, pod)
        action = match.action if match else "Count"
        if action == "FailJob" and fail_job is None:
            fail_job = match
        if action != "Ignore":
            counted += 1
    if job["spec"].get("template", {}).get("spec", {}).get("restartPolicy") == "OnFailure":
        counted += sum(s.get("restartCount", 0) for p in active for s in (p.get("status") or {}).get("containerStatuses") or [])
    return counted, fail_job


def _failure(job: dict, status: dict, fail_job: RuleMatch | None, now: datetime.datetime) -> tuple[str, str] | None:
    """The (reason, message) the Job fails with now, if it does."""
    spec = job["spec"]
    indexed = spec.get("completionMode") == "Indexed"
    if not indexed and ((spec.get("parallelism") or 1) > 1 or (spec.get("completions") or 1) > 1):
        return ("Unsupported", "the local runtime runs NonIndexed Jobs with parallelism 1 and completions 1 only")
    if indexed and not spec.get("completions"):
        return ("Unsupported", "an Indexed Job needs spec.completions")
    if fail_job is not None:
        return "PodFailurePolicy", fail_job.message(job["metadata"].get("namespace", "default"))
    if status["failed"] > spec.get("backoffLimit", 6):
        return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (now - objects.parse_time(status["startTime"])).total_seconds() >= deadline:
        return "DeadlineExceeded", "Job was active longer than specified deadline"
    return None


def plan(job: dict, pods: list[dict], *, now: datetime.datetime, retry_base: float = 10.0, retry_limit: float = 360.0) -> Plan:
    """What ``job`` needs next, given its ``pods`` (those it controls) and the time."""
    spec = job.get("spec") or {}
    previous = job.get("status") or {}
    conditions = list(previous.get("conditions") or [])
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    status = dict(previous)
    result = Plan(status=status, selector=None if spec.get("selector") else selector_of(job))

    active = [p for p in pods if _phase(p) not in ("Succeeded", "Failed") and not objects.is_terminating(p)]
    succeeded = [p for p in pods if _phase(p) == "Succeeded"]
    failed = [p for p in pods if _phase(p) == "Failed"]
    status.update(
        active=len(active),
        ready=sum(objects.is_true(p, "Ready") for p in active),
        terminating=sum(objects.is_terminating(p) for p in pods),
    )
    status["succeeded"] = max(previous.get("succeeded", 0), len(succeeded))

    if any(objects.is_true(job, c) for c in FINISHED):
        result.delete_pods = active
        result.delete_job = _ttl_expired(job, now)
        return result

    suspended = bool(spec.get("suspend"))
    was_suspended = objects.is_true(job, "Suspended")
    if suspended or was_suspended:
        conditions = [c for c in conditions if c["type"] != "Suspended"]
        conditions.append(
            objects.condition(
                "Suspended",
                suspended,
                "JobSuspended" if suspended else "JobResumed",
                "Job suspended" if suspended else "Job resumed",
                previous=previous.get("conditions"),
                at=stamp,
            )
        )
    status["conditions"] = conditions
    if suspended:
        result.delete_pods = active
        status.pop("startTime", None)
        status["active"] = 0
        return result
    if not status.get("startTime") or was_suspended:
        status["startTime"] = stamp

    counted, fail_job = _failures(job, failed, active)
    status["failed"] = max(previous.get("failed", 0), counted)
    failure = _failure(job, status, fail_job, now)
    if spec.get("completionMode") == "Indexed" and failure is None:
        return _indexed(
            job,
            result,
            active=active,
            succeeded=succeeded,
            failed=failed,
            now=now,
            retry_base=retry_base,
            retry_limit=retry_limit,
        )
    if succeeded and failure is None:
        message = "Reached expected number of succeeded pods"
        conditions += [
            objects.condition("SuccessCriteriaMet", True, "CompletionsReached", message, at=stamp),
            objects.condition("Complete", True, "CompletionsReached", message, at=stamp),
        ]
        status["completionTime"] = stamp
        result.delete_pods = active
    elif failure is not None:
        conditions += [
            objects.condition("FailureTarget", True, *failure, at=stamp),
            objects.condition("Failed", True, *failure, at=stamp),
        ]
        result.delete_pods = active
    elif not active:
        last = max((_failure_time(p) for p in failed), default="")
        delay = min(retry_base * 2 ** (max(status["failed"], 1) - 1), retry_limit)
        if not last or (now - objects.parse_time(last)).total_seconds() >= delay:
            result.create_pods = [pod_for(job)]
    return result


def _indexed(
    job: dict,
    result: Plan,
    *,
    active: list[dict],
    succeeded: list[dict],
    failed: list[dict],
    now: datetime.datetime,
    retry_base: float,
    retry_limit: float,
) -> Plan:
    """The rest of ``plan`` for an Indexed Job that has not failed: record the completed indexes,
    complete once all are, else start the missing indexes up to ``parallelism``."""
    spec, status = job["spec"], result.status
    completions = spec["completions"]
    done = {i for p in succeeded if (i := index_of(p)) is not None and i < completions}
    done |= _completed(status.get("completedIndexes"))
    status["completedIndexes"] = compressed(done)
    status["succeeded"] = len(done)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(done) >= completions:
        message = "Reached expected number of succeeded pods"
        status["conditions"] = status["conditions"] + [
            objects.condition("SuccessCriteriaMet", True, "CompletionsReached", message, at=stamp),
            objects.condition("Complete", True, "CompletionsReached", message, at=stamp),
        ]
        status["completionTime"] = stamp
        result.delete_pods = active
        return result
    running = {index_of(p) for p in active}
    room = (spec.get("parallelism") or 1) - len(active)
    delay = min(retry_base * 2 ** (max(status["failed"], 1) - 1), retry_limit)
    for index in range(completions):
        if room <= 0:
            break
        if index in done or index in running:
            continue
        last = max((_failure_time(p) for p in failed if index_of(p) == index), default="")
        if last and (now - objects.parse_time(last)).total_seconds() < delay:
            continue
        result.create_pods.append(pod_for(job, index=index))
        room -= 1
    return result


def _completed(text: str | None) -> set[int]:
    found: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.partition("-")
        if first.isdigit():
            found.update(range(int(first), int(last or first) + 1))
    return found


def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def _ttl_expired(job: dict, now: datetime.datetime) -> bool:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None:
        return False
    finished = [
        c.get("lastTransitionTime") for c in job["status"]["conditions"] if c["type"] in FINISHED and c.get("status") == "True"
    ]
    return bool(finished[0]) and (now - objects.parse_time(finished[0])).total_seconds() >= ttl


async def sync(cluster: store.Store, recorder: events.Recorder, *, retry_base: float) -> None:
    """Reconcile every Job in the cluster."""
    now = datetime.datetime.now(datetime.UTC)
    for job in cluster.list(kube.JOBS):
        if objects.is_terminating(job):
            continue
        was_finished = any(objects.is_true(job, c) for c in FINISHED)
        decided = plan(job, cluster.owned(kube.PODS, job), now=now, retry_base=retry_base)
        if decided.selector is not None:
            job = await cluster.patch(kube.JOBS, job, {"spec": {"selector": decided.selector}})
        for pod in decided.delete_pods:
            await cluster.delete(kube.PODS, pod)
            recorder.record(job, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        if decided.delete_job:
            await cluster.delete(kube.JOBS, job)
            continue
        for wanted in decided.create_pods:
            pod = await cluster.create(kube.PODS, wanted)
            decided.status["active"] = decided.status.get("active", 0) + 1
            recorder.record(job, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        await cluster.write_status(kube.JOBS, job, decided.status)
        if not was_finished:
            _record_finish(recorder, job, decided.status)


def _record_finish(recorder: events.Recorder, job: dict, status: dict) -> None:
    for cond in status.get("conditions") or []:
        if cond["type"] == "Complete" and cond["status"] == "True":
            recorder.record(job, "Completed", "Job completed")
        elif cond["type"] == "Failed" and cond["status"] == "True":
            recorder.record(job, cond["reason"], cond["message"], warning=True)
