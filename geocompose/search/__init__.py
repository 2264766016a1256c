"""Architecture search: spaces of blueprints, type-checked before they cost a trial."""

from geocompose.search.config import SearchConfig
from geocompose.search.designs import OptunaSuggester
from geocompose.search.engine import run_search
from geocompose.search.sampler import RandomSuggester, SpaceReport, refusal_reason, survey
from geocompose.search.space import Choice, Range, Space, read_space

__all__ = [
    "Choice",
    "OptunaSuggester",
    "RandomSuggester",
    "Range",
    "SearchConfig",
    "Space",
    "SpaceReport",
    "read_space",
    "refusal_reason",
    "run_search",
    "survey",
]
