"""``mlkube dashboard``: a read-only web view of projects, rollouts and drift, built from list + watch.

An entry point like the kubectl plugin: a client of the API through ``clients.k8s``, with no
database of its own (``store`` keeps what it watched in memory). ``command`` starts it,
``informer`` lists and watches, ``pages`` renders, ``server`` answers GET requests.
"""
