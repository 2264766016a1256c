"""Structures in and out: batches of ASE ``Atoms``."""

from geocompose.data.batch import Batch

__all__ = ["Batch"]
