"""Same official checkpoint in, same outputs out (fixtures made by running the official code)."""

from pathlib import Path

import numpy as np
import pytest

from kpr.checkpoint import load_model
from kpr.compat import official_forward
from kpr.modeling import linear as kpr_linear

FIXTURES = Path(__file__).parents[1] / "fixtures"

# (family dir, semantic weight override, reference file, pass camera labels)
CASES = [
    ("model_A", None, "outputs.npz", True),
    ("model_A", None, "outputs_fe.npz", False),
    ("model_B", None, "outputs.npz", True),
    ("model_B", None, "outputs_fe.npz", False),
    ("model_B", 0.2, "outputs_sw02.npz", True),
]

_models: dict = {}


def _model(family: str, semantic_weight):
    key = (family, semantic_weight)
    if key not in _models:
        _models[key] = load_model(
            FIXTURES / family / "checkpoint_official_format.pth.tar",
            semantic_weight=semantic_weight,
        )
    return _models[key]


def assert_matches_reference(result: dict, reference) -> None:
    off_diagonal = ~np.eye(reference["test.distmat"].shape[0], dtype=bool)
    for key in reference.files:
        ref, got = reference[key], result[key]
        assert got.shape == ref.shape, key
        if ref.dtype == bool:
            np.testing.assert_array_equal(got, ref, err_msg=key)
        elif key == "test.distmat":
            np.testing.assert_allclose(got[off_diagonal], ref[off_diagonal], atol=1e-4, err_msg=key)
            np.testing.assert_allclose(got, ref, atol=1e-3, err_msg=key)
        elif key == "test.body_part_distmat":
            np.testing.assert_allclose(
                got[:, off_diagonal], ref[:, off_diagonal], atol=1e-4, err_msg=key
            )
            np.testing.assert_allclose(got, ref, atol=1e-3, err_msg=key)
        else:
            np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-5, err_msg=key)


@pytest.mark.parametrize("backend", ["aten", "onednn"])
@pytest.mark.parametrize(("family", "semantic_weight", "reference", "with_cameras"), CASES)
def test_official_forward_matches_reference(
    family, semantic_weight, reference, with_cameras, backend, monkeypatch
):
    # oneDNN for every Linear, however small (these fixtures have tiny widths), to check that
    # library against the official outputs too.
    monkeypatch.setattr(kpr_linear, "ONEDNN_MIN_MACS", 0)
    calls = []
    onednn = kpr_linear._onednn_linear
    monkeypatch.setattr(kpr_linear, "_onednn_linear", lambda *a: calls.append(1) or onednn(*a))
    inputs = np.load(FIXTURES / family / "inputs.npz")
    expected = np.load(FIXTURES / family / reference)
    with kpr_linear.use_cpu_linear(backend):
        result = official_forward(
            _model(family, semantic_weight),
            inputs["images"],
            inputs["prompt_masks"],
            inputs["cam_labels"] if with_cameras else None,
        )
    assert_matches_reference(result, expected)
    assert bool(calls) == (backend == "onednn")


def test_camera_embedding_changes_family_b_outputs():
    # B was trained with SIE: dropping the camera labels must change the embeddings
    # (fe vs main pass).
    inputs = np.load(FIXTURES / "model_B" / "inputs.npz")
    model = _model("model_B", None)
    with_cams = official_forward(
        model, inputs["images"], inputs["prompt_masks"], inputs["cam_labels"]
    )
    without = official_forward(model, inputs["images"], inputs["prompt_masks"], None)
    assert np.abs(with_cams["test.embeddings"] - without["test.embeddings"]).max() > 1e-2


def test_empty_prompt_equals_background_only_prompt():
    inputs = np.load(FIXTURES / "model_A" / "inputs.npz")
    model = _model("model_A", None)
    empty = np.zeros_like(inputs["prompt_masks"])
    empty[:, 0] = 1.0
    none = official_forward(model, inputs["images"], None)
    explicit = official_forward(model, inputs["images"], empty)
    np.testing.assert_allclose(none["test.embeddings"], explicit["test.embeddings"], atol=1e-6)
    prompted = official_forward(model, inputs["images"], inputs["prompt_masks"])
    assert np.abs(prompted["embeddings.parts"] - none["embeddings.parts"]).max() > 0.1
