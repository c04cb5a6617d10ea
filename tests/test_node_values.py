"""The public value API of nodes: ``peek()`` reads without recording a use, ``set_value()``
assigns a parameter, ``trial()`` holds a value for a ``with`` block and puts the old one back."""

from __future__ import annotations

import pytest

from trace_nb import ExternalDependencyError, ParameterNode, bundle, node

OUTSIDE = node(100, name="nv_outside")


def test_peek_is_the_value_and_records_no_use():
    @bundle(allow_external_dependencies=True)
    def looks(a):
        return a + OUTSIDE.peek()

    x = node(1)
    out = looks(x)
    # Oracle: the same function reading ``.data`` makes OUTSIDE a parent (test_bundle.py);
    # a peek must leave the call with its argument as the only parent.
    assert out.peek() == 101
    assert out.parents == (x,)

    @bundle()
    def looks_strict(a):
        return a + OUTSIDE.peek()

    assert looks_strict(node(2)).peek() == 102  # no ExternalDependencyError

    @bundle()
    def reads(a):
        return a + OUTSIDE.data

    with pytest.raises(ExternalDependencyError):  # the recording read, for contrast
        reads(node(3))


def test_peek_returns_the_object_itself():
    value = {"k": [1]}
    assert ParameterNode(value, name="v").peek() is value


def test_set_value_assigns_and_unwraps_a_node():
    p = ParameterNode(1.0, name="w")
    p.set_value(2.5)
    assert p.peek() == 2.5
    p.set_value(node("text"))
    assert p.peek() == "text"


def test_trial_holds_the_value_then_restores_it():
    p = ParameterNode([1, 2], name="w")
    before = p.peek()
    with p.trial([3]) as held:
        assert held is p
        assert p.peek() == [3]
    assert p.peek() is before


def test_trial_restores_on_an_exception_and_lets_it_through():
    p = ParameterNode("old", name="w")
    with pytest.raises(ZeroDivisionError), p.trial("new"):
        assert p.peek() == "new"
        1 / 0  # noqa: B018 - the error the block ends with
    assert p.peek() == "old"


def test_trials_nest_and_each_restores_what_it_found():
    p = ParameterNode(0, name="w")
    with p.trial(1):
        with p.trial(2):
            assert p.peek() == 2
        assert p.peek() == 1
    assert p.peek() == 0


def test_a_value_set_inside_a_trial_is_undone_too():
    # A trial is "what would this do": whatever the block assigns is put back as well.
    p = ParameterNode(0, name="w")
    with p.trial(1):
        p.set_value(5)
    assert p.peek() == 0
