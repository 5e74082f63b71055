"""RBAC decisions for impersonated identities, as upstream's RBAC authorizer makes them."""

from mlkube.local.apiserver import authorization

RBAC = "rbac.authorization.k8s.io"


class FakeStore:
    """The two storage reads authorization.py uses, over a dict of objects."""

    def __init__(self, objects: dict[str, list[dict]]) -> None:
        self.objects = objects

    def list(self, key, namespace=None):
        return [o for o in self.objects.get(key, []) if namespace is None or o["metadata"].get("namespace", "") == namespace]

    def get(self, key, namespace, name):
        found = [o for o in self.list(key, namespace or None) if o["metadata"]["name"] == name]
        return found[0] if found else None


def _meta(name, namespace=""):
    return {"name": name, **({"namespace": namespace} if namespace else {})}


STORE = FakeStore(
    {
        f"{RBAC}/roles": [
            {
                "metadata": _meta("reader", "team"),
                "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}],
            }
        ],
        f"{RBAC}/rolebindings": [
            {
                "metadata": _meta("bot-reads", "team"),
                "subjects": [{"kind": "ServiceAccount", "name": "bot"}],
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "reader"},
            }
        ],
        f"{RBAC}/clusterroles": [
            {
                "metadata": _meta("deploys"),
                "rules": [{"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"]}],
            }
        ],
        f"{RBAC}/clusterrolebindings": [
            {
                "metadata": _meta("ops-deploys"),
                "subjects": [{"kind": "Group", "apiGroup": RBAC, "name": "ops"}],
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "deploys"},
            }
        ],
    }
)
BOT = authorization.User("system:serviceaccount:team:bot", ("system:serviceaccounts", "system:authenticated"))
OPS = authorization.User("alice", ("ops", "system:authenticated"))


def _can(user, verb, resource, namespace="team", group="", name="", subresource=""):
    attributes = authorization.Attributes(verb, namespace, group, "v1", resource, subresource, name)
    return authorization.decide(STORE, user, attributes)[0]


def test_admin_may_do_anything():
    assert _can(authorization.ADMIN, "delete", "nodes", namespace="")


def test_role_binding_grants_only_in_its_namespace_and_only_its_verbs():
    assert _can(BOT, "get", "pods") and _can(BOT, "get", "pods", subresource="log")
    assert not _can(BOT, "create", "pods")
    assert not _can(BOT, "get", "pods", namespace="other")
    assert not _can(BOT, "get", "pods", subresource="exec")


def test_group_subject_and_resource_names():
    assert _can(OPS, "update", "deployments", group="apps", name="web", namespace="any")
    assert not _can(OPS, "update", "deployments", group="apps", name="api", namespace="any")
    assert not _can(OPS, "update", "deployments", group="", name="web", namespace="any")


def test_every_identity_may_discover_and_review_itself():
    assert authorization.decide(STORE, BOT, authorization.Attributes("get", path="/apis/apps/v1"))[0]
    assert not authorization.decide(STORE, BOT, authorization.Attributes("get", path="/metrics"))[0]
    assert _can(BOT, "create", "selfsubjectaccessreviews", group="authorization.k8s.io", namespace="")


def test_forbidden_message_is_upstreams():
    attributes = authorization.Attributes("create", "team", "", "v1", "pods")
    assert authorization.forbidden(BOT, attributes).message == (
        'pods is forbidden: User "system:serviceaccount:team:bot" cannot create resource "pods" '
        'in API group "" in the namespace "team"'
    )
    cluster = authorization.Attributes("list", "", "apps", "v1", "deployments")
    assert authorization.forbidden(BOT, cluster).message.endswith('in API group "apps" at the cluster scope')


def test_rules_review_lists_the_granted_rules():
    rules = authorization.rules_for(STORE, BOT, "team")
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]} in rules
    assert authorization.rules_for(STORE, BOT, "other") == authorization.rules_for(STORE, BOT, "")
