"""Pure readings of a pod spec: environment, volume contents, mounts, limits, names.

Owns how a container's environment is built from ``env``/``envFrom`` (values, ConfigMap and
Secret keys, field references), what files each ``configMap``/``secret`` volume holds, and
the parsing of resource quantities. Takes the ConfigMaps and Secrets as plain dicts fetched
by the kubelet; does no I/O.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import os
import re

_QUANTITY = re.compile(r"^([0-9.]+(?:[eE][-+]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_FACTORS = {
    None: 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_EXPANSION = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class ConfigError(Exception):
    """The pod references something missing; the container waits with
    ``CreateContainerConfigError`` and this message."""


@dataclasses.dataclass(frozen=True)
class References:
    """The ConfigMaps and Secrets (by name, in the pod's namespace) a pod needs."""

    configmaps: frozenset[str]
    secrets: frozenset[str]


def quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity as a number (``"512Mi"`` -> 536870912)."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"invalid resource quantity {value!r}: expected e.g. 512Mi, 1G, 0.5")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def memory_limit(container: dict) -> int | None:
    """The container's memory limit in bytes, or None when it has none."""
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return None if limit is None else int(quantity(limit))


def references(pod: dict) -> References:
    """Every ConfigMap and Secret the pod's env, envFrom and volumes name."""
    configmaps: set[str] = set()
    secrets: set[str] = set()
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            if "configMapKeyRef" in source:
                configmaps.add(source["configMapKeyRef"]["name"])
            if "secretKeyRef" in source:
                secrets.add(source["secretKeyRef"]["name"])
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                configmaps.add(source["configMapRef"]["name"])
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            configmaps.add(volume["configMap"]["name"])
        if "secret" in volume:
            secrets.add(volume["secret"]["secretName"])
    return References(frozenset(configmaps), frozenset(secrets))


def string_data(obj: dict) -> dict[str, bytes]:
    """The key -> bytes content of a ConfigMap (data + binaryData) or Secret (base64 data)."""
    if obj.get("kind") == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    content = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    content.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return content


def environment(
    pod: dict, container: dict, *, configmaps: dict[str, dict], secrets: dict[str, dict], pod_ip: str
) -> dict[str, str]:
    """The variables ``env`` and ``envFrom`` give the container, in Kubernetes' precedence
    (``env`` over ``envFrom``, later entries over earlier, ``$(VAR)`` expanded).

    Raises :class:`ConfigError` naming a missing, non-optional ConfigMap, Secret or key.
    """
    result: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for field, objects in (("configMapRef", configmaps), ("secretRef", secrets)):
            if field not in source:
                continue
            ref = source[field]
            obj = objects.get(ref["name"])
            if obj is None:
                if not ref.get("optional"):
                    raise ConfigError(f'{_kind(field)} "{ref["name"]}" not found')
                continue
            for key, value in string_data(obj).items():
                if _ENV_NAME.match(prefix + key):
                    result[prefix + key] = value.decode(errors="replace")
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" in var:
            value = _value_from(
                pod, container, var["valueFrom"], configmaps=configmaps, secrets=secrets, pod_ip=pod_ip, name=name
            )
            if value is None:
                continue
        else:
            value = expand(var.get("value") or "", result)
        result[name] = value
    return result


def expand(text: str, variables: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known variables are replaced, ``$$`` is ``$``,
    unknown references are left as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return variables.get(match.group(1), match.group(0))

    return _EXPANSION.sub(replace, text)


def _value_from(
    pod: dict, container: dict, source: dict, *, configmaps: dict[str, dict], secrets: dict[str, dict], pod_ip: str, name: str
) -> str | None:
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        fields = {
            "metadata.name": pod["metadata"]["name"],
            "metadata.namespace": pod["metadata"].get("namespace", "default"),
            "metadata.uid": pod["metadata"].get("uid", ""),
            "spec.nodeName": (pod.get("spec") or {}).get("nodeName") or "local",
            "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName") or "default",
            "status.podIP": pod_ip,
            "status.hostIP": "127.0.0.1",
        }
        match = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
        if match:
            return (pod["metadata"].get(match.group(1)) or {}).get(match.group(2), "")
        if path not in fields:
            raise ConfigError(f"env {name}: unsupported fieldRef.fieldPath {path!r}")
        return fields[path]
    for field, objects in (("configMapKeyRef", configmaps), ("secretKeyRef", secrets)):
        if field in source:
            ref = source[field]
            obj = objects.get(ref["name"])
            content = string_data(obj) if obj is not None else None
            if content is None or ref["key"] not in content:
                if ref.get("optional"):
                    return None
                if content is None:
                    raise ConfigError(f'{_kind(field)} "{ref["name"]}" not found')
                raise ConfigError(
                    f"couldn't find key {ref['key']} in {_kind(field)} "
                    f"{pod['metadata'].get('namespace', 'default')}/{ref['name']}"
                )
            return content[ref["key"]].decode(errors="replace")
    if "resourceFieldRef" in source:
        return resource_field(pod, container, source["resourceFieldRef"], name=name)
    raise ConfigError(f"env {name}: valueFrom needs fieldRef, resourceFieldRef, configMapKeyRef or secretKeyRef")


_RESOURCE_FIELD = re.compile(r"^(limits|requests)\.(cpu|memory|ephemeral-storage)$")


def resource_field(pod: dict, container: dict, ref: dict, *, name: str) -> str:
    """The downward API's ``resourceFieldRef``: a container's limit or request divided by
    ``divisor`` and rounded up, as the kubelet gives it. A limit that is not set is the node's
    allocatable amount (here: the machine's); a request that is not set is its limit if one is
    set, else 0."""
    match = _RESOURCE_FIELD.match(ref.get("resource", ""))
    if not match:
        raise ConfigError(f"env {name}: unsupported resourceFieldRef.resource {ref.get('resource')!r}")
    kind, resource = match.groups()
    if ref.get("containerName"):
        named = [c for c in (pod.get("spec") or {}).get("containers", []) if c.get("name") == ref["containerName"]]
        if not named:
            raise ConfigError(
                f"env {name}: resourceFieldRef.containerName {ref['containerName']!r} is not a container of the pod"
            )
        container = named[0]
    resources = container.get("resources") or {}
    limit = (resources.get("limits") or {}).get(resource)
    request = (resources.get("requests") or {}).get(resource)
    if kind == "limits":
        amount = quantity(limit) if limit is not None else machine_allocatable(resource)
    else:
        amount = quantity(request) if request is not None else (quantity(limit) if limit is not None else 0.0)
    divisor = quantity(ref.get("divisor") or "1")
    return str(math.ceil(amount / divisor - 1e-9))


def machine_allocatable(resource: str) -> float:
    """What the one local node offers of ``resource``: its CPUs, its physical memory, the free
    space of the filesystem the state lives on."""
    if resource == "cpu":
        return float(os.cpu_count() or 1)
    if resource == "memory":
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    stat = os.statvfs(os.getcwd())
    return float(stat.f_bavail * stat.f_frsize)


def _kind(field: str) -> str:
    return "configmap" if field.startswith("configMap") else "secret"


def volume_files(volume: dict, *, configmaps: dict[str, dict], secrets: dict[str, dict]) -> dict[str, bytes] | None:
    """Relative path -> content of a ``configMap`` or ``secret`` volume (None for other
    volume types, which start empty). Raises :class:`ConfigError` when the source is
    missing and not optional."""
    if "configMap" in volume:
        source, obj = volume["configMap"], configmaps.get(volume["configMap"]["name"])
        what = f'configmap "{source["name"]}"'
    elif "secret" in volume:
        source, obj = volume["secret"], secrets.get(volume["secret"]["secretName"])
        what = f'secret "{source["secretName"]}"'
    else:
        return None
    if obj is None:
        if source.get("optional"):
            return {}
        raise ConfigError(f"{what} not found (volume {volume['name']!r})")
    content = string_data(obj)
    if not source.get("items"):
        return content
    files = {}
    for item in source["items"]:
        if item["key"] not in content:
            if source.get("optional"):
                continue
            raise ConfigError(f"{what} has no key {item['key']!r} (volume {volume['name']!r})")
        files[item["path"]] = content[item["key"]]
    return files


def container_port(pod: dict, target: int | str) -> int | None:
    """A Service ``targetPort`` (number or port name) as a number for ``pod``."""
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None
