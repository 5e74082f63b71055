"""Generate operator/mlkube/local/apiserver/data/protobuf_messages.json from upstream sources.

Run once per Kubernetes API bump (not at build or run time):

    python hack/protobuf_table.py API_CHECKOUT APIMACHINERY_CHECKOUT > \
        operator/mlkube/local/apiserver/data/protobuf_messages.json

API_CHECKOUT is a checkout of github.com/kubernetes/api, APIMACHINERY_CHECKOUT one of
github.com/kubernetes/apimachinery (both Apache-2.0). The table keeps, for every message of the
served API groups and what they reference, each field's number, JSON name, type, whether it is
repeated or a map, and whether Go keeps its zero value in JSON (a pointer, or no `omitempty`).
The field numbers come from `generated.proto`; pointer/omitempty from the Go struct tags in the
package's `.go` files (the protobuf tag names the field number, so both line up exactly).
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

# Served groups: proto package suffix -> API group. Messages they reference are added from any package.
GROUPS = {
    "api.core.v1": "",
    "api.apps.v1": "apps",
    "api.batch.v1": "batch",
    "api.autoscaling.v1": "autoscaling",
    "api.coordination.v1": "coordination.k8s.io",
    "api.events.v1": "events.k8s.io",
    "api.rbac.v1": "rbac.authorization.k8s.io",
    "api.authorization.v1": "authorization.k8s.io",
    "api.authentication.v1": "authentication.k8s.io",
}
# Messages whose JSON form is not an object.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "microtime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "raw",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "raw",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
}
_FIELD = re.compile(r"^\s*(optional|repeated|map<string,\s*([\w.]+)>)\s*([\w.]*)\s+(\w+)\s*=\s*(\d+)")
_STRUCT = re.compile(r"^type (\w+) struct \{")
_SLICE_TYPE = re.compile(r"^type (\w+) \[\]string\b")
_TAG = re.compile(r'^\s+\w*\s*(\*?)\S*\s+`json:"([^"]*)"\s+protobuf:"\w+,(\d+),')


def proto_files(api: pathlib.Path, machinery: pathlib.Path):
    yield from sorted(api.glob("*/*/generated.proto"))
    yield from sorted((machinery / "pkg").glob("**/generated.proto"))


def parse_proto(path: pathlib.Path) -> tuple[str, dict[str, dict[int, tuple]]]:
    package, messages, current = "", {}, None
    for line in path.read_text().splitlines():
        line = line.split("//")[0]
        if match := re.match(r"^package ([\w.]+);", line):
            package = match[1]
        elif match := re.match(r"^message (\w+) \{", line):
            current = messages.setdefault(match[1], {})
        elif current is not None and (match := _FIELD.match(line)):
            label, map_value, type_name, name, number = match.groups()
            if map_value:
                current[int(number)] = (name, map_value, "m")
            else:
                current[int(number)] = (name, type_name, "r" if label == "repeated" else "")
    return package, messages


def go_tags(directory: pathlib.Path) -> tuple[dict[tuple[str, int], tuple[str, bool]], set[str]]:
    """(struct, field number) -> (JSON name, Go keeps the zero value in JSON); and the struct names that are []string."""
    keep: dict[tuple[str, int], tuple[str, bool]] = {}
    slices: set[str] = set()
    for path in sorted(directory.glob("*.go")):
        if path.name.endswith("_test.go") or path.name.startswith("generated"):
            continue
        struct = None
        for line in path.read_text().splitlines():
            if match := _STRUCT.match(line):
                struct = match[1]
            elif match := _SLICE_TYPE.match(line):
                slices.add(match[1])
            elif line.startswith("}"):
                struct = None
            elif struct and (match := _TAG.match(line)):
                pointer, json_tag, number = match.groups()
                json_name = json_tag.split(",")[0]
                keep[(struct, int(number))] = (json_name, bool(pointer) or ",omitempty" not in json_tag)
    return keep, slices


def qualify(package: str, type_name: str) -> str:
    if type_name.startswith("."):
        return type_name[1:]
    if "." in type_name or type_name in ("string", "bytes", "bool", "int32", "int64", "double", "float"):
        return type_name
    return f"{package}.{type_name}"


def _entry(tag: tuple[str, bool] | None, proto_name: str, type_name: str, mode: str) -> list:
    """[JSON name, type, mode, keep zero]; the JSON name comes from the Go tag (the proto name can differ, e.g. `uID`)."""
    json_name, keep_zero = tag if tag and tag[0] else (proto_name, False)
    return [json_name, type_name, mode, keep_zero]


def main(api: str, machinery: str) -> None:
    api_root, machinery_root = pathlib.Path(api), pathlib.Path(machinery)
    messages: dict[str, dict] = {}
    for path in proto_files(api_root, machinery_root):
        package, parsed = parse_proto(path)
        keep, slices = go_tags(path.parent)
        for name, fields in parsed.items():
            full = f"{package}.{name}"
            if name in slices:
                SPECIAL.setdefault(full, "stringlist")
            messages[full] = {
                number: _entry(keep.get((name, number)), json_name, qualify(package, type_name), mode)
                for number, (json_name, type_name, mode) in fields.items()
            }
    kinds: dict[str, str] = {}
    for full, fields in messages.items():
        package, _, name = full.rpartition(".")
        suffix = package.removeprefix("k8s.io.")
        first = fields.get(1)
        if name.endswith(("TemplateSpec", "ClaimTemplate")):
            continue  # carry metadata but are not kinds
        if suffix in GROUPS and first and first[0] == "metadata" and first[1].endswith("meta.v1.ObjectMeta"):
            group, version = GROUPS[suffix], package.rsplit(".", 1)[1]
            kinds[f"{group}/{version}/{name}" if group else f"{version}/{name}"] = full
    for review in ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview", "LocalSubjectAccessReview"):
        kinds.setdefault(f"authorization.k8s.io/v1/{review}", f"k8s.io.api.authorization.v1.{review}")
    kinds.setdefault("authentication.k8s.io/v1/SelfSubjectReview", "k8s.io.api.authentication.v1.SelfSubjectReview")
    kinds.setdefault("authentication.k8s.io/v1/TokenReview", "k8s.io.api.authentication.v1.TokenReview")
    kinds.setdefault("authentication.k8s.io/v1/TokenRequest", "k8s.io.api.authentication.v1.TokenRequest")
    # Keep only what the served kinds reach.
    needed: dict[str, dict] = {}
    pending = list(kinds.values())
    while pending:
        full = pending.pop()
        if full in needed or full in SPECIAL:
            continue
        needed[full] = messages[full]
        pending.extend(field[1] for field in messages[full].values() if field[1] in messages)
    table = {
        "source": "kubernetes/api and kubernetes/apimachinery generated.proto and types.go (Apache-2.0)",
        "special": {name: how for name, how in sorted(SPECIAL.items()) if name in messages},
        "kinds": dict(sorted(kinds.items())),
        "messages": {name: {str(k): v for k, v in sorted(fields.items())} for name, fields in sorted(needed.items())},
    }
    json.dump(table, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
