import kpr


def test_version_is_set():
    assert kpr.__version__.count(".") == 2
