"""Search spaces: parsing with located errors, sizes, conditional knobs, type-checked survey."""

import math

import pytest

from geocompose.errors import BlueprintError
from geocompose.search.sampler import RandomSuggester, refusal_reason, survey
from geocompose.search.space import Choice, Range, read_space

SPACE = """\
name: demo
symmetry: {group: O(3)}
graph: {type: radius, cutoff: 4.0}
embedding:
  species: [Cu]
  node: {type: learned, features: {choice: [4, 8]}}
  radial: {type: bessel, num: {range: [4, 6]}}
  envelope: {type: polynomial}
  angular: {l_max: 1}
interactions:
  - choice:
      - {type: schnet, filters: 8}
      - {type: painn, repeat: {range: [1, 2]}}
  - choice: [{type: schnet, filters: 8}, {type: scalars}]
readout:
  energy: {type: sum}
"""


def test_size_counts_conditional_branches():
    space = read_space("demo.yaml", text=SPACE)
    # features 2 x num 3 x (schnet 1 + painn 2) x second block 2
    assert space.size == 2 * 3 * 3 * 2
    names = [p.name for p in space.parameters()]
    assert "interactions[0].choice[1].repeat" in names
    assert len(list(space.enumerate())) == space.size


def test_survey_prunes_ill_typed_candidates_with_grouped_reasons():
    report = survey(read_space("demo.yaml", text=SPACE))
    assert report.enumerated and report.examined == 36
    # painn (2 depths) followed by schnet is refused: 2 x 3 x 2 = 12 candidates
    assert report.valid == 24
    ((reason, count),) = report.reasons.items()
    assert count == 12 and reason.startswith(
        "interactions[1]: schnet reads node_features as 0e only"
    )


def test_sampling_is_reproducible_and_respects_ranges():
    space = read_space("demo.yaml", text=SPACE)
    a = [space.sample(RandomSuggester(3)) for _ in range(5)]
    b = [space.sample(RandomSuggester(3)) for _ in range(5)]
    assert a == b
    assert all(4 <= c["embedding"]["radial"]["num"] <= 6 for c in a)


def test_float_range_makes_the_space_infinite_but_samplable():
    text = SPACE.replace(
        "{type: radius, cutoff: 4.0}", "{type: radius, cutoff: {range: [3.0, 5.0]}}"
    )
    space = read_space("demo.yaml", text=text)
    assert math.isinf(space.size)
    cutoff = space.sample(RandomSuggester(0))["graph"]["cutoff"]
    assert 3.0 <= cutoff <= 5.0
    report = survey(space, samples=20)
    assert not report.enumerated and report.examined == 20


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("{choice: []}", "non-empty list"),
        ("{range: [5, 1]}", "low <= high"),
        ("{range: [0, 4], log: true}", "positive range"),
        ("{choice: [1], range: [1, 2]}", "exactly one of"),
    ],
)
def test_malformed_search_nodes_are_located(bad, fragment):
    text = SPACE.replace("{choice: [4, 8]}", bad)
    with pytest.raises(BlueprintError) as err:
        read_space("demo.yaml", text=text)
    assert "demo.yaml:6:" in str(err.value) and fragment in str(err.value)
    assert err.value.knob == "embedding.node.features"


def test_refusal_reason_is_none_for_valid_candidates():
    space = read_space("demo.yaml", text=SPACE)
    first = next(space.enumerate())
    assert refusal_reason(first) is None
    assert isinstance(space.template["interactions"][0], Choice)
    assert isinstance(space.template["embedding"]["radial"]["num"], Range)
