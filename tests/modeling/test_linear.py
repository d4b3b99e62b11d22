"""kpr.modeling.linear: which GEMM library a Linear runs on, and that both compute the same."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kpr.errors import KPRError
from kpr.modeling import linear as kpr_linear
from kpr.modeling.linear import (
    ONEDNN_MIN_MACS,
    cpu_linear_backend,
    linear,
    route_linear_layers,
    use_cpu_linear,
)


@pytest.fixture()
def onednn_calls(monkeypatch):
    calls = []
    onednn = kpr_linear._onednn_linear
    monkeypatch.setattr(
        kpr_linear, "_onednn_linear", lambda *a: calls.append(a[0].shape) or onednn(*a)
    )
    return calls


def _large(rows=256, k=256, n=512):
    assert rows * k * n >= ONEDNN_MIN_MACS
    g = torch.Generator().manual_seed(0)
    return torch.randn(rows, k, generator=g), torch.randn(n, k, generator=g), torch.randn(n)


def test_both_libraries_compute_the_same_product(onednn_calls):
    x, w, b = _large()
    expected = F.linear(x.double(), w.double(), b.double())
    with torch.no_grad():
        for backend in ("aten", "onednn"):
            with use_cpu_linear(backend):
                got = linear(x.view(4, 64, -1), w, b).reshape(256, -1)
            torch.testing.assert_close(got.double(), expected, atol=1e-3, rtol=1e-5)
    assert onednn_calls == [torch.Size([4, 64, 256])]


@pytest.mark.parametrize("case", ["grad", "autocast", "small", "float64", "compiling", "aten"])
def test_onednn_only_for_large_float32_inference(case, onednn_calls, monkeypatch):
    x, w, b = _large()
    if case == "small":
        x = x[:1]
    if case == "float64":
        x, w, b = x.double(), w.double(), b.double()
    grad = torch.enable_grad() if case == "grad" else torch.no_grad()
    with (
        monkeypatch.context() as patch,
        grad,
        use_cpu_linear("aten" if case == "aten" else "onednn"),
    ):
        if case == "compiling":  # torch.export / torch.compile must see the standard op
            patch.setattr(torch.compiler, "is_compiling", lambda: True)
        if case == "autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                assert linear(x, w, b).dtype == torch.bfloat16  # autocast still applies
        else:
            torch.testing.assert_close(linear(x, w, b), F.linear(x, w, b))
    assert onednn_calls == []
    with torch.no_grad(), use_cpu_linear("onednn"):  # the same call, large and plain: oneDNN
        linear(*_large())
    assert len(onednn_calls) == 1


def test_environment_variable_sets_the_backend(monkeypatch):
    monkeypatch.setenv("KPR_CPU_LINEAR", "aten")
    assert cpu_linear_backend() == "aten"
    monkeypatch.setenv("KPR_CPU_LINEAR", "mkl")
    with pytest.raises(KPRError, match="KPR_CPU_LINEAR: expected 'aten' or 'onednn', got 'mkl'"):
        cpu_linear_backend()
    with use_cpu_linear("onednn"):  # an explicit block wins over the environment
        assert cpu_linear_backend() == "onednn"
    with pytest.raises(KPRError, match="expected 'aten' or 'onednn'"):
        with use_cpu_linear("mkl"):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize(
    ("mkl", "onednn", "expected"),
    [(True, True, "onednn"), (False, True, "aten"), (True, False, "aten")],
)
def test_default_is_onednn_where_mkl_is_the_blas(mkl, onednn, expected, monkeypatch):
    monkeypatch.delenv("KPR_CPU_LINEAR", raising=False)
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: mkl)
    monkeypatch.setattr(kpr_linear, "_onednn_op_available", lambda: onednn)
    kpr_linear._default_backend.cache_clear()
    try:
        assert cpu_linear_backend() == expected
    finally:
        kpr_linear._default_backend.cache_clear()


def test_routed_layers_keep_their_state_and_follow_copies(onednn_calls):
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 256))
    keys = list(model.state_dict())
    route_linear_layers(model)
    assert list(model.state_dict()) == keys
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin[0].weight.mul_(2)  # the copy's routed forward must read the copy's weight
        x = torch.randn(256, 256)
        with use_cpu_linear("onednn"):
            out, twin_out = model(x), twin(x)
        hidden = F.relu(F.linear(x, model[0].weight, model[0].bias))
        reference = F.linear(hidden, model[2].weight, model[2].bias)
    assert len(onednn_calls) == 4
    torch.testing.assert_close(out, reference, atol=1e-4, rtol=1e-5)
    assert not torch.allclose(twin_out, out, atol=1e-2)
