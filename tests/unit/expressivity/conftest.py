"""Expressivity tests run torch on one thread: their graphs have a handful of atoms, so
per-op overhead dominates and extra threads only add to it."""

import pytest

from geocompose.expressivity.protocol import single_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield
