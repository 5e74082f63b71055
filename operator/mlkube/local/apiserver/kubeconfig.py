"""The state directory's credentials: the bearer token (kept across restarts) and the kubeconfig file.

Owns file modes (directory 0700, files 0600) and atomic replacement, so a client never reads a
half-written kubeconfig. Must not start or stop anything.
"""

from __future__ import annotations

import os
import secrets

import yaml

TOKEN_FILE = "token"
KUBECONFIG_FILE = "kubeconfig"
CONTEXT = "mlkube-local"


def ensure_state_dir(state_dir: str) -> None:
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    os.chmod(state_dir, 0o700)


def _write_private(path: str, content: str) -> None:
    temporary = f"{path}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def load_or_create_token(state_dir: str) -> str:
    path = os.path.join(state_dir, TOKEN_FILE)
    if os.path.exists(path):
        with open(path) as handle:
            token = handle.read().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    _write_private(path, token + "\n")
    return token


def render(url: str, token: str, *, ca_data: str = "", namespace: str = "default") -> str:
    cluster = {"server": url}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
        "current-context": CONTEXT,
    }
    return yaml.safe_dump(config, sort_keys=False)


def write(state_dir: str, url: str, token: str, *, ca_data: str = "") -> str:
    path = os.path.join(state_dir, KUBECONFIG_FILE)
    _write_private(path, render(url, token, ca_data=ca_data))
    return path
