"""``geocompose verify``: files and directories, one table each, a summary, the worst exit code.

The wiring is tested against a stand-in for ``geocompose.verification.verify`` (fast, and
each outcome on demand); two tests run the real verifier end to end, on a tiny
blueprint that holds its claim and on one with a planted block that breaks it.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Literal

import pytest

from geocompose.cli.main import main
from geocompose.errors import BlueprintError, Location, VerificationFailed
from geocompose.nn.block import Block
from geocompose.nn.interaction.base import InteractionParams
from geocompose.nn.ops.message import EdgeView, aggregate
from geocompose.registry import REGISTRY, Group, Kind, register
from geocompose.types import Signature
from geocompose.types import fields as F
from geocompose.verification.report import CheckResult, Verdict, VerificationReport

TINY = """\
name: {name}
symmetry: {{group: O(3), strategy: built_in}}
graph: {{type: radius, cutoff: 3.0}}
embedding:
  species: [H, C]
  node: {{type: learned, features: 4}}
  radial: {{type: bessel, num: 4}}
  envelope: {{type: polynomial}}
interactions:
  - {{type: {interaction}}}
readout:
  energy: {{type: sum}}
"""


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


def report(name: str, passed: bool) -> VerificationReport:
    verdict = Verdict.PASS if passed else Verdict.FAIL
    checks = [
        CheckResult("rotation", 1e-15 if passed else 0.3, 1e-9, verdict, "energy on molecule 0"),
        CheckResult("permutation", 1e-16, 1e-9, Verdict.PASS, "energy on molecule 0"),
    ]
    return VerificationReport(name=name, weights=10, claim="O(3)", derived="O(3)", checks=checks)


class FakeVerifier:
    """Stands in for ``geocompose.verification.verify``: an outcome per file stem, calls recorded."""

    def __init__(self, outcomes: dict[str, object]):
        self.outcomes = outcomes
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, path, **options):
        self.calls.append((str(path), options))
        outcome = self.outcomes[Path(path).stem]
        if isinstance(outcome, Exception):
            raise outcome
        return report(Path(path).stem, outcome)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    def install(**outcomes):
        verifier = FakeVerifier(outcomes)
        monkeypatch.setattr(importlib.import_module("geocompose.verification"), "verify", verifier)
        for stem in outcomes:
            (tmp_path / f"{stem}.yaml").write_text(f"name: {stem}\n")
        return verifier

    return install


def test_all_pass_exits_0(fake, tmp_path, capsys):
    verifier = fake(a=True, b=True)
    assert main(["verify", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]) == 0
    out = capsys.readouterr().out
    assert "a: claim O(3)" in out and "10 weights" in out  # the report's own table
    assert "verification summary" in out and out.count("verified") >= 2
    assert [Path(p).name for p, _ in verifier.calls] == ["a.yaml", "b.yaml"]


def test_options_are_passed_only_when_given(fake, tmp_path):
    verifier = fake(a=True)
    main(["verify", str(tmp_path / "a.yaml")])
    main(["verify", str(tmp_path / "a.yaml"), "--samples", "2", "--seed", "7"])
    assert [options for _, options in verifier.calls] == [{}, {"samples": 2, "seed": 7}]


@pytest.mark.parametrize("samples", ["0", "-1", "two"])
def test_samples_must_be_positive(samples, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "x.yaml", "--samples", samples])
    assert exit_.value.code == 2
    assert "must be a positive whole number" in capsys.readouterr().err


def test_a_violated_claim_exits_1_and_names_the_check(fake, tmp_path, capsys):
    fake(good=True, broken=False)
    assert main(["verify", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "claim violated" in out and "failed: rotation" in out


def test_verification_failed_raised_by_the_verifier_exits_1(fake, tmp_path, capsys):
    fake(a=VerificationFailed("a: rotation error 0.3 > 1e-9"))
    assert main(["verify", str(tmp_path / "a.yaml")]) == 1
    out, err = capsys.readouterr()
    assert "a: rotation error 0.3 > 1e-9" in err
    assert "claim violated" in out and "invalid" not in out


def test_a_crash_exits_3_never_1_and_the_others_are_still_verified(fake, tmp_path, capsys):
    verifier = fake(a=ZeroDivisionError("a bug in the verifier"), b=True)
    assert main(["verify", str(tmp_path)]) == 3
    out, err = capsys.readouterr()
    assert [Path(p).stem for p, _ in verifier.calls] == ["a", "b"]
    assert "Traceback" in err and "ZeroDivisionError: a bug in the verifier" in err
    assert "internal error" in out and "claim violated" not in out


def test_json_writes_every_report_and_error(fake, tmp_path):
    bad = tmp_path / "bad.yaml"
    fake(bad=BlueprintError("must be > 0; got 0", Location(str(bad), 3, 31), "graph.cutoff"),
         broken=False, good=True)
    out = tmp_path / "out" / "report.json"
    out.parent.mkdir()
    assert main(["verify", str(tmp_path), "-q", "--json", str(out)]) == 2
    entries = {Path(e["file"]).stem: e for e in json.loads(out.read_text())["reports"]}
    assert entries["bad"]["exit_code"] == 2 and "graph.cutoff" in entries["bad"]["error"]
    broken = entries["broken"]["report"]
    assert entries["broken"]["result"] == "claim violated" and broken["passed"] is False
    assert broken["checks"][0] == {
        "name": "rotation",
        "error": 0.3,
        "mean": None,
        "tolerance": 1e-9,
        "verdict": "FAIL",
        "detail": "energy on molecule 0",
    }
    assert entries["good"]["report"]["passed"] is True


def test_invalid_file_exits_2_after_verifying_the_others(fake, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    located = BlueprintError("must be > 0; got 0", Location(str(bad), 3, 31), "graph.cutoff")
    verifier = fake(bad=located, broken=False, good=True)
    assert main(["verify", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert [Path(p).stem for p, _ in verifier.calls] == ["bad", "broken", "good"]  # name order
    assert err.strip() == f"{bad}:3:31: graph.cutoff: must be > 0; got 0"
    assert "invalid" in out and "claim violated" in out and "verified" in out
    assert "3:31: graph.cutoff: must be > 0; got 0" in out  # in the summary, path not repeated


def test_directories_expand_to_yaml_files_only(fake, tmp_path):
    verifier = fake(a=True, b=True)
    (tmp_path / "notes.txt").write_text("not a blueprint")
    (tmp_path / "c.yml").write_text("name: c\n")
    assert main(["verify", str(tmp_path)]) == 0
    assert sorted(Path(p).name for p, _ in verifier.calls) == ["a.yaml", "b.yaml"]


def test_directory_without_blueprints_exits_2(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert f"no *.yaml blueprints in directory {tmp_path}" in err
    assert "invalid" in out


def test_quiet_prints_only_the_summary(fake, tmp_path, capsys):
    fake(a=True)
    assert main(["verify", "-q", str(tmp_path / "a.yaml")]) == 0
    out = capsys.readouterr().out
    assert "verification summary" in out and "10 weights" not in out


# ------------------------------------------------------------ the real verifier


def test_real_verifier_on_a_tiny_blueprint(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(name="tiny", interaction="schnet, filters: 4"))
    assert main(["verify", str(path), "--samples", "1", "--seed", "0"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "tiny: claim O(3)" in out and "rotation" in out and "verified" in out


class XLeakParams(InteractionParams):
    type: Literal["x_leak_cli_test"] = "x_leak_cli_test"


class XLeakInteraction(Block):
    """Planted defect: adds the summed x-components of edge vectors to every feature,
    while claiming O(3). Rotations change x, so the energy is not invariant."""

    Params = XLeakParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        reads = {n: upstream[n] for n in (F.NODE_FEATURES, F.EDGE_VECTORS, F.EDGE_INDEX)}
        return Signature(
            reads=reads, writes={F.NODE_FEATURES: reads[F.NODE_FEATURES]}, guarantee=Group.O3
        )

    def forward(self, state):
        edges = EdgeView.from_state(state)
        leak = aggregate(state[F.EDGE_VECTORS][:, :1], edges)  # (N, 1): not invariant
        return {F.NODE_FEATURES: state[F.NODE_FEATURES] + leak}


@pytest.fixture
def x_leak():
    register(Kind.INTERACTION)(XLeakInteraction)
    yield
    REGISTRY.remove(Kind.INTERACTION, "x_leak_cli_test")


def test_real_verifier_catches_a_planted_defect(x_leak, tmp_path, capsys):
    path = tmp_path / "leaky.yaml"
    path.write_text(TINY.format(name="leaky", interaction="x_leak_cli_test"))
    report = tmp_path / "leaky.json"
    assert main(["verify", str(path), "--samples", "1", "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert "claim violated" in out and "failed: rotation" in out
    assert "block 3 (x_leak_cli_test, interactions[0])" in out  # blame, in title and summary
    blame = json.loads(report.read_text())["reports"][0]["report"]["blame"]
    named = (blame["index"], blame["block"], blame["field"])
    assert named == (3, "x_leak_cli_test", "node_features")
