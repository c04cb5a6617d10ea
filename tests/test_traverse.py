"""The one graph traversal and the subgraphs derived from it, against brute-force oracles."""

from __future__ import annotations

import random

import pytest

from trace_nb import node
from trace_nb.graph import on_paths, outputs_of, subgraph, subgraphs, topo_ancestors
from trace_nb.graph.traverse import children


def ancestors_or_self(n) -> set[int]:
    """ids of ``n`` and everything it depends on (recursive: small graphs only)."""
    return set(nodes_upstream(n))


def nodes_upstream(n) -> dict[int, object]:
    """``n`` and everything it depends on, by id (recursive: small graphs only)."""
    found = {id(n): n}
    for p in n.parents:
        found.update(nodes_upstream(p))
    return found


def is_topological(order) -> bool:
    pos = {id(n): i for i, n in enumerate(order)}
    return all(pos[id(p)] < pos[id(n)] for n in order for p in n.parents if id(p) in pos)


def random_graph(seed: int, zero: bool = False):
    """Parameters, intermediate nodes and outputs of a random DAG; feedback given to every
    output (so each parameter upstream of one hears from it)."""
    rng = random.Random(seed)
    params = [
        node(rng.randint(1, 9), name=f"tv{seed}_p{i}", trainable=True)
        for i in range(rng.randint(1, 5))
    ]
    pool = list(params) + [node(100, name=f"tv{seed}_const")]
    for _ in range(rng.randint(1, 12)):
        parents = rng.sample(pool, min(len(pool), rng.randint(1, 3)))
        made = parents[0] * 2
        for p in parents[1:]:
            made = made + p
        pool.append(made)
    inner = pool[len(params) + 1 :]
    outputs = rng.sample(inner, min(len(inner), rng.randint(1, 3)))
    for k, out in enumerate(outputs):
        if zero and k and rng.random() < 0.5:  # a parameter forgets what it heard so far
            rng.choice(params).zero_feedback()
        out.backward(f"feedback {k}")
    return params, pool, outputs


@pytest.mark.parametrize("zero", [False, True])
@pytest.mark.parametrize("seed", range(40))
def test_subgraphs_equal_each_parameters_paths_to_its_outputs(seed, zero):
    params, pool, outputs = random_graph(seed, zero)
    result = subgraphs(params)
    assert list(result) == params
    for p in params:
        mine = outputs_of([p])
        if not zero:
            upstream = {id(o) for o in outputs if id(p) in ancestors_or_self(o)}
            assert {id(o) for o in mine} == upstream
        # Oracle: n lies on a path p -> output when p is upstream of n and n of an output
        # p heard from.
        reach = set().union(*(ancestors_or_self(o) for o in mine)) if mine else set()
        universe = {k: n for o in outputs for k, n in nodes_upstream(o).items()}
        expected = [
            n for n in universe.values() if id(n) in reach and id(p) in ancestors_or_self(n)
        ]
        got = result[p]
        assert len(got) == len({id(n) for n in got})  # each node once
        assert {id(n) for n in got} == {id(n) for n in expected}
        assert is_topological(got)
        assert {id(n) for n in subgraph(p)} == {id(n) for n in got}  # the one-by-one answer


def test_subgraphs_follow_only_the_outputs_each_parameter_heard_from():
    p = node(1, name="tv_heard_p", trainable=True)
    q = node(2, name="tv_heard_q", trainable=True)
    both = p + q
    both.backward("b")
    p.zero_feedback()  # p forgets `both`; q still heard from it
    alone = p * 2
    alone.backward("a")
    assert subgraphs([p, q]) == {p: [p, alone], q: [q, both]}
    assert subgraph(p) == [p, alone]


def test_subgraphs_order_follows_the_walk_whatever_the_search_order():
    p = node(5, name="tv_order_p", trainable=True)
    a = p * 2  # 10
    b = a + -20  # -10: p -> a -> b, and the search meets b last
    c = p + b  # -5: c has p and b as parents
    c.backward("smaller")
    got = subgraphs([p])[p]
    assert got == topo_ancestors([c])[:1] + [a, b, c]  # not the values' order
    assert [n.data for n in got] == [5, 10, -10, -5]


def test_a_parameter_that_is_the_output_is_its_own_subgraph():
    p = node(3, name="tv_self", trainable=True)
    p.backward("be even")
    assert subgraphs([p]) == {p: [p]} and outputs_of([p]) == [p]


def test_subgraphs_of_two_nodes_are_parent_first():
    q = node(1, name="tv_pair_q", trainable=True)
    r = node(2, name="tv_pair_r", trainable=True)
    out = r + (q * 3)
    out.backward("bigger")
    got = subgraphs([q, r])
    assert got[r] == [r, out]
    assert [n.name for n in got[q]] == [q.name, out.parents[1].name, out.name]
    single = node(5, name="tv_pair_s", trainable=True)
    y = single * 2
    y.backward("x")
    assert subgraphs([single])[single] == [single, y]


def test_a_parameter_without_feedback_has_an_empty_subgraph():
    fed = node(1, name="tv_fed", trainable=True)
    idle = node(2, name="tv_idle", trainable=True)
    out = fed + 1
    idle * 2  # used, but no feedback reached it
    out.backward("more")
    assert subgraphs([fed, idle]) == {fed: [fed, out], idle: []}
    assert subgraphs([]) == {}


def test_subgraphs_of_parameters_sharing_an_output_are_separate():
    a = node(1, name="tv_share_a", trainable=True)
    b = node(2, name="tv_share_b", trainable=True)
    ua, ub = a * 2, b * 3
    out = ua + ub
    out.backward("less")
    got = subgraphs([a, b])
    assert got == {a: [a, ua, out], b: [b, ub, out]}


def test_topo_ancestors_lists_each_node_once_whatever_the_outputs():
    x = node(1, name="tv_topo_x", trainable=True)
    y = x + 1
    z = node(7, name="tv_topo_z", trainable=True)
    assert topo_ancestors([y, y]) == [x, y]  # an output given twice
    assert topo_ancestors([x, y]) == [x, y]  # an output that is another's ancestor
    assert topo_ancestors([y, x, z]) == [x, y, z]  # a later, unrelated output still comes
    assert topo_ancestors([]) == []


def test_on_paths_follows_the_order_it_is_given():
    s = node(1, name="tv_op_s", trainable=True)
    t = s * 2
    u = t + 3
    v = node(4, name="tv_op_v") + 1  # not downstream of s
    assert on_paths([s], [u]) == [s, t, u]
    # A caller that already walked the graph passes its order: only that is swept.
    assert on_paths([s], [u], order=[s, v, t]) == [s, t]
    assert on_paths([s], [], order=[s, t, u, v]) == [s, t, u]


def test_outputs_of_lists_each_output_once_in_order_of_arrival():
    p = node(1, name="tv_out_p", trainable=True)
    q = node(2, name="tv_out_q", trainable=True)
    first = p + q
    second = p * 3
    second.backward("b")
    first.backward("a")
    first.backward("a again")
    assert outputs_of([p]) == [second, first]
    assert outputs_of([q, p]) == [first, second]
    assert outputs_of([node(0, name="tv_out_none", trainable=True)]) == []


def test_children_lists_each_nodes_children_in_walk_order():
    r = node(1, name="tv_kids_r", trainable=True)
    first, second = r + 1, r * 2
    both = first + second
    kids = children(topo_ancestors([both]))
    assert kids[r] == [first, second] and kids[first] == [both] and kids[second] == [both]
    assert both not in kids
