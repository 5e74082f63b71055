"""The process runtime of mlkube's embedded control plane.

Plays kubelet (registering the machine as the one Node), the Job, Deployment, DaemonSet,
ReplicationController and ServiceAccount (each namespace's ``default``) controllers, kube-proxy
(loopback Services) and KServe's InferenceService controller against the embedded API server,
running every container as a local process. It talks to the API server only through the
Kubernetes API, and leaves each container's environment and working directory in
``runtime/pods/{uid}/exec/`` for ``kubectl exec`` (execenv.py).

Public surface:

- :func:`run` ``(kubeconfig, state_dir, stop_event, settings=Settings())``: blocking, for a
  thread of ``mlkube local up``; returns once ``stop_event`` is set and every process stopped.
- :func:`serve`: the same as a coroutine with an ``asyncio.Event``.
- ``python -m mlkube.local.runtime --kubeconfig K --state-dir D``: the same as a process
  (SIGTERM/SIGINT stop it).

What runs where (``state_dir`` is the API server's, so ``kubectl logs`` finds the logs):

- container output: ``logs/{namespace}/{pod}/{container}/{restartCount}.log``
- each container's files: ``runtime/pods/{uid}/roots/{container}``, given to it as
  ``MLKUBE_CONTAINER_ROOT`` (volumes are symlinked there at their mount paths); its address:
  ``status.podIP`` in 127.2.0.0/16, given as ``MLKUBE_BIND_HOST``
- live process records (for killing orphans after a crash): ``runtime/processes``; one runtime
  per state directory (``runtime/lock``)

Known limits: one node (DaemonSets run one pod; no taints, affinity or resource fitting); Jobs run one pod at a time (parallelism and completions 1); Deployments own
their pods directly (no ReplicaSet objects) and ignore ``paused``; Services proxy TCP on their
clusterIP only (no NodePort/LoadBalancer, no selector-less Services); a port below 1024
needs the privilege to bind it; InferenceServices run the predictor only (no transformer or
explainer) and no ``pvc://`` storage; a process that leaves its process group escapes
supervision.
"""

from mlkube.local.runtime.manager import Settings, run, serve

__all__ = ["Settings", "run", "serve"]
