"""The operator: Kopf handlers, reconcilers, pure plans and policy, and manifest builders.

Layers, top to bottom (import-linter enforces them): ``runner`` starts Kopf; ``handlers`` hold
the only ``@kopf`` code; ``reconcile`` observes the cluster, asks ``plans`` for a Plan and
executes it; ``plans`` turn one object and its observations into a Plan; ``policy`` holds the
pure decisions (rollout, analysis, registry, retraining, ...); ``manifests`` build the child
objects. Nothing below ``reconcile`` does I/O or reads the clock.
"""
