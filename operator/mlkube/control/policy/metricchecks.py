"""Metric checks (``strategy.analysis.metrics``): a query's value judged by its successCondition.

Owns the successCondition language, a tiny one evaluated by a hand-written parser: comparisons of
``result`` with a number (``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``) joined by ``and`` / ``or``
(``and`` binds tighter). ``evaluate`` turns a provider's answer into Passing, Failing or
Inconclusive (no value, NaN, the provider unreachable), and ``fold`` adds the checks' verdicts to
the router analysis's.

Must not: do I/O, or ever hand a condition to Python's ``eval``.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Sequence

from mlkube.api import rolloutstatus, strategy

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_TOKEN = re.compile(r"\s*(?:(result)|(<=|>=|==|!=|<|>)|(and|or)\b|(-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?))")


class InvalidCondition(ValueError):
    """A successCondition outside the language; the message names the field and the fix."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``result <op> threshold``."""

    op: str
    threshold: float


@dataclasses.dataclass(frozen=True)
class Condition:
    """A disjunction of conjunctions of comparisons: ``any(all(c) for c in terms)``."""

    terms: tuple[tuple[Comparison, ...], ...]

    def holds(self, result: float) -> bool:
        """Whether ``result`` (a finite number) satisfies the condition."""
        return any(all(_OPERATORS[c.op](result, c.threshold) for c in term) for term in self.terms)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One check's verdict on one query."""

    name: str
    verdict: str
    """Passing, Failing or Inconclusive."""
    value: float | None
    detail: str
    """What status shows, e.g. ``metric error-rate: result 0.42 fails "result < 0.3"``."""


def parse(text: str, *, field: str = "successCondition") -> Condition:
    """The condition ``text`` stands for; raises ``InvalidCondition`` naming ``field``."""
    if not re.fullmatch(strategy.SUCCESS_CONDITION_PATTERN, text):  # the API's language, exactly
        raise InvalidCondition(f"{field}: {text!r} is not a condition; {strategy.SUCCESS_CONDITION_HELP}")
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        match = _TOKEN.match(text, pos)
        if not match:
            raise InvalidCondition(f"{field}: cannot read {text[pos:].strip()!r}; {strategy.SUCCESS_CONDITION_HELP}")
        kind = match.lastindex
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    terms: list[tuple[Comparison, ...]] = []
    term: list[Comparison] = []
    i = 0
    while True:
        if i + 3 > len(tokens):
            raise InvalidCondition(f"{field}: {text!r} is incomplete; {strategy.SUCCESS_CONDITION_HELP}")
        (k1, _), (k2, op), (k3, number) = tokens[i : i + 3]
        if (k1, k2, k3) != (1, 2, 4):
            raise InvalidCondition(
                f"{field}: {text!r} is not a comparison of result with a number; {strategy.SUCCESS_CONDITION_HELP}"
            )
        term.append(Comparison(op, float(number)))
        i += 3
        if i == len(tokens):
            terms.append(tuple(term))
            return Condition(tuple(terms))
        kind, joiner = tokens[i]
        if kind != 3:
            raise InvalidCondition(f"{field}: expected and/or after a comparison in {text!r}; {strategy.SUCCESS_CONDITION_HELP}")
        if joiner == "or":
            terms.append(tuple(term))
            term = []
        i += 1


def evaluate(check: strategy.MetricCheck, value: float | None, *, error: str | None = None) -> Outcome:
    """``check``'s verdict on the query's ``value``: Inconclusive without a finite value (``error``
    says why when the provider failed), else Passing or Failing by its successCondition."""
    condition = check.success_condition
    if error is not None:
        return Outcome(check.name, "Inconclusive", None, f"metric {check.name}: {error}")
    if value is None or math.isnan(value):
        what = "no sample" if value is None else "NaN"
        return Outcome(check.name, "Inconclusive", value, f"metric {check.name}: query returned {what}")
    holds = parse(condition, field=f"metric {check.name} successCondition").holds(value)
    verdict = "Passing" if holds else "Failing"
    return Outcome(
        check.name, verdict, value, f'metric {check.name}: result {value:.6g} {"meets" if holds else "fails"} "{condition}"'
    )


def fold(result: rolloutstatus.AnalysisResult, outcomes: Sequence[Outcome]) -> rolloutstatus.AnalysisResult:
    """``result`` with the checks' verdicts added: a Failing check fails the analysis and is named
    in ``failedChecks``; an Inconclusive one keeps a Passing analysis Inconclusive."""
    if not outcomes:
        return result
    failed = [o.detail for o in outcomes if o.verdict == "Failing"]
    pending = [o.detail for o in outcomes if o.verdict == "Inconclusive"]
    verdict = result.verdict
    if failed:
        verdict = "Failing"
    elif pending and verdict == "Passing":
        verdict = "Inconclusive"
    return result.model_copy(
        update={
            "verdict": verdict,
            "failed_checks": [*result.failed_checks, *failed],
            "inconclusive_checks": [*result.inconclusive_checks, *pending],
        }
    )
