"""The bounded size/cutoff types and the strict-number rule every knob's params follow."""

from __future__ import annotations

import re
from typing import Literal

import pydantic
import pytest

from geocompose.registry import KnobModel
from geocompose.types.bounds import MAX_CUTOFF, MAX_SIZE, MIN_CUTOFF, Cutoff, Size


class Demo(KnobModel):
    width: Size = 8
    cutoff: Cutoff = 5.0
    optional_cutoff: Cutoff | None = None
    hidden: list[Size] = [4]
    frames: Size | Literal["all"] = 1
    flag: bool = False


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"width": MAX_SIZE + 1}, f"less than or equal to {MAX_SIZE}"),
        ({"width": 2**63}, f"less than or equal to {MAX_SIZE}"),
        ({"width": 0}, "greater than 0"),
        ({"cutoff": 1e308}, f"less than or equal to {MAX_CUTOFF:g}"),
        ({"cutoff": 1e-300}, f"greater than or equal to {MIN_CUTOFF}"),
        ({"cutoff": "5.0"}, "must be a number, not the string '5.0' (write 5.0 without quotes)"),
        ({"optional_cutoff": "6"}, "must be a number, not the string '6'"),
        ({"width": "8"}, "must be an integer, not the string '8'"),
        ({"width": True}, "must be an integer; got the boolean true"),
        ({"hidden": [4, "8"]}, "item 1: must be an integer, not the string '8'"),
    ],
)
def test_out_of_bounds_and_non_numbers_are_refused(values, fragment):
    with pytest.raises(pydantic.ValidationError, match=re.escape(fragment)):
        Demo(**values)


def test_in_bounds_values_and_allowed_alternatives_pass():
    demo = Demo(width=MAX_SIZE, cutoff=MAX_CUTOFF, hidden=[1, 2], frames="all", flag=True)
    assert (demo.width, demo.cutoff, demo.frames, demo.flag) == (MAX_SIZE, MAX_CUTOFF, "all", True)
    assert Demo(cutoff=5).cutoff == 5.0  # an integer is a number
