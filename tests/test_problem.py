"""The problem instance: values are cut only to fit the character budget, and #Code labels
variadic arguments as the function receives them."""

from __future__ import annotations

from trace_nb import bundle, node
from trace_nb.optim.lines import ARG_SHARE, VALUE_SHARE
from trace_nb.optim.problem import build_problem


@bundle()
def combine(template, filler):
    """Put the filler into the template."""
    return template.replace("{}", filler)


def _problem(budget, size=5_000, constant_size=100):
    template = node("{} and more", name="template", trainable=True)
    filler = node("y" * size, name="filler")
    out = combine(template, filler)
    joined = out + "z" * constant_size  # an inline constant in #Code
    joined.backward("too long")
    return build_problem([template], budget=budget)


def test_nothing_is_cut_without_a_budget():
    problem = _problem(None, size=50_000, constant_size=300)
    assert "y" * 50_000 in problem.inputs and "y" * 50_000 in problem.others
    assert "y" * 50_000 in problem.outputs
    assert "'" + "z" * 300 + "'" in problem.code
    assert "more characters" not in problem.render()


def test_nothing_is_cut_when_the_problem_fits_its_budget():
    problem = _problem(30_000, size=5_000, constant_size=100)  # 2,000/60 were cut before
    assert "y" * 5_000 in problem.inputs and "y" * 5_000 in problem.outputs
    assert "'" + "z" * 100 + "'" in problem.code
    assert "more characters" not in problem.render()


def test_values_and_constants_are_cut_in_proportion_to_a_budget_they_exceed():
    budget = 6_000
    problem = _problem(budget, size=20_000, constant_size=200)
    value = problem.inputs.split("=", 1)[1]
    assert value.endswith("more characters]") and len(value) == budget // VALUE_SHARE + len(
        f" [{20_000 - budget // VALUE_SHARE + 1} more characters]"
    )
    assert "z" * 200 not in problem.code
    assert "z" * (budget // ARG_SHARE - 2) in problem.code  # the quote counts
    assert len(problem.render()) < budget


@bundle()
def total(*values):
    """Sum of the values."""
    return sum(values)


@bundle()
def join_all(sep, *parts, upper=False, **options):
    """Join the parts with sep."""
    text = sep.join(parts)
    return text.upper() if upper else text


def test_variadic_arguments_are_labelled_as_the_tuple_the_function_receives():
    w0 = node(1.0, name="w0", trainable=True)
    w1 = node(2.0, name="w1", trainable=True)
    w2 = node(4.0, name="w2", trainable=True)
    out = total(w0, w1, w2)
    out.backward("make it 10")
    code = build_problem([w0, w1, w2]).code
    assert code.endswith("= total(values=(w0, w1, w2))"), code

    sep = node("-", name="sep", trainable=True)
    word = node("b", name="word")
    out = join_all(sep, "a", word, upper=True, tag=3)
    out.backward("use a space")
    code = build_problem([sep]).code
    assert code.endswith("= join_all(sep=sep, parts=('a', word), upper=True, tag=3)"), code

    one = total(w0)
    one.backward("more")
    assert build_problem([w0]).code.endswith("= total(values=(w0,))")


def test_an_operator_whose_argument_labels_are_variable_names_is_written_positionally():
    a = node(2.0, name="a", trainable=True)
    b = node(5.0, name="b", trainable=True)
    out = (b - a) * 3
    out.backward("larger")
    code = build_problem([a, b]).code.splitlines()
    assert code == ["sub_1 = sub(b, a)", "mul_1 = mul(sub_1, 3)"]  # not sub(a=b, b=a)
    x = node(3.0, name="x", trainable=True)
    negated = -x
    negated.backward("ok")
    assert build_problem([x]).code == "neg_1 = neg(x)"  # not neg(x=x)


def test_operators_keep_their_labels_when_nothing_clashes():
    w = node(2.0, name="w", trainable=True)
    out = (w - 1.0) * 3
    out.backward("larger")
    assert build_problem([w]).code.splitlines() == [
        "sub_1 = sub(a=w, b=1.0)",
        "mul_1 = mul(a=sub_1, b=3)",
    ]


def test_functions_keep_their_argument_names():
    template = node("{}!", name="template", trainable=True)
    out = combine(template, "hi")
    out.backward("ok")
    assert build_problem([template]).code == "combine_1 = combine(template=template, filler='hi')"
