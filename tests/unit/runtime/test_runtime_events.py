"""The shape of the Events the runtime records."""

from mlkube.local.runtime import events


def test_event_names_the_object_the_container_and_the_component():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u"}}
    body = events.event(
        pod,
        reason="BackOff",
        message="Back-off restarting failed container c",
        type_="Warning",
        component="kubelet",
        field_path="spec.containers{c}",
    )
    assert body["metadata"] == {"generateName": "p.", "namespace": "ns"}
    assert body["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "p",
        "namespace": "ns",
        "uid": "u",
        "fieldPath": "spec.containers{c}",
    }
    assert (body["type"], body["reason"], body["source"]["component"], body["count"]) == ("Warning", "BackOff", "kubelet", 1)
    assert body["firstTimestamp"] == body["lastTimestamp"]
