"""Bad data files are refused naming the file, the line, the frame and the atom.

Each case plants one defect in a copy of the shipped Cu sample (frame 0 is lines 1-34,
frame 1 starts at line 35, its atom 3 is on line 40).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geocompose.cli.main import main
from geocompose.data.dataset import Dataset
from geocompose.data.reading import coincident_atoms
from geocompose.errors import StructureError

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"
LINES = SAMPLE.read_text().splitlines()
ATOM_LINE = 39  # 0-based: frame 1, atom 3


def planted(tmp_path: Path, edit) -> Path:
    lines = list(LINES)
    edit(lines)
    path = tmp_path / "bad.extxyz"
    path.write_text("\n".join(lines) + "\n")
    return path


def _symbol(lines):
    lines[ATOM_LINE] = "Qq" + lines[ATOM_LINE][2:]


def _comma(lines):
    lines[ATOM_LINE] = lines[ATOM_LINE].replace(".", ",", 1)


def _columns(lines):
    lines[ATOM_LINE] = " ".join(lines[ATOM_LINE].split()[:3])


def _count(lines):
    lines[34] = "abc"


def _truncate(lines):
    del lines[60:]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_symbol, ":40: frame 1, atom 3: unknown chemical symbol 'Qq'"),
        (_comma, ":40: frame 1, atom 3: '1,73623366' is not a number"),
        (_columns, ":40: frame 1, atom 3: 3 columns, expected 7"),
        (_count, ":35: frame 1: expected the number of atoms on this line; got 'abc'"),
        (
            _truncate,
            ":35: frame 1: the file ends inside this frame (it declares 32 atoms; "
            "24 atom line(s) follow); was the file truncated?",
        ),
    ],
)
def test_a_malformed_frame_is_located(tmp_path, edit, expected):
    path = planted(tmp_path, edit)
    with pytest.raises(StructureError) as err:
        Dataset.from_file(path)
    assert str(err.value) == f"{path}{expected}"


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.extxyz"
    path.write_text("\n")
    with pytest.raises(StructureError, match="the file is empty"):
        Dataset.from_file(path)


def test_the_shipped_samples_still_read():
    assert len(Dataset.from_file(SAMPLE)) == 200


def test_coincident_atoms_are_refused_with_frame_and_atoms(tmp_path):
    def duplicate(lines):  # frame 1, atom 5 written again as atom 6
        lines[34 + 2 + 6] = lines[34 + 2 + 5]

    data = Dataset.from_file(planted(tmp_path, duplicate))
    with pytest.raises(StructureError, match=r"structure 1: atoms 5 and 6 coincide \(0 Å apart"):
        data.check(species=["Cu"])


def test_coincidence_counts_periodic_images():
    cell = np.eye(3) * 3.0
    positions = np.array([[0.0, 0.0, 0.0], [1.5, 1.5, 1.5], [3.0, 0.0, 1e-4]])
    assert coincident_atoms(positions, cell, np.array([True] * 3))[:2] == (0, 2)
    assert coincident_atoms(positions, cell, np.array([False] * 3)) is None
    assert coincident_atoms(positions[:1], cell, np.array([True] * 3)) is None


def test_train_on_a_bad_file_exits_2_with_the_located_line(tmp_path, capsys):
    path = planted(tmp_path, _symbol)
    blueprint = str(REPO / "examples" / "blueprints" / "painn_small.yaml")
    assert main(["train", blueprint, str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"{path}:40: frame 1, atom 3: unknown chemical symbol 'Qq'"


def test_a_missing_atom_line_is_named_as_such(tmp_path):
    def drop(lines):
        del lines[5]  # frame 0 now has 31 atom lines; frame 1's count line becomes "atom 31"

    path = planted(tmp_path, drop)
    with pytest.raises(StructureError) as err:
        Dataset.from_file(path)
    assert str(err.value) == (
        f"{path}:34: frame 0: a count line where atom 31 should be; the frame declares "
        "32 atoms but has 31 (an atom line is missing?)"
    )


def test_an_extra_atom_line_is_named_as_such(tmp_path):
    def extra(lines):
        lines.insert(5, lines[5])

    path = planted(tmp_path, extra)
    with pytest.raises(StructureError, match=r":35: frame 1: expected the number of atoms .*"
                       r"\(frame 0 has more atom lines than its count says\?\)"):
        Dataset.from_file(path)
