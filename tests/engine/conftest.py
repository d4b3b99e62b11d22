import pytest

from kpr.synthetic import SyntheticConfig, generate_synthetic_dataset


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """A 96-image synthetic dataset (6 train ids, 4 test ids) in the kpr-folder format."""
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic_dataset(
        root,
        SyntheticConfig(
            seed=3, num_images=96, num_train_ids=6, num_test_ids=4, team_size=2, query_fraction=0.3
        ),
        workers=1,
    )
    return root
