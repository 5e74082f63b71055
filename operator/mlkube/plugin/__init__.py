"""The ``kubectl mlkube`` plugin: a client of the Kubernetes API for people (``kubectl-mlkube``).

``command`` is the entry point (argument parsing, reads and writes through ``clients.k8s``);
``tree`` renders a project's lifecycle and ``actions`` builds the writes a user would make by
hand (the ``mlkube.io/action`` annotation, an approval), both pure.
"""
