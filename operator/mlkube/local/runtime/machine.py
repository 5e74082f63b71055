"""The local machine as Kubernetes sees it: the one Node's name, labels, capacity and usage.

Owns the readings of the operating system the Node object and the `metrics.k8s.io` API report:
the node name (the host name, made a valid DNS label), capacity (CPUs this process may use,
MemTotal, disk of the state directory, the kubelet's default 110 pods), whole-machine CPU time
and memory in use (/proc/stat, /proc/meminfo), and the CPU time and resident memory of a
container's process group (/proc/<pid>/stat, as processes.py measures memory limits). Linux
only, as the runtime is. No API calls.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import shutil
import socket
import sys

from mlkube.local.runtime import processes

MAX_PODS = 110  # the kubelet's default --max-pods
KUBELET_VERSION = "v1.32.0-mlkube"
ROLE_LABEL = "node-role.kubernetes.io/control-plane"


def node_name() -> str:
    """The Node's name: the host name, lower-cased and cut to a DNS-1123 label ("localhost" if nothing is left)."""
    name = re.sub(r"[^a-z0-9-]", "-", socket.gethostname().split(".")[0].lower()).strip("-")[:63].strip("-")
    return name or "localhost"


def architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def labels() -> dict[str, str]:
    """The well-known labels a kubelet puts on its Node (nodeSelector and DaemonSets match them)."""
    name = node_name()
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": architecture(),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": architecture(),
        ROLE_LABEL: "",
    }


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    values = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


def capacity(state_dir: str) -> dict[str, str]:
    """The Node's status.capacity (allocatable is the same: nothing is reserved locally)."""
    return {
        "cpu": str(cpus()),
        "memory": f"{meminfo().get('MemTotal', 0) // 1024}Ki",
        "ephemeral-storage": f"{shutil.disk_usage(state_dir).total // 1024}Ki",
        "pods": str(MAX_PODS),
    }


def node_info() -> dict[str, str]:
    try:
        os_image = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        os_image = ""
    return {
        "architecture": architecture(),
        "operatingSystem": "linux",
        "osImage": os_image or platform.platform(),
        "kernelVersion": platform.release(),
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": KUBELET_VERSION,
        "containerRuntimeVersion": f"mlkube-process://python{sys.version_info.major}.{sys.version_info.minor}",
        "machineID": _read_first("/etc/machine-id"),
        "systemUUID": "",
        "bootID": _read_first("/proc/sys/kernel/random/boot_id"),
    }


def _read_first(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.readline().strip()
    except OSError:
        return ""


@dataclasses.dataclass(frozen=True)
class Usage:
    """CPU time used so far (seconds, cumulative) and memory in use now (bytes)."""

    cpu_seconds: float
    memory_bytes: int


def machine_usage() -> Usage:
    """The whole machine: busy CPU time since boot (all CPUs) and MemTotal - MemAvailable."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    info = meminfo()
    return Usage(busy / processes.CLOCK_TICKS, info.get("MemTotal", 0) - info.get("MemAvailable", 0))


def group_usage(pgids: set[int]) -> dict[int, Usage]:
    """Each live process group in `pgids`: CPU time of its members (user + system) and their resident memory."""
    usage: dict[int, Usage] = {}
    for pgid, members in processes.group_members().items():
        if pgid not in pgids:
            continue
        ticks = memory = 0
        for pid in members:
            fields = processes.stat_fields(pid)
            if fields:
                ticks += int(fields[11]) + int(fields[12])
                memory += int(fields[21]) * processes.PAGE_SIZE
        usage[pgid] = Usage(ticks / processes.CLOCK_TICKS, memory)
    return usage
