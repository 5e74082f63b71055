"""The process runtime of mlkube's embedded control plane.

Plays kubelet, Job and Deployment controllers, kube-proxy (loopback Services) and KServe's
InferenceService controller against the embedded API server, running every container as a
local process. Public surface:

- :func:`run` ``(kubeconfig, state_dir, stop_event, settings=Settings())``: blocking, for a
  thread of ``mlkube local up``; returns once ``stop_event`` is set and every process stopped.
- :func:`serve`: the same as a coroutine with an ``asyncio.Event``.
- ``python -m mlkube.local.runtime --kubeconfig K --state-dir D``: the same as a process.
"""

from mlkube.local.runtime.manager import Settings, run, serve

__all__ = ["Settings", "run", "serve"]
