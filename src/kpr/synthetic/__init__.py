"""The synthetic multi-person-occlusion benchmark: seeded renders of people, written as a
``kpr-folder/1`` dataset (read back by the ``synthetic`` dataset of :mod:`kpr.data.datasets`).

``generator`` plans and renders the images, ``people`` draws the identities, ``contact_sheet``
previews a dataset and ``cli`` is ``kpr synth``.
"""

from kpr.synthetic.contact_sheet import contact_sheet
from kpr.synthetic.generator import SyntheticConfig, SyntheticSummary, generate_synthetic_dataset
from kpr.synthetic.people import PARSING_CLASSES

__all__ = [
    "PARSING_CLASSES",
    "SyntheticConfig",
    "SyntheticSummary",
    "contact_sheet",
    "generate_synthetic_dataset",
]
