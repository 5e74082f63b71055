"""Everything the operator says over the network: the Kubernetes API (the only client of it in
operator code), the routers' stats, Alertmanager, worker processes, Prometheus metrics."""
