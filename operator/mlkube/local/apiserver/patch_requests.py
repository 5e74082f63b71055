"""What a PATCH request asks for, before it is committed: content types, the patched object, apply preconditions.

Owns the patch content types the server accepts, the dispatch of a patch body to `patch.py` by
content type (with its failures mapped to 400/415/422), the preconditions of a server-side apply
request (a field manager, an object body, a name that matches the URL) and the 409 a field
manager conflict becomes. Every function is pure. Must not read or write the store, decide
metadata, status or generation rules (`objects` does), or merge fields itself (`patch`, `apply`).
"""

from __future__ import annotations

from typing import Any

from mlkube.local.apiserver import apply, errors, patch

MERGE, JSON_PATCH, STRATEGIC, APPLY = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
CUSTOM_PATCH_TYPES = [JSON_PATCH, MERGE, APPLY]


def patched(live: dict[str, Any], content_type: str, body: Any, *, allow_strategic: bool) -> dict[str, Any]:
    """`live` with the merge, JSON or (when `allow_strategic`) strategic merge patch `body` applied.

    Raises 415 for another content type, 400 for a malformed patch or a result without metadata,
    422 for a patch that cannot apply (a JSON patch test or path that fails)."""
    try:
        if content_type == MERGE:
            new = patch.merge_patch(live, body)
        elif content_type == JSON_PATCH:
            new = patch.json_patch(live, body)
        elif content_type == STRATEGIC and allow_strategic:
            new = patch.strategic_merge_patch(live, body, api_version=live["apiVersion"], kind=live["kind"])
        else:
            # kubectl prefixes "<type> is not supported by <gvk>: " itself.
            raise errors.unsupported_media_type(content_type, CUSTOM_PATCH_TYPES)
    except patch.BadPatch as exc:
        raise errors.bad_request(str(exc)) from exc
    except patch.PatchError as exc:
        raise errors.APIError(422, "Invalid", str(exc)) from exc
    if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
        raise errors.bad_request("the patch must leave an object with metadata")
    return new


def apply_config(config: Any, *, name: str, field_manager: str) -> dict[str, Any]:
    """The apply configuration `config` with `metadata.name` set to the URL's `name` (in place).

    Raises 422 when `field_manager` is empty, 400 when `config` is not an object or names
    another object."""
    if not field_manager:
        raise errors.invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            [errors.Cause("FieldValueRequired", "Required value: is required for apply patch", "fieldManager")],
        )
    if not isinstance(config, dict):
        raise errors.bad_request("the apply configuration must be an object")
    config_meta = config.setdefault("metadata", {})
    if config_meta.get("name", name) != name:
        raise errors.bad_request(
            f"the name of the object ({config_meta.get('name')}) does not match the name on the URL ({name})"
        )
    config_meta["name"] = name
    return config


def conflict_error(exc: apply.Conflict, *, api_version: str) -> errors.APIError:
    """The 409 kube-apiserver answers for field manager conflicts, one cause per conflicting field."""
    return errors.APIError(
        409,
        "Conflict",
        exc.message(api_version),
        {
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": f'conflict with "{manager}" using {api_version}',
                    "field": field,
                }
                for manager, field in exc.conflicts
            ]
        },
    )
