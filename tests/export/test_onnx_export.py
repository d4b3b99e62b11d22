"""ONNX export round trip: parity with torch and with the official outputs, and bad inputs."""

import contextlib
import dataclasses
import io
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from kpr.checkpoint import load_model
from kpr.cli import main
from kpr.denormals import subnormals_flushed
from kpr.errors import KPRError
from kpr.export import OnnxSession, export_onnx
from kpr.modeling import linear as kpr_linear
from kpr.modeling.kpr import KPR
from kpr.modeling.linear import use_cpu_linear
from kpr.predictor import KPRPredictor

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _checkpoint(name: str) -> Path:
    return FIXTURES / name / "checkpoint_official_format.pth.tar"


@dataclasses.dataclass(frozen=True)
class CliExport:
    out: Path
    stdout: str
    stderr: str
    warnings: list[str]  # log records at WARNING and above


@pytest.fixture(scope="module")
def cli_export(tmp_path_factory) -> CliExport:
    """model_B (SOLIDER, whose graph made onnx_ir warn) exported by `kpr export`, with everything
    it printed or logged."""
    out = tmp_path_factory.mktemp("model_B") / "model.onnx"
    stdout, stderr = io.StringIO(), io.StringIO()
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["export", "--checkpoint", str(_checkpoint("model_B")), "--out", str(out)])
    finally:
        root.removeHandler(handler)
    assert code == 0, stderr.getvalue()
    warned = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    return CliExport(out, stdout.getvalue(), stderr.getvalue(), warned)


@pytest.fixture(scope="module", params=["model_A", "model_B"])
def family(request, tmp_path_factory):
    """(name, model, .onnx path, inputs): model_B exported through the CLI, model_A the API."""
    name = request.param
    model = load_model(_checkpoint(name))
    if name == "model_B":
        out = request.getfixturevalue("cli_export").out
    else:
        out = tmp_path_factory.mktemp(name) / "model.onnx"
        # With every Linear on oneDNN in eager inference, the export must still trace F.linear.
        with pytest.MonkeyPatch.context() as patch, use_cpu_linear("onednn"):
            patch.setattr(kpr_linear, "ONEDNN_MIN_MACS", 0)
            export_onnx(model, out)
    return name, model, out, np.load(FIXTURES / name / "inputs.npz")


def _tensors(inputs):
    images = torch.from_numpy(inputs["images"])
    prompts = torch.from_numpy(inputs["prompt_masks"]).float()
    return images, prompts, torch.from_numpy(inputs["cam_labels"])


def test_onnxruntime_matches_torch_and_the_official_outputs_with_prompts(family):
    name, model, path, inputs = family
    images, prompts, cameras = _tensors(inputs)
    ort = KPRPredictor(model, "cpu", backend="onnxruntime", onnx_file=path)
    assert (ort.backend, ort.precision_used) == ("onnxruntime", "float32")
    got = ort.embed_batch(images, prompts, cameras, part_masks=True)
    want = KPRPredictor(model, "cpu").embed_batch(images, prompts, cameras, part_masks=True)
    official = np.load(FIXTURES / name / "outputs.npz")
    assert (got.embeddings - want.embeddings).abs().max() <= 1e-4
    assert torch.equal(got.visibility, want.visibility)
    assert (got.part_masks - want.part_masks).abs().max() <= 1e-4
    np.testing.assert_allclose(got.embeddings.numpy(), official["test.embeddings"], atol=1e-4)
    np.testing.assert_array_equal(got.visibility.numpy(), official["test.visibility"])


def test_onnxruntime_matches_torch_without_prompts_at_any_batch_size(family):
    _, model, path, inputs = family
    ort = KPRPredictor(model, "cpu", backend="onnxruntime", onnx_file=path)
    ref = KPRPredictor(model, "cpu")
    images = torch.from_numpy(inputs["images"])[[0, 1, 2, 3, 0]]
    for n in (1, 5):  # the export's example batch was 2: the batch dimension is dynamic
        empty = model.prompt_encoder.empty_prompt(n, tuple(images.shape[-2:]), images)
        got, want = ort.embed_batch(images[:n], empty), ref.embed_batch(images[:n], empty)
        assert got.embeddings.shape[0] == n
        assert (got.embeddings - want.embeddings).abs().max() <= 1e-4
        assert torch.equal(got.visibility, want.visibility)
        assert not got.prompted.any()


def test_a_model_without_negative_and_background_channels_exports_in_memory():
    config = dataclasses.replace(
        load_model(_checkpoint("model_A")).config, prompt_negatives=False, prompt_background=False
    )
    torch.manual_seed(0)
    model = KPR(config).eval()
    inputs = np.load(FIXTURES / "model_A" / "inputs.npz")
    images = torch.from_numpy(inputs["images"])
    # [background, negatives, 8 groups] → the 8 groups only
    prompts = torch.from_numpy(inputs["prompt_masks"]).float()[:, 2:]
    assert config.prompt_channels == prompts.shape[1] == 8
    ort = KPRPredictor(model, "cpu", backend="onnxruntime")
    ref = KPRPredictor(model, "cpu")
    for p in (prompts, torch.zeros_like(prompts)):
        got, want = ort.embed_batch(images, p), ref.embed_batch(images, p)
        assert (got.embeddings - want.embeddings).abs().max() <= 1e-4
        assert torch.equal(got.visibility, want.visibility)
    assert ort.session.input_names == ("images", "prompts")


def test_export_prints_nothing_but_its_result(cli_export):
    assert cli_export.stdout.strip() == (
        f"exported {_checkpoint('model_B')} -> {cli_export.out} (opset 18)"
    )
    assert cli_export.stderr == ""
    assert cli_export.warnings == []  # onnx_ir warned about empty attribute lists on every export


@pytest.mark.parametrize("flush", [True, False])
def test_a_session_leaves_the_threads_subnormal_mode_alone(cli_export, flush):
    # ORT resets the creating thread's mode; kpr's CLI flushes subnormals (kpr.denormals), and a
    # session created afterwards made the torch work after it ×1.6 slower on an Intel Xeon.
    before = subnormals_flushed()
    torch.set_flush_denormal(flush)
    try:
        OnnxSession(cli_export.out)
        assert subnormals_flushed() is flush
    finally:
        torch.set_flush_denormal(before)


def test_the_sessions_threads_do_not_spin_between_runs(cli_export):
    # Spinning ORT threads took the cores from the torch work that followed (×4 slower).
    options = OnnxSession(cli_export.out).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_the_session_checks_cameras_and_shapes(family):
    name, model, path, inputs = family
    session = OnnxSession(path)
    images, prompts, _ = _tensors(inputs)
    with pytest.raises(KPRError, match=r"prompts: expected \[4, "):
        session(images, prompts[:, 1:])
    if name == "model_B":  # the SIE family
        with pytest.raises(KPRError, match=r"cameras: labels must be in \[0, "):
            session(images, prompts, torch.tensor([0, 1, 2, 99]))


def test_export_refuses_bad_out_paths_before_exporting(tmp_path, capsys):
    args = ["export", "--checkpoint", str(_checkpoint("model_B")), "--out"]
    assert main([*args, str(tmp_path / "model.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model.pt: expected a .onnx file path" in err
    existing = tmp_path / "mine.onnx"
    existing.write_bytes(b"user data")
    assert main([*args, str(existing)]) == 2
    err = capsys.readouterr().err.strip()
    assert "mine.onnx: already exists" in err and "--overwrite" in err
    assert existing.read_bytes() == b"user data"
    assert main([*args, str(tmp_path / "m.onnx"), "--opset", "17"]) == 2
    assert "opset: expected an integer in [18, " in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_files_that_are_not_kpr_exports_are_refused_naming_the_file(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(KPRError, match=r"notes\.onnx: not an ONNX model ONNX Runtime can load"):
        KPRPredictor(load_model(_checkpoint("model_A")), "cpu", "float32", "onnxruntime", text)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    foreign = tmp_path / "foreign.onnx"
    opset = [onnx.helper.make_opsetid("", 18)]
    onnx.save(onnx.helper.make_model(graph, opset_imports=opset), foreign)
    with pytest.raises(KPRError, match=r"foreign\.onnx: an ONNX model, but not one exported"):
        OnnxSession(foreign)
    with pytest.raises(KPRError, match=r"missing\.onnx: no such ONNX file"):
        OnnxSession(tmp_path / "missing.onnx")


def test_a_file_exported_from_another_model_is_refused(family):
    name, model, path, _ = family
    other = load_model(_checkpoint("model_B" if name == "model_A" else "model_A"))
    with pytest.raises(KPRError, match=rf"{path.name}: exported from a model with another config"):
        KPRPredictor(other, "cpu", backend="onnxruntime", onnx_file=path)
    retrained = load_model(_checkpoint(name))
    with torch.no_grad():
        retrained.head.pixel_classifier.classifier.bias.add_(0.01)
    with pytest.raises(KPRError, match=rf"{path.name}: exported from the same architecture"):
        KPRPredictor(retrained, "cpu", backend="onnxruntime", onnx_file=path)


def test_a_global_embedding_model_is_refused_before_tracing(tmp_path):
    from kpr.checkpoint import create_model

    model = create_model(
        "kpr_tiny_128x64",
        head="global",
        backbone={"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2]},
    )
    with pytest.raises(KPRError, match="global-embedding models"):
        export_onnx(model, tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()
