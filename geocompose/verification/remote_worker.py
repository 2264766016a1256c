"""The worker of a remote calculator: an ASE calculator in another Python, over pipes.

Run by path (never imported) by :class:`geocompose.verification.remote.RemoteCalculator`
through :func:`geocompose.children.bootstrap`, in any Python with numpy and ASE: it
imports nothing of geocompose, so the calculator may live in an environment whose
pins geocompose's cannot meet (mace-torch's e3nn 0.4.4).

``argv``: ``[this file, PARENT_PID, MODULE:FACTORY]``. The factory's keyword arguments
are the first line on stdin (a JSON object). The protocol is one JSON object per line,
floats written by ``repr`` (exact for float64):

* the worker says ``{"ready": {"calculator": NAME, "implemented": [...], ...}}`` or
  ``{"refused": MESSAGE}`` (the factory could not be imported or called) and exits;
* then each request ``{"numbers", "positions", "cell", "pbc", "properties"}`` gets
  ``{"results": {property: value}}`` (every numeric result of the calculation), ``{"not_implemented": MESSAGE}`` or
  ``{"error": MESSAGE, "traceback": TEXT}`` (the calculator raised);
* end of stdin (the parent closed it, or died) ends the worker.

Replies go to a copy of the original stdout; stdout itself is pointed at stderr, so a
factory or a library that prints (even from C) cannot corrupt the protocol.
"""

import importlib
import json
import os
import sys
import traceback


def _reply(channel, message: dict) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _start(spec: str, kwargs_line: str):
    """The calculator, or the one-line reason it cannot be made."""
    module_name, _, name = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a factory in the caller's own directory
    try:
        kwargs = json.loads(kwargs_line)
        factory = getattr(importlib.import_module(module_name), name, None)
        if not callable(factory):
            return None, f"{module_name} has no callable {name!r}"
        return factory(**kwargs), ""
    except ModuleNotFoundError as err:
        return None, f"no module named {err.name!r} in {sys.executable}"
    except Exception as err:  # noqa: BLE001 (any refusal: the parent reports it as bad input)
        return None, f"{type(err).__name__}: {err}"


def _versions() -> dict:
    """The versions the calculator runs with (the report shows them)."""
    import ase
    import numpy

    return {"python": sys.version.split()[0], "numpy": numpy.__version__, "ase": ase.__version__}


def _compute(calculator, request: dict) -> dict:
    import ase
    import numpy as np
    from ase.calculators.calculator import PropertyNotImplementedError

    atoms = ase.Atoms(
        numbers=request["numbers"],
        positions=np.array(request["positions"], dtype=np.float64).reshape(-1, 3),
        cell=np.array(request["cell"], dtype=np.float64).reshape(3, 3),
        pbc=request["pbc"],
    )
    atoms.calc = calculator
    try:
        for name in request["properties"]:
            calculator.get_property(name, atoms)
    except (PropertyNotImplementedError, NotImplementedError) as err:
        return {"not_implemented": f"{type(err).__name__}: {err}"}
    except Exception as err:  # noqa: BLE001 (the model crashed: the parent raises it)
        return {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    # Everything the calculation gave, not only what was asked: the parent caches it as
    # this calculator would in process (EMT's energy call also gives its forces).
    results = {}
    for name, value in calculator.results.items():
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            results[name] = array.astype(np.float64).tolist()
    return {"results": results}


def main(argv: list[str]) -> int:
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        import ase  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as err:
        needs = f"{sys.executable} lacks {err.name!r}: the worker needs numpy and ase"
        _reply(channel, {"refused": needs})
        return 0
    calculator, refusal = _start(argv[0], sys.stdin.readline())
    if calculator is None:
        _reply(channel, {"refused": refusal})
        return 0
    ready = {
        "calculator": type(calculator).__name__,
        "implemented": list(getattr(calculator, "implemented_properties", [])),
        **_versions(),
    }
    _reply(channel, {"ready": ready})
    for line in sys.stdin:
        _reply(channel, _compute(calculator, json.loads(line)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[2:]))
