"""i-PI with a trained checkpoint as its force field: our model as the socket client.

i-PI (the ``ipi`` package) is the server: it owns the nuclei (MD, PIMD, thermostats,
barostats) and sends positions and the cell over a socket; a client answers with the
energy, forces and virial. ASE's :class:`~ase.calculators.socketio.SocketClient` speaks
that protocol, so the client is our ASE calculator behind it::

    i-pi input.xml &                       # <ffsocket mode='unix'><address>cu</address>
    python -m geocompose.deploy.ipi --model runs/cu/best.pt --structure init.extxyz --unix cu

ASE's client connects to ``/tmp/ipi_<address>`` (i-PI's default ``sockets_prefix``), or
to ``--host``/``--port`` for an ``inet`` socket. ``--structure`` gives the species and
the periodicity: i-PI sends positions and the cell but not the species. The client
sends the virial (``-V sigma``) for 3D-periodic structures, so i-PI's pressure and NPT
work; for molecules it sends forces and energy only. It returns when i-PI sends its
exit message at the end of the run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ase.calculators.socketio import SocketClient
from ase.io import read

from geocompose.ase import Calculator
from geocompose.data.batch import Batch
from geocompose.deploy.inference import check_structures, load_for_inference
from geocompose.errors import GeocomposeError
from geocompose.train.potential import Potential

__all__ = ["main", "run_client"]


def run_client(
    potential: Potential,
    atoms,
    unixsocket: str | None = None,
    host: str = "localhost",
    port: int | None = None,
    timeout: float | None = 600.0,
) -> int:
    """Serve i-PI's force requests for ``atoms`` until i-PI ends the run.

    Args:
        potential: the loaded potential.
        atoms: an ``Atoms`` with the species (in i-PI's atom order) and periodicity of
            the simulated system; its positions and cell are overwritten by i-PI's.
        unixsocket: the ``<address>`` of a unix ffsocket (``/tmp/ipi_<address>``).
        host, port: an inet ffsocket instead.
        timeout: seconds to wait on the socket before giving up.

    Returns:
        The number of force evaluations served.

    Raises:
        StructureError: a species the model does not know (before connecting).
    """
    periodic = bool(atoms.pbc.all())
    batch = Batch.from_ase(atoms)
    check_structures(potential, batch.atomic_numbers, batch.pbc, stress=False)
    atoms = atoms.copy()
    atoms.calc = Calculator(potential)
    client = SocketClient(host=host, port=port, unixsocket=unixsocket, timeout=timeout)
    served = 0
    try:
        for _ in client.irun(atoms, use_stress=periodic):
            served += 1
    finally:
        client.close()
    return served


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m geocompose.deploy.ipi``: the client, with the CLI's exit codes."""
    parser = argparse.ArgumentParser(prog="python -m geocompose.deploy.ipi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, metavar="CHECKPOINT")
    parser.add_argument("--structure", required=True, metavar="FILE",
                        help="the system i-PI simulates (any file ASE reads; first frame)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix", metavar="ADDRESS", help="the unix ffsocket's <address>")
    where.add_argument("--port", type=int, help="the inet ffsocket's port")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--dtype", choices=("float32", "float64"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timeout", type=float, default=600.0, help="socket timeout (s)")
    args = parser.parse_args(argv)
    try:
        potential = load_for_inference(args.model, args.dtype, args.device)
        try:
            atoms = read(args.structure, index=0)
        except Exception as err:  # noqa: BLE001 - ASE raises many kinds for a bad file
            print(f"{args.structure}: cannot read: {err}", file=sys.stderr)
            return 2
        served = run_client(potential, atoms, args.unix, args.host, args.port, args.timeout)
    except GeocomposeError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"served {served} force evaluations", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
