"""Body limits without HTTP: YAML alias expansion ("billion laughs"), self-referencing aliases, nesting depth."""

import pytest
import yaml

from mlkube.local.apiserver import limits

# The 423-byte body of the review, which the server used to store as 33.6 MB.
BILLION_LAUGHS = """apiVersion: v1
kind: ConfigMap
metadata: {name: lol}
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_is_refused_before_anything_is_built():
    with pytest.raises(limits.Exceeded) as refused:
        limits.load_yaml(BILLION_LAUGHS)
    message = str(refused.value)
    assert "aliases" in message and f"the limit is {limits.YAML_ALIAS_BUDGET}" in message


@pytest.mark.parametrize("document", ["a: &a [*a]", "&x [1, *x]", "top: &t {child: *t}"])
def test_an_alias_inside_its_own_anchor_is_refused(document):
    with pytest.raises(limits.Exceeded, match="refers to itself"):
        limits.load_yaml(document)


def test_modest_aliases_still_load_like_safe_load():
    document = "base: &b {cpu: 1, memory: 2Gi}\nfirst: *b\nsecond: {<<: *b, cpu: 2}\nlist: [*b, *b]\n"
    assert limits.load_yaml(document) == yaml.safe_load(document)
    assert limits.load_yaml("") is None


def test_the_alias_budget_counts_expanded_nodes():
    items = ", ".join(f'"v{i}"' for i in range(100))  # a 101-node sequence
    document = f"a: &a [{items}]\nb: [" + ", ".join(["*a"] * 50) + "]\n"
    assert len(limits.load_yaml(document, alias_budget=50 * 101)["b"]) == 50
    with pytest.raises(limits.Exceeded):
        limits.load_yaml(document, alias_budget=50 * 101 - 1)


def _nested(depth):
    value = "leaf"
    for _ in range(depth - 1):
        value = {"x": value}
    return {"x": value} if depth else value


def test_depth_limit_allows_the_limit_and_refuses_one_more():
    limits.check_depth(_nested(limits.MAX_DEPTH))
    with pytest.raises(limits.Exceeded, match=f"more than {limits.MAX_DEPTH} levels deep"):
        limits.check_depth(_nested(limits.MAX_DEPTH + 1))


def test_depth_check_is_iterative_so_any_depth_gets_an_answer():
    value: list = []
    for _ in range(50_000):  # far deeper than Python's recursion limit
        value = [value]
    with pytest.raises(limits.Exceeded):
        limits.check_depth(value)
