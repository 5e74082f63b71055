"""The ServingRuntime installed locally is the one shipped for clusters."""

import pathlib

import yaml

from mlkube.control.manifests import servingruntime

ROOT = pathlib.Path(__file__).parents[3]


def test_manifest_matches_the_builder():
    shipped = yaml.safe_load((ROOT / "manifests" / "base" / "servingruntime.yaml").read_text())
    assert shipped == servingruntime.cluster_serving_runtime()
