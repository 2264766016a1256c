"""scripts/generate_emt_cu.py's deformed cells: sheared, with EMT's stress (what C44 needs)."""

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_emt_cu.py"


def load_script():
    spec = importlib.util.spec_from_file_location("generate_emt_cu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deformed_cells_are_sheared_and_carry_a_shear_stress():
    script = load_script()
    settings = {"temperatures": [300], "strains": [0.0], "snapshots": 1}
    frames = script.generate(settings, seed=0, every=1, repeat=1, deformed=3, max_strain=0.03)
    assert len(frames) == 4  # 1 MD frame + 3 deformed (trajectories of 2, then 1)
    cubic, *deformed = frames
    assert np.allclose(cubic.cell.array, 3.6 * np.eye(3))
    for frame in deformed:
        strain = frame.info["strain"].reshape(3, 3)
        assert np.allclose(strain, strain.T) and np.abs(strain).max() <= 0.03
        assert np.allclose(frame.cell.array, 3.6 * (np.eye(3) + strain))
        # a sheared cubic cell: EMT's off-diagonal stress is far from zero
        assert np.abs(frame.get_stress()[3:]).max() > 1e-4
