"""Every contract of mlkube, as pydantic models: the kinds of group mlkube.io/v1alpha1 (typed spec
and status, the source of crds/), and the documents two processes exchange (trainer input and
result, routing table, drift-check request and result, inference-log records). Depends on nothing
of mlkube but ``common``, and on no framework but pydantic.
"""
