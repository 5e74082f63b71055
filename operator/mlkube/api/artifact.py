"""How a model version's pinned digest travels from the registry to the processes that load it.

The registry (``ModelVersion.spec.digest``, recorded from the trainer's result) is the
source of truth for what a version's ``MANIFEST.json`` hashes to. Every loader is handed that
digest and compares it with ``"sha256:" + sha256(MANIFEST.json)`` before it reads anything else
(``mlkube.ml.artifacts``): someone who can rewrite the artifact store, files and manifest alike,
cannot make a loader accept the result. The carriers:

- an InferenceService: the annotation :data:`DIGEST_ANNOTATION` (read by the local runtime's
  storage initializer) and the model's environment variable :data:`DIGEST_ENV` (read by the
  model server; the ServingRuntime container receives ``spec.predictor.model.env``);
- the trainer's input: ``champion.digest`` (``api.trainer``);
- the drift check's request: ``reference.digest`` (``api.driftcheck``).

Plain constants and one pattern: the contract both sides import.
"""

from __future__ import annotations

DIGEST_ANNOTATION = "mlkube.io/model-digest"
"""On an InferenceService: the digest of the version it serves."""
DIGEST_ENV = "MLKUBE_MODEL_DIGEST"
"""In the model server's (and the local storage initializer's) environment: the digest to expect."""
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
"""The form of a version digest."""
CARD = "model_card.json"
"""In a version's artifacts: the model card for machines."""
CARD_PAGE = "model_card.html"
"""In a version's artifacts: the same card for people (``ModelVersion.status.cardUri`` links it)."""
