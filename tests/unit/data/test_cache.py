"""The one cache: a memo table, and the two lifetimes a model call reads it for."""

from __future__ import annotations

import pytest
import torch

from geocompose import Batch
from geocompose.data.cache import Cache, RunCaches


def test_a_value_is_computed_once_per_key():
    cache, calls = Cache(), []
    assert cache.cached("k", lambda: calls.append(1) or 5) == 5
    assert cache.cached("k", lambda: calls.append(1) or 6) == 5
    assert cache.cached("other", lambda: calls.append(1) or 7) == 7
    assert len(calls) == 2 and len(cache) == 2 and "k" in cache


def test_batch_cached_is_the_batch_cache_and_replace_starts_empty():
    batch = Batch.empty()
    assert batch.cached("k", lambda: 1) == 1
    assert batch.run_caches("scope").batch.cached("k", lambda: 2) == 1  # the same table
    assert batch.replace().cached("k", lambda: 3) == 3
    assert batch.to(torch.float32).cached("k", lambda: 4) == 4


def test_each_run_gets_a_fresh_run_cache_over_the_same_batch_cache():
    first = RunCaches(Cache(), "graph")
    second = first.for_run()
    assert second.batch is first.batch and second.scope == first.scope
    assert first.per_run(("y",), lambda: 1) == 1
    assert second.per_run(("y",), lambda: 2) == 2  # not the first run's value
    edge_index = torch.zeros((2, 0), dtype=torch.int64)
    assert first.topology(edge_index, ("t",), lambda: 1) == 1
    assert second.topology(edge_index, ("t",), lambda: 2) == 1  # shared by the runs


def test_scopes_keep_two_edge_sets_of_one_batch_apart():
    batch = Batch.empty()
    near, far = torch.zeros((2, 3), dtype=torch.int64), torch.ones((2, 5), dtype=torch.int64)
    assert batch.run_caches("near").topology(near, ("t",), lambda: "near") == "near"
    assert batch.run_caches("far").topology(far, ("t",), lambda: "far") == "far"
    assert batch.run_caches("near").topology(near, ("t",), lambda: "again") == "near"


def test_a_topology_memo_is_never_served_for_another_edge_set():
    caches = RunCaches(Cache(), "graph")
    built_for = torch.tensor([[0, 1], [1, 0]])
    caches.topology(built_for, ("triplets",), lambda: "of the first batch")
    other = built_for.clone()  # equal values, but another batch's edge set
    with pytest.raises(RuntimeError, match="another edge set"):
        caches.topology(other, ("triplets",), lambda: "of the second batch")


def test_a_call_without_a_batch_memoises_for_itself_only():
    one, two = RunCaches.for_call(), RunCaches.for_call()
    edge_index = torch.zeros((2, 0), dtype=torch.int64)
    assert one.topology(edge_index, ("t",), lambda: 1) == 1
    assert two.topology(edge_index, ("t",), lambda: 2) == 2


def test_same_topology_shares_the_cache_and_replace_does_not():
    batch = Batch.empty()
    batch.cached("neighbours", lambda: "of batch")
    kept = batch.same_topology(positions=batch.positions + 1.0)
    assert kept.cached("neighbours", lambda: "rebuilt") == "of batch"
    assert batch.replace(positions=batch.positions + 1.0).cached("neighbours", lambda: 0) == 0
