"""bundle: operator nodes from functions, trainable code, exceptions, dependencies."""

from __future__ import annotations

import warnings

import pytest

from trace_nb import ExecutionError, ExternalDependencyError, MessageNode, bundle, node


@bundle()
def add_twice(a, b=1):
    """Adds b twice to a."""
    return a + 2 * b


def test_bundle_makes_operator_node_with_docstring():
    x = node(3, name="bd_x")
    out = add_twice(x, b=node(2))
    assert isinstance(out, MessageNode) and out.data == 7
    assert out.parents[0] is x and len(out.parents) == 2
    assert out.op.name == "add_twice" and out.op.description == "Adds b twice to a."
    assert out.op.arg_names == ("a", "b")
    assert add_twice(1).parents == ()  # plain values still give a node, with no parents


def test_bundle_forms():
    def f(v):
        return v + 1

    assert bundle()(f)(node(1)).data == 2
    assert bundle(f)(node(1)).data == 2
    assert bundle(description="custom")(f)(1).op.description == "custom"


@bundle(trainable=True)
def poly(v):
    return v * 2


def test_trainable_code_is_parameter_and_new_code_runs():
    p = poly.parameter
    assert p.trainable and p.is_code and p.data.startswith("def poly(v):")
    assert "@bundle" not in p.data
    x = node(5)
    out = poly(x)
    assert out.data == 10 and p in out.parents
    old = p.data
    p.set_value("def poly(v):\n    return v * 7 + OFFSET\n")
    globals()["OFFSET"] = 1  # new code sees the module's globals
    assert poly(x).data == 36
    p.set_value("def poly(v):\n    return v *\n")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert poly(x).data == 36  # the last code that compiled keeps working
    assert "does not compile" in str(w[0].message) and "line 2" in str(w[0].message)
    assert "does not compile" in poly.compile_error
    p.set_value(old)
    assert poly(x).data == 10 and poly.compile_error is None


def test_exception_becomes_exception_node():
    @bundle()
    def divide(a, b):
        q = a / b
        return q

    x, zero = node(1, name="bd_num"), node(0, name="bd_zero")
    with pytest.raises(ExecutionError) as info:
        divide(x, zero)
    en = info.value.exception_node
    assert en.kind == "exception"
    assert en.info["type"] == "ZeroDivisionError"
    assert "q = a / b" in en.info["line"]
    assert en.parents == (x, zero)
    assert isinstance(en.data, ZeroDivisionError)
    assert "ZeroDivisionError" in en.describe() and "q = a / b" in en.describe()
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_uncaught_mode_raises_original():
    @bundle(catch_execution_error=False)
    def boom(a):
        raise KeyError("k")

    with pytest.raises(KeyError):
        boom(node(1))


GLOBAL_NODE = node(100, name="bd_global")


def test_external_dependencies_rejected_or_recorded():
    @bundle()
    def reads_global(a):
        return a + GLOBAL_NODE.data

    with pytest.raises(ExternalDependencyError, match="bd_global.*allow_external_dependencies"):
        reads_global(node(1))

    @bundle(allow_external_dependencies=True)
    def reads_global_ok(a):
        return a + GLOBAL_NODE.data

    x = node(1)
    out = reads_global_ok(x)
    assert out.data == 101 and out.parents == (x, GLOBAL_NODE)

    @bundle(allow_external_dependencies=True)
    def returns_node(a):
        return GLOBAL_NODE * a

    assert GLOBAL_NODE in returns_node(node(2)).parents


def test_trainable_methods_are_per_instance():
    class Agent:
        @bundle(trainable=True)
        def act(self, v):
            return v + 1

    a1, a2 = Agent(), Agent()
    assert a1.act(node(1)).data == 2 and a2.act(node(1)).data == 2
    p1 = a1.__dict__["__trace_bundle_act"].parameter
    p2 = a2.__dict__["__trace_bundle_act"].parameter
    assert p1 is not p2 and p1.name == p2.name == "agent_act"
    from trace_nb.optim import OptoPrime

    OptoPrime([p1, p2], llm=lambda messages: "")  # an optimizer numbers repeated names
    assert (p1.name, p2.name) == ("agent_act", "agent_act_1")
    p1.set_value("def act(self, v):\n    return v + 100\n")
    assert a1.act(node(1)).data == 101 and a2.act(node(1)).data == 2


def test_trainable_needs_source():
    ns: dict = {}
    exec("def f(x):\n    return x\n", ns)
    with pytest.raises(ValueError, match="cannot read the source code"):
        bundle(trainable=True)(ns["f"])


def test_code_with_imports_above_the_def_sees_them():
    @bundle(trainable=True)
    def root(v):
        return v

    root.parameter.set_value(
        "import math\nSCALE = 3\n\ndef root(v):\n    return math.sqrt(v) * SCALE\n"
    )
    assert root(node(16)).data == 12.0


# A trainable function whose def is far from line 1 of this file: the error must be numbered
# within the source the LLM sees (the code parameter, from the def line), not this file.
@bundle(trainable=True)
def _ratio_of(total, parts):
    """Share of each part."""
    count = len(parts)
    return total / (count - 2)


def test_an_error_in_trainable_code_is_numbered_within_the_shown_source():
    with pytest.raises(ExecutionError) as info:
        _ratio_of(node(6.0), node([1, 2]))
    exc = info.value.exception_node
    shown = _ratio_of.parameter.data.splitlines()
    assert shown[0].startswith("def _ratio_of(")  # the decorator is not shown
    assert exc.info["lineno"] == 4 and shown[3].strip() == "return total / (count - 2)"
    assert exc.describe().endswith("at line 4: return total / (count - 2)")

    # New code (compiled from the parameter's text) is numbered the same way.
    _ratio_of.parameter.set_value(
        "def _ratio_of(total, parts):\n    return total / (len(parts) - 2)\n"
    )
    try:
        with pytest.raises(ExecutionError) as info:
            _ratio_of(node(6.0), node([1, 2]))
        assert info.value.exception_node.describe().endswith(
            "at line 2: return total / (len(parts) - 2)"
        )
    finally:
        _ratio_of.parameter.set_value("".join(shown_line + "\n" for shown_line in shown))
