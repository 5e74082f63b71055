"""The kubernetes Python client's e2e suite against `mlkube local up` (see test_k8sclient_e2e.py).

upstream/ holds the vendored tests; they run in a pytest of their own, never collected here.
"""

collect_ignore = ["upstream"]
