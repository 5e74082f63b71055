"""The mlkube API (group mlkube.io, version v1alpha1): pydantic models of the four kinds.

These models are the single source of truth for ``crds/``, for the operator's parsing of
specs, and for the trainer's input. They import nothing but pydantic.
"""
