"""VersionModel.load(): verification before loading, and what a loaded model answers (in-process)."""

from __future__ import annotations

import pathlib
import shutil

import modelfactory
import pytest
from kserve import errors as kserve_errors

from mlkube.ml import artifacts
from mlkube.serving import postprocessing, server


@pytest.fixture(scope="module")
def version_dir(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("version")
    modelfactory.write_version(root / "v1")
    return root / "v1"


@pytest.fixture
def copy(version_dir, tmp_path) -> pathlib.Path:
    target = tmp_path / "v1"
    shutil.copytree(version_dir, target)
    return target


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda d: (d / "model_card.json").write_text("{}"), "model_card.json: sha256"),
        (lambda d: (d / "MANIFEST.json").unlink(), "no MANIFEST.json"),
        (lambda d: (d / "extra.bin").write_bytes(b"x"), "extra.bin: not listed"),
        (lambda d: (d / "reference.parquet").unlink(), "reference.parquet: listed in MANIFEST.json but missing"),
    ],
)
def test_load_refuses_a_damaged_version_naming_the_file(copy, damage, named):
    damage(copy)
    model = server.VersionModel("m", copy)
    with pytest.raises(artifacts.IntegrityError, match=named):
        model.load()
    assert not model.ready


def test_threshold_applies_to_the_cards_positive_class(copy):
    model = server.VersionModel("m", copy, postprocessing_block=postprocessing.Postprocessing(threshold=0.3))
    assert model.load() and model.decider.positive_index == 1


def test_loaded_model_predicts_and_refuses_bad_input_with_invalid_input(copy):
    model = server.VersionModel("m", copy)
    model.load()
    assert model.ready and model.digest.startswith("sha256:")
    body = model.predict({"instances": [modelfactory.instance(0)]}, {}, {})
    assert body["predictions"] == [0]
    with pytest.raises(kserve_errors.InvalidInput, match="missing feature 'mean_radius'"):
        model.predict({"instances": [{}]}, {}, {})
    with pytest.raises(kserve_errors.InvalidInput, match='expected a JSON object with "instances"'):
        model.predict({"inputs": []}, {}, {})


def test_model_dir_is_a_container_path_or_a_uri(version_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MLKUBE_CONTAINER_ROOT", str(tmp_path / "pod"))
    assert server.model_directory("/mnt/models") == tmp_path / "pod" / "mnt" / "models"
    downloaded = server.model_directory(version_dir.as_uri())
    assert sorted(p.name for p in downloaded.iterdir()) == sorted(p.name for p in version_dir.iterdir())
    assert artifacts.verify(downloaded)


def test_strict_categories_and_postprocessing_shape_the_answer(copy):
    block = postprocessing.Postprocessing.parse({"threshold": 0.5, "labels": {"0": "malignant", "1": "benign"}})
    model = server.VersionModel("m", copy, postprocessing_block=block, reject_unknown_categories=True)
    model.load()
    body = model.predict({"instances": [modelfactory.instance(0), modelfactory.instance(19)]}, {}, {})
    assert body["predictions"] == ["malignant", "benign"] and set(body["probabilities"][0]) == {"malignant", "benign"}
    with pytest.raises(kserve_errors.InvalidInput, match="feature 'size_band' has unknown category 'huge'"):
        model.predict({"instances": [{**modelfactory.instance(0), "size_band": "huge"}]}, {}, {})
