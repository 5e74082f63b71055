"""The machine readings behind the Node object and the metrics API."""

import os
import re

from mlkube.local.runtime import machine, node


def test_the_node_is_named_and_labelled_after_the_host(monkeypatch):
    monkeypatch.setattr(machine.socket, "gethostname", lambda: "My_Laptop.example.org")
    assert machine.node_name() == "my-laptop"
    assert machine.labels()["kubernetes.io/hostname"] == "my-laptop"
    monkeypatch.setattr(machine.socket, "gethostname", lambda: "___")
    assert machine.node_name() == "localhost"


def test_capacity_and_usage_come_from_the_machine(tmp_path):
    capacity = machine.capacity(str(tmp_path))
    assert int(capacity["cpu"]) >= 1 and capacity["pods"] == "110"
    assert re.fullmatch(r"[1-9]\d*Ki", capacity["memory"]) and re.fullmatch(r"[1-9]\d*Ki", capacity["ephemeral-storage"])
    usage = machine.machine_usage()
    assert usage.cpu_seconds > 0 and 0 < usage.memory_bytes < int(capacity["memory"][:-2]) * 1024
    own = machine.group_usage({os.getpgid(0)})[os.getpgid(0)]
    assert own.cpu_seconds > 0 and own.memory_bytes > 0


def test_the_node_object_reports_ready_or_unknown(tmp_path):
    ready = node.desired(str(tmp_path))
    conditions = {c["type"]: c for c in ready["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "True" and conditions["Ready"]["reason"] == "KubeletReady"
    assert {conditions[k]["status"] for k in ("MemoryPressure", "DiskPressure", "PIDPressure")} == {"False"}
    assert ready["status"]["allocatable"] == ready["status"]["capacity"]
    stopped = node.desired(str(tmp_path), ready=False, previous=ready["status"]["conditions"])
    assert next(c for c in stopped["status"]["conditions"] if c["type"] == "Ready")["status"] == "Unknown"
