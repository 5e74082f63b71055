"""The self-subject review APIs: "what may I do" and "who am I".

Owns POST `authorization.k8s.io/v1` selfsubjectaccessreviews (`kubectl auth can-i`),
selfsubjectrulesreviews (`kubectl auth can-i --list`) and `authentication.k8s.io/v1`
selfsubjectreviews (`kubectl auth whoami`), answered for the request's identity as
authorization.py decides it (the admin, or whom it impersonates). Reviews are not stored, as
upstream. Must not write storage.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mlkube.local.apiserver import authorization, decoding, endpoints, errors, storage

AUTHZ = "/apis/authorization.k8s.io/v1"
AUTHN = "/apis/authentication.k8s.io/v1"


def add_routes(app: web.Application, store: storage.Store) -> None:
    """Register the review endpoints (before the generic resource routes, which would store them)."""
    reviews = Reviews(store)
    app.router.add_post(f"{AUTHZ}/selfsubjectaccessreviews", reviews.access)
    app.router.add_post(f"{AUTHZ}/selfsubjectrulesreviews", reviews.rules)
    app.router.add_post(f"{AUTHN}/selfsubjectreviews", reviews.whoami)


class Reviews:
    def __init__(self, store: storage.Store) -> None:
        self._store = store

    async def access(self, request: web.Request) -> web.Response:
        review = await _review(request, "authorization.k8s.io/v1", "SelfSubjectAccessReview")
        spec = review.get("spec") or {}
        resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if bool(resource) == bool(non_resource):
            raise _invalid(
                "SelfSubjectAccessReview",
                "spec.resourceAttributes",
                'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
            )
        if resource:
            attributes = authorization.Attributes(
                verb=resource.get("verb", ""),
                namespace=resource.get("namespace", ""),
                group=resource.get("group", ""),
                version=resource.get("version", ""),
                resource=resource.get("resource", ""),
                subresource=resource.get("subresource", ""),
                name=resource.get("name", ""),
            )
        else:
            attributes = authorization.Attributes(verb=non_resource.get("verb", ""), path=non_resource.get("path", "") or "/")
        allowed, reason = authorization.decide(self._store, authorization.user_of(request), attributes)
        review["status"] = {"allowed": allowed, **({"reason": reason} if reason else {})}
        return _answer(review)

    async def rules(self, request: web.Request) -> web.Response:
        review = await _review(request, "authorization.k8s.io/v1", "SelfSubjectRulesReview")
        namespace = (review.get("spec") or {}).get("namespace", "")
        resource_rules, non_resource_rules = [], []
        for rule in authorization.rules_for(self._store, authorization.user_of(request), namespace):
            if rule.get("nonResourceURLs"):
                non_resource_rules.append({"verbs": rule.get("verbs") or [], "nonResourceURLs": rule["nonResourceURLs"]})
            if rule.get("resources"):
                entry = {key: rule[key] for key in ("verbs", "apiGroups", "resources", "resourceNames") if rule.get(key)}
                entry.setdefault("verbs", [])
                resource_rules.append(entry)
        review["status"] = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": False}
        return _answer(review)

    async def whoami(self, request: web.Request) -> web.Response:
        review = await _review(request, "authentication.k8s.io/v1", "SelfSubjectReview")
        review["status"] = {"userInfo": authorization.user_of(request).info()}
        return _answer(review)


async def _review(request: web.Request, api_version: str, kind: str) -> dict[str, Any]:
    _, body = await decoding.body(request)
    if body is None:
        body = {"apiVersion": api_version, "kind": kind}
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body must be a {kind} object")
    if body.get("kind", kind) != kind or body.get("apiVersion", api_version) != api_version:
        raise errors.bad_request(
            f"the body is {body.get('apiVersion')} {body.get('kind')}, expected {api_version} {kind} at this endpoint"
        )
    return {
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {"creationTimestamp": None, **(body.get("metadata") or {})},
        **({"spec": body["spec"]} if "spec" in body else {}),
    }


def _invalid(kind: str, field: str, message: str) -> errors.APIError:
    group = "authorization.k8s.io"
    return errors.APIError(
        422,
        "Invalid",
        f'{kind}.{group} "" is invalid: {field}: {message}',
        {"group": group, "kind": kind, "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]},
    )


def _answer(review: dict[str, Any]) -> web.Response:
    return endpoints.json_response(review, status=201)
