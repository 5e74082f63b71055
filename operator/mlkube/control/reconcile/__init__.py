"""Reconcilers, one module per kind: observe (every read), plan (pure), execute (apply, delete,
write status once, then post Events, alerts and metrics)."""
