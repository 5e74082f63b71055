"""The service-account files and variables a local pod gets, as the kubelet mounts them on a cluster."""

import stat

from mlkube.common import containerpath
from mlkube.local.runtime import kube, serviceaccount

IDENTITY = serviceaccount.Identity(server="https://127.0.0.1:41234", token="t0ken", ca_pem=b"-----BEGIN CERTIFICATE-----\n")


def pod(**spec):
    return {"metadata": {"name": "router-x", "namespace": "ml"}, "spec": {"containers": [], **spec}}


def test_the_token_ca_and_namespace_are_mounted_where_in_cluster_clients_look(tmp_path, monkeypatch):
    env = serviceaccount.mount(pod(), tmp_path, IDENTITY)
    assert env == {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": "41234",
        "KUBERNETES_SERVICE_PORT_HTTPS": "41234",
    }
    monkeypatch.setenv(containerpath.ROOT_ENV, str(tmp_path))
    mounted = containerpath.resolve(serviceaccount.MOUNT_PATH)
    assert (mounted / "token").read_text() == "t0ken" and (mounted / "namespace").read_text() == "ml"
    assert (mounted / "ca.crt").read_bytes() == IDENTITY.ca_pem
    assert stat.S_IMODE((mounted / "token").stat().st_mode) == 0o600


def test_nothing_is_mounted_when_the_pod_opts_out_or_the_runtime_has_no_token(tmp_path):
    assert serviceaccount.mount(pod(automountServiceAccountToken=False), tmp_path, IDENTITY) == {}
    assert serviceaccount.mount(pod(), tmp_path, None) == {}
    assert not any(tmp_path.iterdir())
    assert serviceaccount.identity(kube.Credentials(server="https://127.0.0.1:1", token=None, ca_pem=b"x")) is None
    lent = serviceaccount.identity(kube.Credentials(server="https://127.0.0.1:1", token="t", ca_pem=b"x"))
    assert lent == serviceaccount.Identity(server="https://127.0.0.1:1", token="t", ca_pem=b"x")
