"""mlkube's embedded Kubernetes API server: what kubectl 1.32, Kopf 1.45 and kubernetes-python 37 talk to locally.

Entry points: `python -m mlkube.local.apiserver --state-dir DIR`, `server.APIServer`,
`server.run_in_thread` and `server.install_crds`. The behaviour it emulates is specified in
shared/apiserver-contract.md.

Module map (requests flow top to bottom):
  server      app, routing, bearer-token auth (TLS on 127.0.0.1), discovery/OpenAPI routes, lifecycle
  authorization  the admin identity, impersonation (`kubectl --as`) checked by RBAC; reviews: auth can-i/whoami
  endpoints   resource handlers: get/list/watch/create/update/patch/delete(collection)
  execstream  pods/exec over WebSocket (v5/v4.channel.k8s.io) or SPDY (execspdy.py) in the container's environment
  portforward pods/portforward: SPDY/3.1 in WebSocket (kubectl, spdy.py) or upgraded to (upgrade.py), v4.channel (python)
  metrics     metrics.k8s.io PodMetrics/NodeMetrics from the local processes (kubectl top)
  decoding    URL grammar, bodies by Content-Type (protobuf via protobuf.py), query options
  objects     write semantics: metadata, RV concurrency, no-ops, generation, status split, finalizers
  kinds       built-in kinds' defaults (Namespace, Service cluster IPs, Secret, Event times, Job...)
  crds        CRD validation/status and the resource types a CRD serves
  schema/cel  CRD schema pruning, defaulting, validation and CEL    (schema engineer)
  patch/apply merge, JSON, strategic patches; server-side apply     (patch engineer)
  watch       watch streams, bookmarks, 410 ERROR events
  collector   ownerReference GC, foreground/orphan, namespace and CRD termination
  storage     SQLite (WAL) persistence, global resourceVersion, event history (count and bytes), quarantine
  durability  group commit: fdatasync of the WAL before any response reflects a write
  statedir    the state directory's exclusive lock and private file modes (Secrets are stored unencrypted)
  limits      3 MiB bodies, 1.5 MiB objects, nesting depth, YAML alias budget
  registry, discovery, openapi, tables, selectors, jsonpath, logs, metadata, errors, kubeconfig, tls
"""
