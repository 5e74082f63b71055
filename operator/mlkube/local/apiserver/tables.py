"""`meta.k8s.io/v1` Table rendering: CRD printer columns and the built-in column sets kubectl users expect.

Owns the columns and cell values of every served type and the ages printed server-side.
Must not read storage or HTTP requests: callers pass objects, the type and the clock.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

from mlkube.local.apiserver import jsonpath, registry

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients may "
    "not set this value. It is represented in RFC3339 form and is in UTC."
)


def parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """Upstream `duration.HumanDuration`: 45s, 5m3s, 23m, 5h10m, 3d4h, 400d, 2y30d."""
    seconds = int(seconds)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m" if seconds % 60 == 0 else f"{minutes}m{seconds % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(value: Any, now: datetime.datetime) -> str:
    when = parse_time(value)
    return "<unknown>" if when is None else human_duration((now - when).total_seconds())


def _column(name: str, type_: str = "string", *, description: str = "", priority: int = 0, format_: str = "") -> dict:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


NAME_COLUMN = _column("Name", format_="name", description=NAME_DESCRIPTION)
AGE_COLUMN = _column("Age", "date", description=AGE_DESCRIPTION)

Cell = Callable[[dict, datetime.datetime], Any]


def _created(obj: dict, now: datetime.datetime) -> str:
    return age(obj["metadata"].get("creationTimestamp"), now)


def _pod_status(pod: dict) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            terminated = state["terminated"]
            reason = terminated.get("reason") or ("Completed" if terminated.get("exitCode") == 0 else "Error")
    return reason


def _pod_ready(pod: dict) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _event_object(event: dict) -> str:
    involved = event.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def _event_last_seen(event: dict, now: datetime.datetime) -> str:
    for field in ("lastTimestamp", "eventTime", "firstTimestamp"):
        if event.get(field):
            return age(event[field], now)
    return _created(event, now)


def _service_ports(service: dict) -> str:
    ports = (service.get("spec") or {}).get("ports") or []
    rendered = [
        f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        if not p.get("nodePort")
        else f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
        for p in ports
    ]
    return ",".join(rendered) or "<none>"


def _job_status(job: dict) -> str:
    conditions = {c.get("type"): c.get("status") for c in (job.get("status") or {}).get("conditions") or []}
    for condition in ("Failed", "Complete", "SuccessCriteriaMet", "FailureTarget", "Suspended"):
        if conditions.get(condition) == "True":
            return condition
    return "Running"


def _job_duration(job: dict, now: datetime.datetime) -> str:
    status = job.get("status") or {}
    start = parse_time(status.get("startTime"))
    if start is None:
        return ""
    end = parse_time(status.get("completionTime")) or now
    return human_duration((end - start).total_seconds())


def _endpoints(endpoints: dict) -> str:
    addresses = []
    for subset in endpoints.get("subsets") or []:
        for address in subset.get("addresses") or []:
            for port in subset.get("ports") or [{}]:
                addresses.append(f"{address.get('ip')}:{port.get('port')}" if port.get("port") else address.get("ip"))
    return ",".join(addresses) or "<none>"


def _node_status(node: dict) -> str:
    ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    status = {"True": "Ready", "False": "NotReady"}.get((ready or {}).get("status", ""), "Unknown")
    return status + (",SchedulingDisabled" if (node.get("spec") or {}).get("unschedulable") else "")


def _node_roles(node: dict) -> str:
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k)
    roles += [v for k, v in labels.items() if k == "kubernetes.io/role" and v]
    return ",".join(roles) or "<none>"


def _node_address(node: dict, kind: str) -> str:
    found = [a.get("address", "") for a in (node.get("status") or {}).get("addresses") or [] if a.get("type") == kind]
    return found[0] if found else "<none>"


def _get(*path: str, default: Any = "") -> Callable[[dict], Any]:
    def read(obj: dict) -> Any:
        value: Any = obj
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return default if value is None else value

    return read


# plural -> [(column, cell(obj, now))] for built-in types; other built-ins print NAME AGE.
BUILTIN_COLUMNS: dict[tuple[str, str], list[tuple[dict, Cell]]] = {
    ("", "namespaces"): [(_column("Status"), lambda o, n: _get("status", "phase")(o))],
    ("", "configmaps"): [(_column("Data", "integer"), lambda o, n: len(o.get("data") or {}) + len(o.get("binaryData") or {}))],
    ("", "secrets"): [
        (_column("Type"), lambda o, n: o.get("type", "")),
        (_column("Data", "integer"), lambda o, n: len(o.get("data") or {})),
    ],
    ("", "serviceaccounts"): [(_column("Secrets", "integer"), lambda o, n: len(o.get("secrets") or []))],
    ("", "pods"): [
        (_column("Ready"), lambda o, n: _pod_ready(o)),
        (_column("Status"), lambda o, n: _pod_status(o)),
        (
            _column("Restarts", "string"),
            lambda o, n: str(sum(s.get("restartCount", 0) for s in (o.get("status") or {}).get("containerStatuses") or [])),
        ),
        (AGE_COLUMN, _created),
        (_column("IP", priority=1), lambda o, n: _get("status", "podIP", default="<none>")(o)),
        (_column("Node", priority=1), lambda o, n: _get("spec", "nodeName", default="<none>")(o)),
    ],
    ("", "events"): [
        (_column("Last Seen"), _event_last_seen),
        (_column("Type"), lambda o, n: o.get("type", "")),
        (_column("Reason"), lambda o, n: o.get("reason", "")),
        (_column("Object"), lambda o, n: _event_object(o)),
        (_column("Message"), lambda o, n: o.get("message", "")),
    ],
    ("", "services"): [
        (_column("Type"), lambda o, n: _get("spec", "type", default="ClusterIP")(o)),
        (_column("Cluster-IP"), lambda o, n: _get("spec", "clusterIP", default="<none>")(o)),
        (_column("External-IP"), lambda o, n: "<none>"),
        (_column("Port(s)"), lambda o, n: _service_ports(o)),
    ],
    ("", "endpoints"): [(_column("Endpoints"), lambda o, n: _endpoints(o))],
    ("apps", "deployments"): [
        (
            _column("Ready"),
            lambda o, n: f"{_get('status', 'readyReplicas', default=0)(o)}/{_get('spec', 'replicas', default=1)(o)}",
        ),
        (_column("Up-to-date", "integer"), lambda o, n: _get("status", "updatedReplicas", default=0)(o)),
        (_column("Available", "integer"), lambda o, n: _get("status", "availableReplicas", default=0)(o)),
    ],
    ("apps", "replicasets"): [
        (_column("Desired", "integer"), lambda o, n: _get("spec", "replicas", default=1)(o)),
        (_column("Current", "integer"), lambda o, n: _get("status", "replicas", default=0)(o)),
        (_column("Ready", "integer"), lambda o, n: _get("status", "readyReplicas", default=0)(o)),
    ],
    ("batch", "jobs"): [
        (_column("Status"), lambda o, n: _job_status(o)),
        (
            _column("Completions"),
            lambda o, n: f"{_get('status', 'succeeded', default=0)(o)}/{_get('spec', 'completions', default=1)(o)}",
        ),
        (_column("Duration"), _job_duration),
    ],
    ("batch", "cronjobs"): [
        (_column("Schedule"), lambda o, n: _get("spec", "schedule")(o)),
        (_column("Timezone"), lambda o, n: _get("spec", "timeZone", default="<none>")(o)),
        (_column("Suspend", "boolean"), lambda o, n: bool(_get("spec", "suspend", default=False)(o))),
        (_column("Active", "integer"), lambda o, n: len(_get("status", "active", default=[])(o) or [])),
        (_column("Last Schedule"), lambda o, n: age(t, n) if (t := _get("status", "lastScheduleTime")(o)) else "<none>"),
    ],
    ("", "nodes"): [
        (_column("Status"), lambda o, n: _node_status(o)),
        (_column("Roles"), lambda o, n: _node_roles(o)),
        (AGE_COLUMN, _created),
        (_column("Version"), lambda o, n: _get("status", "nodeInfo", "kubeletVersion")(o)),
        (_column("Internal-IP", priority=1), lambda o, n: _node_address(o, "InternalIP")),
        (_column("External-IP", priority=1), lambda o, n: _node_address(o, "ExternalIP")),
        (_column("OS-Image", priority=1), lambda o, n: _get("status", "nodeInfo", "osImage")(o)),
        (_column("Kernel-Version", priority=1), lambda o, n: _get("status", "nodeInfo", "kernelVersion")(o)),
        (_column("Container-Runtime", priority=1), lambda o, n: _get("status", "nodeInfo", "containerRuntimeVersion")(o)),
    ],
    ("", "replicationcontrollers"): [
        (_column("Desired", "integer"), lambda o, n: _get("spec", "replicas", default=1)(o)),
        (_column("Current", "integer"), lambda o, n: _get("status", "replicas", default=0)(o)),
        (_column("Ready", "integer"), lambda o, n: _get("status", "readyReplicas", default=0)(o)),
    ],
    ("apps", "daemonsets"): [
        (_column("Desired", "integer"), lambda o, n: _get("status", "desiredNumberScheduled", default=0)(o)),
        (_column("Current", "integer"), lambda o, n: _get("status", "currentNumberScheduled", default=0)(o)),
        (_column("Ready", "integer"), lambda o, n: _get("status", "numberReady", default=0)(o)),
        (_column("Up-to-date", "integer"), lambda o, n: _get("status", "updatedNumberScheduled", default=0)(o)),
        (_column("Available", "integer"), lambda o, n: _get("status", "numberAvailable", default=0)(o)),
        (
            _column("Node Selector"),
            lambda o, n: (
                ",".join(f"{k}={v}" for k, v in sorted(_get("spec", "template", "spec", "nodeSelector", default={})(o).items()))
                or "<none>"
            ),
        ),
    ],
    ("apiregistration.k8s.io", "apiservices"): [
        (
            _column("Service"),
            lambda o, n: (lambda s: f"{s.get('namespace')}/{s.get('name')}" if s else "Local")(
                _get("spec", "service", default={})(o)
            ),
        ),
        (
            _column("Available"),
            lambda o, n: next(
                (c.get("status", "") for c in _get("status", "conditions", default=[])(o) if c.get("type") == "Available"),
                "Unknown",
            ),
        ),
    ],
    ("coordination.k8s.io", "leases"): [(_column("Holder"), lambda o, n: _get("spec", "holderIdentity")(o))],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        (_column("Created At", "date"), lambda o, n: o["metadata"].get("creationTimestamp", ""))
    ],
}
_NO_AGE = {("", "events"), ("", "pods"), ("", "nodes"), ("apiextensions.k8s.io", "customresourcedefinitions")}


def _json_cell(type_: str, value: Any, now: datetime.datetime) -> Any:
    """Upstream `cellForJSONValue`: a typed cell, or None when the value has the wrong type."""
    if value is None:
        return None
    if type_ == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return int(value)
    if type_ == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "date":
        return age(value, now) if parse_time(value) else None
    if isinstance(value, str):
        return value
    return (
        json.dumps(value, separators=(",", ":"))
        if isinstance(value, (dict, list))
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


def columns_of(rtype: registry.ResourceType) -> list[tuple[dict, Cell]]:
    if rtype.custom:
        if not rtype.printer_columns:
            return [(AGE_COLUMN, _created)]
        columns = []
        for spec in rtype.printer_columns:
            column = _column(
                spec["name"],
                spec.get("type", "string"),
                description=spec.get("description", ""),
                priority=spec.get("priority", 0),
                format_=spec.get("format", ""),
            )

            def cell(obj: dict, now: datetime.datetime, path: str = spec["jsonPath"], type_: str = column["type"]):
                return _json_cell(type_, jsonpath.first(obj, path), now)

            columns.append((column, cell))
        return columns
    key = (rtype.group, rtype.plural)
    columns = list(BUILTIN_COLUMNS.get(key, []))
    if key not in _NO_AGE:
        columns.append((AGE_COLUMN, _created))
    return columns


def partial_metadata(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def row(
    rtype: registry.ResourceType,
    obj: dict,
    now: datetime.datetime,
    *,
    include_object: str = "Metadata",
    columns: list[tuple[dict, Cell]] | None = None,
) -> dict:
    columns = columns if columns is not None else columns_of(rtype)
    cells = [obj["metadata"]["name"]]
    for _, cell in columns:
        try:
            cells.append(cell(obj, now))
        except (KeyError, TypeError, ValueError, AttributeError):
            cells.append(None)
    result: dict[str, Any] = {"cells": cells}
    if include_object == "Object":
        result["object"] = obj
    elif include_object != "None":
        result["object"] = partial_metadata(obj)
    return result


def table(
    rtype: registry.ResourceType,
    objects: list[dict],
    *,
    now: datetime.datetime,
    resource_version: str = "",
    continue_token: str = "",
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> dict:
    """A Table of `objects`; watch events carry one-row tables without column definitions after the first."""
    columns = columns_of(rtype)
    body: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}}
    if continue_token:
        body["metadata"]["continue"] = continue_token
    body["columnDefinitions"] = [NAME_COLUMN] + [column for column, _ in columns] if with_columns else []
    body["rows"] = [row(rtype, obj, now, include_object=include_object, columns=columns) for obj in objects]
    return body
