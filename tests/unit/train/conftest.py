"""The shipped sample, shared by the training tests."""

import pytest
from train_cases import SAMPLE

from geocompose.data.dataset import Dataset


@pytest.fixture(scope="session")
def sample() -> Dataset:
    """The first 40 structures of the shipped EMT copper sample."""
    return Dataset.from_file(SAMPLE, index=":40")
