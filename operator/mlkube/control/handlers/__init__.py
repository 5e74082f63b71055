"""Kopf handlers, one module per kind. The only package with ``@kopf`` decorators.

Importing this package registers every handler; ``mlkube operator`` runs them.
"""

from mlkube.control.handlers import batchprediction, deployment, modelversion, monitor, project, setup, trainingjob  # noqa: F401  (registration)
