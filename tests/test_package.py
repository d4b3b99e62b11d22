import subprocess
import sys

import pytest

import kpr


def test_version_is_set():
    assert kpr.__version__.count(".") == 2


def _modules_after(code: str, heavy: tuple[str, ...]) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


HEAVY = ("torch", "fastapi", "scipy.optimize", "trackeval", "mediapipe")


def test_kpr_help_imports_no_model_or_server_library():
    # `kpr --help` took 6 s when building the parser imported torch, FastAPI and scipy.optimize.
    code = (
        "import contextlib, io\nfrom kpr.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])"
    )
    assert _modules_after(code, HEAVY) == []


@pytest.mark.parametrize(
    ("package", "name", "loads"),
    [("kpr.serve", "create_app", "fastapi"), ("kpr.tracking", "match", "scipy.optimize")],
)
def test_subpackages_import_their_names_on_first_use(package, name, loads):
    assert _modules_after(f"import {package}", (loads,)) == []
    assert _modules_after(f"from {package} import {name}", (loads,)) == [loads]


@pytest.mark.parametrize("package", ["kpr", "kpr.serve", "kpr.tracking"])
def test_every_public_name_resolves_and_unknown_names_raise(package):
    module = __import__(package, fromlist=["__all__"])
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        module.nope  # noqa: B018
