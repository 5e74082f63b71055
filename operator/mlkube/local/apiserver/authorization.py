"""Who a request acts as, and whether RBAC lets that identity do it.

Owns the identity model of local mode: the kubeconfig's bearer token is the only credential and
belongs to the cluster admin (`mlkube-admin`, group `system:masters`, which RBAC never denies).
The admin may impersonate (`kubectl --as=... --as-group=...`, the `Impersonate-User`/
`Impersonate-Group` headers); an impersonated request is authorised by upstream's RBAC rules
against the stored Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, and refused with
upstream's 403 wording when nothing grants it. Every identity may use discovery, /version,
/openapi and the self-subject reviews (upstream's `system:discovery`, `system:public-info-viewer`
and `system:basic-user` roles). Also turns a request into the attributes RBAC and
SelfSubjectAccessReview reason about. Must not write storage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from mlkube.local.apiserver import errors, storage

ADMIN_USER = "mlkube-admin"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"
RBAC = "rbac.authorization.k8s.io"
# Paths every authenticated identity may GET (upstream system:discovery and system:public-info-viewer).
PUBLIC_PATHS = ("/api", "/api/*", "/apis", "/apis/*", "/version", "/version/", "/openapi/*", "/healthz", "/livez", "/readyz")
# Resources every authenticated identity may create (upstream system:basic-user).
SELF_REVIEWS = {("authorization.k8s.io", "selfsubjectaccessreviews"), ("authorization.k8s.io", "selfsubjectrulesreviews")}
SELF_REVIEWS |= {("authentication.k8s.io", "selfsubjectreviews")}
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def is_admin(self) -> bool:
        return MASTERS in self.groups

    def info(self) -> dict[str, Any]:
        """authentication.k8s.io/v1 UserInfo."""
        body: dict[str, Any] = {"username": self.name}
        if self.uid:
            body["uid"] = self.uid
        body["groups"] = list(self.groups)
        if self.extra:
            body["extra"] = {key: list(values) for key, values in self.extra}
        return body


ADMIN = User(ADMIN_USER, (MASTERS, AUTHENTICATED))


@dataclasses.dataclass(frozen=True)
class Attributes:
    """What a request does, as RBAC sees it (upstream `authorizer.Attributes`)."""

    verb: str
    namespace: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""  # set for non-resource requests only

    @property
    def is_resource(self) -> bool:
        return not self.path


def user_of(request: web.Request) -> User:
    """The admin, or whom the admin impersonates; 400/403 for impersonation headers upstream refuses too."""
    headers = request.headers
    name = headers.get("Impersonate-User", "").strip()
    groups = [value.strip() for value in headers.getall("Impersonate-Group", []) if value.strip()]
    uid = headers.get("Impersonate-Uid", "").strip()
    extra: dict[str, list[str]] = {}
    for key, value in headers.items():
        if key.lower().startswith("impersonate-extra-"):
            extra.setdefault(key[len("impersonate-extra-") :].lower(), []).append(value)
    if not name:
        if groups or uid or extra:
            raise errors.APIError(
                400, "BadRequest", "requested impersonation of groups, uid or extra without impersonating a user"
            )
        return ADMIN
    all_groups = list(groups)
    if name.startswith(SA_PREFIX):
        namespace = name[len(SA_PREFIX) :].split(":", 1)[0]
        all_groups += ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    if name != "system:anonymous" and AUTHENTICATED not in all_groups:
        all_groups.append(AUTHENTICATED)
    return User(name, tuple(dict.fromkeys(all_groups)), uid, tuple((k, tuple(v)) for k, v in sorted(extra.items())))


def attributes_of(request: web.Request) -> Attributes:
    """Upstream's RequestInfo: resource requests under /api and /apis, everything else a non-resource path."""
    segments = [part for part in request.path.split("/") if part]
    method = request.method.upper()
    if segments[:1] == ["api"] and len(segments) >= 3:
        group, version, rest = "", segments[1], segments[2:]
    elif segments[:1] == ["apis"] and len(segments) >= 4:
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        return Attributes(verb={"GET": "get", "HEAD": "get"}.get(method, method.lower()), path=request.path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]  # a Namespace itself is authorised in its own namespace, as upstream does
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource, name, subresource = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
    if method in ("GET", "HEAD"):
        watching = request.query.get("watch", "").lower() in ("1", "true")
        verb = "watch" if watching else ("get" if name else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _WRITE_VERBS.get(method, method.lower())
    return Attributes(verb, namespace, group, version, resource, subresource, name)


def authorize(request: web.Request, store: storage.Store) -> User:
    """The request's user; raises 403 when an impersonated identity may not do what it asks."""
    user = user_of(request)
    if not user.is_admin:
        attributes = attributes_of(request)
        allowed, _ = decide(store, user, attributes)
        if not allowed:
            raise forbidden(user, attributes)
    return user


def decide(store: storage.Store, user: User, attributes: Attributes) -> tuple[bool, str]:
    """(allowed, reason) as the RBAC authorizer decides it, plus the default bootstrap roles."""
    if user.is_admin:
        return True, f"{user.name} is in group {MASTERS}"
    if not attributes.is_resource:
        if attributes.verb == "get" and any(_path_matches(pattern, attributes.path) for pattern in PUBLIC_PATHS):
            return True, 'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery"'
    elif attributes.verb == "create" and (attributes.group, attributes.resource) in SELF_REVIEWS:
        return True, 'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user"'
    for binding, rules in _grants(store, user, attributes.namespace):
        if any(_rule_allows(rule, attributes) for rule in rules):
            return True, f"RBAC: allowed by {binding}"
    return False, ""


def rules_for(store: storage.Store, user: User, namespace: str) -> list[dict[str, Any]]:
    """Every PolicyRule that applies to `user` in `namespace` (SelfSubjectRulesReview)."""
    if user.is_admin:
        return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}]
    rules = [{"verbs": ["create"], "apiGroups": [group], "resources": [resource]} for group, resource in sorted(SELF_REVIEWS)]
    rules.append({"verbs": ["get"], "nonResourceURLs": list(PUBLIC_PATHS)})
    for _, granted in _grants(store, user, namespace):
        rules.extend(granted)
    return rules


def forbidden(user: User, attributes: Attributes) -> errors.APIError:
    """Upstream's wording: `pods is forbidden: User "u" cannot list resource "pods" in API group "" in the namespace "n"`."""
    if not attributes.is_resource:
        message = f'forbidden: User "{user.name}" cannot {attributes.verb} path "{attributes.path}"'
        return errors.APIError(403, "Forbidden", message, {})
    resource = attributes.resource + (f"/{attributes.subresource}" if attributes.subresource else "")
    scope = f'in the namespace "{attributes.namespace}"' if attributes.namespace else "at the cluster scope"
    subject = errors.qualified(resource, attributes.group)
    subject += f' "{attributes.name}"' if attributes.name else ""
    message = (
        f'{subject} is forbidden: User "{user.name}" cannot {attributes.verb} resource "{resource}" '
        f'in API group "{attributes.group}" {scope}'
    )
    return errors.APIError(
        403, "Forbidden", message, {"name": attributes.name, "group": attributes.group, "kind": attributes.resource}
    )


def _grants(store: storage.Store, user: User, namespace: str) -> Iterable[tuple[str, list[dict[str, Any]]]]:
    """(binding description, rules of its role) for each binding whose subjects include `user`."""
    bindings = [("ClusterRoleBinding", b) for b in store.list(f"{RBAC}/clusterrolebindings")]
    if namespace:
        bindings += [("RoleBinding", b) for b in store.list(f"{RBAC}/rolebindings", namespace)]
    for kind, binding in bindings:
        binding_namespace = binding["metadata"].get("namespace", "")
        if not any(_subject_matches(s, user, binding_namespace) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            role = store.get(f"{RBAC}/clusterroles", "", ref.get("name", ""))
        elif ref.get("kind") == "Role" and binding_namespace:
            role = store.get(f"{RBAC}/roles", binding_namespace, ref.get("name", ""))
        else:
            role = None
        if role is None:
            continue
        where = f' in "{binding_namespace}"' if binding_namespace else ""
        name = binding["metadata"]["name"]
        yield (f'{kind} "{name}"{where} of {ref["kind"]} "{ref["name"]}" to User "{user.name}"', role.get("rules") or [])


def _subject_matches(subject: dict[str, Any], user: User, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"{SA_PREFIX}{namespace}:{name}"
    return False


def _rule_allows(rule: dict[str, Any], attributes: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attributes.verb not in verbs:
        return False
    if not attributes.is_resource:
        return any(_path_matches(pattern, attributes.path) for pattern in rule.get("nonResourceURLs") or [])
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attributes.group not in groups:
        return False
    resources = rule.get("resources") or []
    if attributes.subresource:
        wanted = {f"{attributes.resource}/{attributes.subresource}", f"*/{attributes.subresource}", "*"}
    else:
        wanted = {attributes.resource, "*"}
    if not wanted & set(resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or attributes.name in names


def _path_matches(pattern: str, path: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern
