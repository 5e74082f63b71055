"""CEL `x-kubernetes-validations` rules: compile once, evaluate per write (used by schema.py only).

Evaluator: the `common-expression-language` package (module `cel`, cel-rust bindings), chosen over
the pure-Python `celpy` for speed (~50k evaluations/s here). It provides the CEL core: `self`,
`oldSelf`, `has()`, `size()`, the `all/exists/exists_one/map/filter` macros, `matches`, the string
predicates, conversions, timestamps and durations, and mixed int/double comparisons.

Kubernetes' CEL libraries come from cel's stdlib extensions (`charAt`, `indexOf`, `lowerAscii`,
`split`, `join`, `min`, `max`, `sum`, `sets.*`, `math.*`, `base64.*`, ...) and cel_library (lists,
regex `find`/`findAll`, `url`, `quantity`). Not supported (a rule using them fails to compile with
"undeclared reference"): `ip`, `cidr`, `format`, `authorizer`, `cel.bind`, optional syntax (`.?`,
`optionalOldSelf`), two-variable comprehensions and cost budgets. Known deviation: cel-rust's
`size()` of a string counts UTF-8 bytes, where Kubernetes counts code points (equal for ASCII).

Owns rule compilation (cached by text), compile-time reference checks, the conversion of a value to
its CEL form (number fields as double, date-time/duration/byte strings as timestamp/duration/bytes,
escaped property names) and the upstream wording of rule failures. It must not walk schemas.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import functools
import re

import cel as celrs

from mlkube.local.apiserver import cel_library, schema_causes, schema_formats

REASONS = ("FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate")
SELF, OLD_SELF = "self", "oldSelf"

# cel-go keywords that a property name must be escaped from (`__namespace__`), per apiserver/pkg/cel.
_RESERVED = {
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
}
_IDENT = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ESCAPABLE = re.compile(r"^[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*$")
_MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_NATIVE_FUNCTIONS = {
    "size",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "dyn",
    "type",
    "timestamp",
    "duration",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getMonth",
    "getSeconds",
}


def escape(name: str) -> str | None:
    """The CEL identifier of a property name (`a-b` → `a__dash__b`), or None if it cannot be one."""
    if _IDENT.match(name) and name not in _RESERVED and "__" not in name:
        return name
    if not _ESCAPABLE.match(name):
        return None
    if name in _RESERVED:
        return f"__{name}__"
    return name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__").replace("/", "__slash__")


FUNCTIONS = cel_library.functions()
# Static analysis sees `math.greatest(x)` as variable `math` and function `greatest`.
_NAMESPACES = frozenset(name.split(".")[0] for name in FUNCTIONS if "." in name)
KNOWN_FUNCTIONS = frozenset(name.rsplit(".", 1)[-1] for name in FUNCTIONS) | _NATIVE_FUNCTIONS
_TYPE_NAMES = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"})


# --- compilation -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Compiled:
    """A compiled expression, or the upstream-worded reason it does not compile."""

    program: object | None
    error: str
    uses_old_self: bool


@functools.lru_cache(maxsize=4096)
def compile_expression(text: str) -> Compiled:
    """Compile `text` once; references to unknown functions or variables are compile errors."""
    try:
        program = celrs.compile(text)
    except (ValueError, RuntimeError) as error:
        detail = str(error)
        detail = detail.split("': ", 1)[1] if detail.startswith("Failed to parse expression '") else detail
        return Compiled(None, f"compilation failed: {detail}", False)
    bound = set(_MACRO_VARIABLE.findall(text)) | {SELF, OLD_SELF} | _NAMESPACES | _TYPE_NAMES
    for name in program.variables():
        if name not in bound:
            return Compiled(
                None, f"compilation failed: ERROR: <input>: undeclared reference to '{name}' (in container '')", False
            )
    for name in program.functions():
        if name[0].isalpha() and name not in KNOWN_FUNCTIONS:
            return Compiled(
                None, f"compilation failed: ERROR: <input>: undeclared reference to '{name}' (in container '')", False
            )
    return Compiled(program, "", OLD_SELF in program.variables())


_STRING_LITERAL = re.compile(r"""[rR]?[bB]?('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""")
_SELECTION = re.compile(r"\b(?:self|oldSelf)((?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)+)")
_SEGMENT = re.compile(r"\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")


def undefined_field(text: str, node: object, *, resource: bool = False) -> str:
    """cel-go's type-check error for a `self.<field>` chain naming no property of `node`, else "".

    `node` is the schema_nodes.Node the rule sits on. Only objects with declared properties are
    checked; maps, preserve-unknown-fields and scalars are left to run time, as cel-go's dyn types.
    """
    blanked = _STRING_LITERAL.sub(lambda m: " " * len(m.group(0)), text)
    for match in _SELECTION.finditer(blanked):
        current, at_resource = node, resource
        for segment in _SEGMENT.finditer(match.group(1)):
            name, end = segment.group(1), match.start(1) + segment.end()
            if blanked[end:].lstrip().startswith("("):
                break  # a method call such as self.items.all(...), not a field
            if at_resource and name in ("apiVersion", "kind", "metadata"):
                break
            if current is None or current.preserve_unknown or not current.properties:
                break
            names = {escape(key): child for key, child in current.properties.items()}
            if name not in names:
                column = match.start(1) + segment.start() + 1
                return f"compilation failed: ERROR: <input>:1:{column}: undefined field '{name}'"
            current, at_resource = names[name], names[name].embedded
    return ""


@dataclasses.dataclass(frozen=True)
class Rule:
    """One x-kubernetes-validations entry, compiled."""

    rule: str
    message: str
    message_expression: str
    field_path: str  # normalised, e.g. "spec.replicas" relative to the node; "" for the node itself
    reason: str
    compiled: Compiled
    compiled_message: Compiled | None

    @property
    def error_string(self) -> str:
        """upstream `ruleErrorString`: the message if any, else the rule."""
        return self.message.strip() or self.rule.strip()


def compile_rule(entry: dict, *, field_path: str = "") -> Rule:
    message_expression = entry.get("messageExpression") or ""
    return Rule(
        rule=entry.get("rule") or "",
        message=entry.get("message") or "",
        message_expression=message_expression,
        field_path=field_path,
        reason=entry.get("reason") or "",
        compiled=compile_expression((entry.get("rule") or "").strip() or "true"),
        compiled_message=compile_expression(message_expression) if message_expression.strip() else None,
    )


# --- evaluation ------------------------------------------------------------------------------------


def check(
    rules: tuple[Rule, ...], value: object, old: object, *, has_old: bool, field: str, type_name: str
) -> list[schema_causes.Cause]:
    """Evaluate `rules` on one schema node's (CEL-converted) value; one cause per failed rule.

    Transition rules (those using oldSelf) run only when `has_old`. `type_name` is the node's schema
    type, which upstream prints as the bad value ("object" in `Invalid value: "object": ...`).
    """
    causes = []
    variables = {SELF: value, OLD_SELF: old} if has_old else {SELF: value}
    context = celrs.Context(variables=variables, functions=FUNCTIONS)
    for rule in rules:
        if rule.compiled.program is None:
            causes.append(schema_causes.invalid(field, type_name, f"rule compile error: {rule.compiled.error}"))
            continue
        if rule.compiled.uses_old_self and not has_old:
            continue
        try:
            result = rule.compiled.program.execute(context)
        except Exception as error:
            causes.append(schema_causes.invalid(field, type_name, _evaluation_error(error, rule)))
            continue
        if result is True:
            continue
        target = _join(field, rule.field_path)
        detail = _message(rule, context) or (rule.message.strip() or f"failed rule: {rule.error_string}")
        causes.append(_cause_for_reason(rule.reason, target, type_name, detail))
    return causes


def _join(field: str, relative: str) -> str:
    """`field` extended by a normalised fieldPath ("a.b" or "[key]"), as field.Path.Child does."""
    if not relative:
        return field
    if not field or relative.startswith("["):
        return field + relative
    return f"{field}.{relative}"


def _message(rule: Rule, context: object) -> str:
    """The evaluated messageExpression, or "" when absent or failing (upstream then uses message)."""
    if rule.compiled_message is None or rule.compiled_message.program is None:
        return ""
    try:
        text = rule.compiled_message.program.execute(context)
    except Exception:
        return ""
    text = text.strip() if isinstance(text, str) else ""
    return text if text and "\n" not in text and len(text) <= 5 * 1024 else ""


def _cause_for_reason(reason: str, field: str, type_name: str, detail: str) -> schema_causes.Cause:
    if reason == "FieldValueForbidden":
        return schema_causes.forbidden(field, detail)
    if reason == "FieldValueRequired":
        return schema_causes.required(field, detail)
    if reason == "FieldValueDuplicate":
        return schema_causes.duplicate(field, type_name)
    return schema_causes.invalid(field, type_name, detail)


def _evaluation_error(error: Exception, rule: Rule) -> str:
    if isinstance(error, TypeError):
        return (
            "'no such overload': call arguments did not match a supported operator, function or "
            f"macro signature for rule: {rule.error_string}"
        )
    if isinstance(error, KeyError):
        text = f"no such key: {error.args[0] if error.args else ''}"
    elif isinstance(error, ZeroDivisionError):
        text = "modulus by zero" if "modulo" in str(error) else "division by zero"
    elif isinstance(error, OverflowError):
        text = "integer overflow"
    else:
        text = str(error)
    return f"{text} evaluating rule: {rule.error_string}"


# --- values in their CEL form ----------------------------------------------------------------------


def convert(value: object, node: object) -> object:
    """`value` as CEL sees it under schema `node` (a schema_nodes.Node; only called when it needs it).

    Numbers typed `number` become doubles, date-time/duration/byte strings become timestamps,
    durations and bytes, and property names are escaped (`a-b` → `a__dash__b`; unescapable names
    are hidden, as upstream omits them from the CEL type).
    """
    if value is None or node is None:
        return value
    if isinstance(value, dict):
        if node.properties:
            converted = {}
            for key, item in value.items():
                name = escape(key)
                if name is not None:
                    converted[name] = convert(item, node.properties.get(key, node.additional))
            return converted
        return {key: convert(item, node.additional) for key, item in value.items()}
    if isinstance(value, list):
        return [convert(item, node.items) for item in value]
    if node.type == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and node.format:
        return _convert_string(value, node.format.replace("-", ""))
    return value


def _convert_string(value: str, format_name: str) -> object:
    if format_name == "datetime" and schema_formats.is_datetime(value):
        return datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    if format_name == "duration":
        return _go_duration(value) or value
    if format_name == "byte":
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value
    return value


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _go_duration(text: str) -> datetime.timedelta | None:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        return None
    return datetime.timedelta(seconds=sign * sum(float(n) * _DURATION_UNITS[u] for n, u in parts))
