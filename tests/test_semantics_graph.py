"""Graph semantics a reference Trace user relies on (issue 13, items 1-6): nested bundles,
containers of nodes, ExecutionError everywhere, async bundles, copies, trainable methods."""

from __future__ import annotations

import asyncio
import copy
import pickle

import pytest

from trace_nb import ExecutionError, ExternalDependencyError, MessageNode, bundle, model, node
from trace_nb.graph import Node, ParameterNode, topo_ancestors


def ops_in(out):
    return [n.op.name for n in topo_ancestors([out]) if isinstance(n, MessageNode)]


@bundle()
def inc(b):
    """Adds one."""
    return b + 1


@bundle()
def inc_twice(b):
    """Adds two by calling inc."""
    return inc(b) + 1


@bundle(traceable_code=True)
def inc_twice_visible(b):
    """Adds two by calling inc, with the inner operations traced."""
    return inc(b) + 1


@bundle()
def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)


@bundle(trainable=True)
def shout(text):
    return text.upper()


@bundle()
def call_with(f, x):
    """Calls f on x."""
    return f(x)


# -- 1. a bundle that calls a bundle ----------------------------------------------------------


def test_nested_bundle_runs_and_hides_the_inner_graph():
    x = node(1, name="nest_x")
    out = inc_twice(x)
    assert out.data == 3 and not isinstance(out.data, Node)
    assert len(out.parents) == 1 and out.parents[0] is x
    assert ops_in(out) == ["inc_twice"]


def test_traceable_code_shows_the_inner_operations():
    x = node(1, name="nest_vx", trainable=True)
    out = inc_twice_visible(x)
    assert out.data == 3
    assert ops_in(out) == ["inc", "add", "inc_twice_visible"]
    inner = [n for n in topo_ancestors([out]) if getattr(n, "op", None) is inc.op][0]
    assert inner.parents == (x,)
    out.backward("bigger")
    from trace_nb.optim import OptoPrime

    code = OptoPrime([x], llm=lambda messages: "").problem().code
    assert "= inc(b=nest_vx)" in code and "inc_twice_visible(" in code


def test_recursion():
    n = node(5)
    out = fact(n)
    assert out.data == 120 and len(out.parents) == 1 and out.parents[0] is n


def test_trainable_bundle_passed_in_gets_feedback():
    s = node("hi", name="nest_s")
    out = call_with(shout, s)
    assert out.data == "HI"
    assert out.parents[0] is s and shout.parameter in out.parents
    out.backward("quieter")
    assert [f.text for f in shout.parameter.feedback] == ["quieter"]
    shout.parameter.zero_feedback()


@model
class Helper:
    def __init__(self):
        self.style = node("!", name="nest_style", trainable=True)

    @bundle(trainable=True)
    def act(self, x):
        return self.polish(x) + "."

    @bundle()
    def polish(self, x):
        return x.strip()

    @bundle()
    def run(self, x):
        """Runs act."""
        return self.act(x)

    @bundle()
    def styled(self, x):
        return self.join(x, self.style)

    @bundle()
    def join(self, a, b):
        return a + b


def test_model_methods_calling_bundled_methods():
    agent = Helper()
    x = node(" go ")
    assert agent.act(x).data == "go."
    out = agent.run(x)
    assert out.data == "go." and out.parents[0] is x
    assert agent.act.parameter in out.parents  # the inner trainable method still learns
    styled = agent.styled(node("a"))
    assert styled.data == "a!" and agent.style in styled.parents


GLOBAL = node(100, name="nest_global")


def test_external_dependencies_inside_nested_calls():
    @bundle()
    def reads_global_through_inner(a):
        return inc(GLOBAL) + a

    with pytest.raises(ExternalDependencyError, match="nest_global"):
        reads_global_through_inner(node(1))

    @bundle(allow_external_dependencies=True)
    def allowed(a):
        return inc(GLOBAL) + a

    out = allowed(node(1))
    assert out.data == 102 and GLOBAL in out.parents

    @bundle()
    def makes_its_own(a):
        c = node(2)
        return (c * a).data + c.data

    a = node(3)
    out = makes_its_own(a)
    assert out.data == 8 and out.parents == (a,)


def test_an_error_in_a_nested_bundle_names_the_real_error():
    @bundle()
    def inner(v):
        return 1 / v

    @bundle()
    def outer(v):
        return inner(v)

    with pytest.raises(ExecutionError) as info:
        outer(node(0))
    en = info.value.exception_node
    assert en.info["type"] == "ZeroDivisionError" and en.op.name == "outer"


# -- 2. containers of nodes -------------------------------------------------------------------


def test_node_of_a_list_of_nodes_holds_values():
    a, b = node(1), node(2)
    xs = node([a, b])
    assert xs.data == [1, 2] and xs.parents == (a, b)
    first = xs[0]
    assert first.data == 1 and not isinstance(first.data, Node)
    assert node({"k": a}).data == {"k": 1}
    assert node((a, b), trainable=True).data == (1, 2)


def test_bundle_and_operators_unwrap_containers():
    @bundle()
    def total(xs):
        return sum(xs)

    a = node(1.0, name="cont_a", trainable=True)
    b = node(2.0)
    out = total([a, b])
    assert out.data == 3.0 and out.parents == (a, b)
    out.backward("smaller")
    assert a.feedback and a.feedback[0].text == "smaller"
    joined = node("+").join([node("x"), node("y")])
    assert joined.data == "x+y" and len(joined.parents) == 3

    @bundle()
    def keys(d, s):
        return sorted(d) + sorted(s)

    c = node(3)
    out = keys({"k": c, "j": b}, {c})
    assert out.data == ["j", "k", 3] and set(map(id, out.parents)) == {id(c), id(b)}
    assert (node([1]) + [c]).data == [1, 3]


class Holder:
    def __init__(self, inner):
        self.x = inner


def test_attribute_holding_a_node_is_its_value():
    inner = node(5, name="attr_inner")
    h = node(Holder(inner))
    got = h.getattr("x")
    assert got.data == 5 and inner in got.parents and h in got.parents
    assert h.x.data == 5 and inner in h.x.parents


# -- 3. errors are always ExecutionError --------------------------------------------------------


@pytest.mark.parametrize(
    "action, original",
    [
        (lambda: node(1) / node(0), ZeroDivisionError),
        (lambda: node("a") + 1, TypeError),
        (lambda: node({})["missing"], KeyError),
        (lambda: node(1).no_such_attribute, AttributeError),
        (lambda: node(1)(), TypeError),
        (lambda: node(lambda: 1 / 0)(), ZeroDivisionError),
        (lambda: node("abc").index("z"), ValueError),
        (lambda: -node("a"), TypeError),
    ],
)
def test_operator_failures_raise_execution_error(action, original):
    with pytest.raises(ExecutionError) as info:
        action()
    assert isinstance(info.value, original)  # plain-Python except clauses still work
    en = info.value.exception_node
    assert en.kind == "exception" and isinstance(en.data, original)
    assert en.info["type"] == original.__name__


def test_unpacking_a_traced_none_raises_execution_error():
    with pytest.raises(ExecutionError) as info:
        a, b = node(None)
    assert isinstance(info.value.exception_node.data, TypeError)


def test_failed_operation_records_its_operands():
    x, zero = node(1, name="err_x"), node(0, name="err_zero")
    with pytest.raises(ExecutionError) as info:
        x / zero
    assert info.value.exception_node.parents == (x, zero)
    assert "division by zero" in str(info.value)


def test_hasattr_still_works():
    assert hasattr(node(1), "real") and not hasattr(node(1), "no_such_attribute")


def test_printing_a_node_inside_a_bundle_is_not_a_dependency(capsys):
    @bundle()
    def report(a):
        print(GLOBAL)
        return f"{a} of {GLOBAL}" + str(GLOBAL)

    out = report(node(1))
    assert out.data == "1 of 100100" and len(out.parents) == 1
    assert capsys.readouterr().out == "100\n"


# -- 4. async bundles ---------------------------------------------------------------------


@bundle()
async def slow_add(a, b):
    """Adds after a pause."""
    await asyncio.sleep(0)
    return a + b


@bundle()
async def async_fails(a):
    await asyncio.sleep(0)
    return a / 0


def test_async_bundle_resolves_to_a_message_node():
    a, b = node(1), node(2)
    out = asyncio.run(slow_add(a, b))
    assert isinstance(out, MessageNode) and out.data == 3 and out.parents == (a, b)
    with pytest.raises(ExecutionError) as info:
        asyncio.run(async_fails(node(1)))
    assert isinstance(info.value.exception_node.data, ZeroDivisionError)


def test_concurrent_awaits_keep_their_graphs_apart():
    first, second = node(10, name="async_first"), node(20, name="async_second")
    order = []

    async def scenario():
        a_started, b_started = asyncio.Event(), asyncio.Event()

        @bundle(allow_external_dependencies=True)
        async def reads_first(v):
            a_started.set()
            await b_started.wait()  # task B is now inside its own call
            order.append("a")
            return v + first.data

        @bundle(allow_external_dependencies=True)
        async def reads_second(v):
            await a_started.wait()
            b_started.set()
            await asyncio.sleep(0)
            order.append("b")
            return v + second.data

        return await asyncio.gather(reads_first(node(1)), reads_second(node(2)))

    a_out, b_out = asyncio.run(scenario())
    assert order == ["a", "b"]
    assert (a_out.data, b_out.data) == (11, 22)
    assert first in a_out.parents and second not in a_out.parents
    assert second in b_out.parents and first not in b_out.parents


# -- 5. copies -----------------------------------------------------------------------------


def test_deepcopy_of_an_operator_output_is_a_fresh_root():
    x = node([1, 2], name="copy_x", trainable=True)
    z = x + [3]
    z.backward("note")
    d = copy.deepcopy(z)
    assert type(d) is Node and d.parents == () and d.feedback == []
    assert d.data == [1, 2, 3] and d.data is not z.data


def test_copies_of_a_parameter_are_fresh_parameters():
    p = node({"k": [1]}, name="copy_p", trainable=True, constraint="keep k")
    p.backward("fb")
    d = copy.deepcopy(p)
    assert isinstance(d, ParameterNode) and d.trainable and d.constraint == "keep k"
    assert d.name == p.name and d.feedback == [] and d.data == p.data
    assert d.data is not p.data and d.data["k"] is not p.data["k"]
    s = copy.copy(p)
    assert s is not p and s.data is p.data
    loaded = pickle.loads(pickle.dumps(p))
    assert loaded is not p and loaded.data == p.data and loaded.constraint == "keep k"
    assert loaded.name == "copy_p" and loaded.feedback == []


def test_pickle_keeps_history_and_clone_detach_are_as_documented():
    a = node(2, name="pk_a")
    y = a * 3
    loaded = pickle.loads(pickle.dumps(y))
    assert loaded.data == 6 and loaded.parents[0].data == 2 and loaded.parents[0] is not a
    c = y.clone()
    assert c.data == 6 and c.parents == (y,) and c.op.name == "clone"
    lst = node([1])
    assert lst.clone().data is not lst.data
    d = y.detach()
    assert d.parents == () and d.data == 6 and not d.trainable


# -- 6. trainable methods expose their parameter ---------------------------------------------


def test_trainable_methods_expose_their_parameter():
    one, two = Helper(), Helper()
    assert one.act.parameter is not None and one.act.parameter is not two.act.parameter
    assert any(p is one.act.parameter for p in one.parameters())
    assert one.act.parameter is one.act.parameter  # the same object on every access
    assert shout.parameters() == [shout.parameter] and inc.parameters() == []
    assert one.polish.parameter is None and one.polish.parameters() == []


# -- 8. the reference's everyday spellings --------------------------------------------------


def test_backward_visualize_returns_a_digraph():
    graphviz = pytest.importorskip("graphviz")
    x = node(2, name="viz_x", trainable=True)
    y = x * 3
    g = y.backward("larger", visualize=True)
    assert isinstance(g, graphviz.Digraph)
    assert "viz_x" in g.source and f"viz_x -> {y.name}" in g.source
    assert x.feedback[0].text == "larger"  # the feedback was still sent
    assert y.backward("again", retain_graph=True).text == "again"


def test_eq_and_neq_are_traced():
    a, b = node(1), node(2)
    e, n = a.eq(b), a.neq(b)
    assert (e.data, n.data) == (False, True)
    assert e.parents == (a, b) and e.op.name == "eq" and n.op.name == "ne"


def test_parameters_dict_names_relative_to_the_module():
    agent = Helper()
    d = agent.parameters_dict()
    assert d["style"] is agent.style and d["act"] is agent.act.parameter
    assert list(d.values()) == agent.parameters()


def test_prompt_shows_containers_of_nodes_by_name():
    from trace_nb.optim.lines import code_line

    @bundle()
    def total(xs):
        return sum(xs)

    a = node(1, name="cl_a", trainable=True)
    b = node(2, name="cl_b")
    out = total([a, b])
    assert code_line(out) == f"{out.name} = total(xs=[cl_a, cl_b])"


def test_an_operator_error_in_a_trace_cell_names_the_cell_line():
    from conftest import ipython_shell

    import trace_nb

    ip = ipython_shell()
    ip.run_cell_magic(
        "trace",
        "--name sem_op_error --param ratio --no-panel",
        "ratio = 1.0\nscaled = ratio * 2\nz = scaled / (ratio - 1.0)\nz",
    )
    exc = trace_nb.session("sem_op_error").exception
    assert exc is not None and isinstance(exc.data, ZeroDivisionError)
    assert exc.describe().endswith("at line 3: z = scaled / (ratio - 1.0)")


def test_execution_error_survives_pickling():
    with pytest.raises(ExecutionError) as info:
        node(1) / node(0)
    loaded = pickle.loads(pickle.dumps(info.value))
    assert isinstance(loaded, ExecutionError) and isinstance(loaded, ZeroDivisionError)
    assert loaded.exception_node.info["type"] == "ZeroDivisionError"
    assert str(loaded) == "ZeroDivisionError: division by zero"
