"""Procedural BBH-style questions with exact answers (no downloads).

Each generator takes a ``random.Random`` and returns ``(question, answer)``; answers are
strings compared exactly after stripping.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_WORDS = (
    "apple banana cherry delta echo falcon garden harbor island jungle kettle lemon meadow "
    "nectar orbit pepper quartz river saddle timber umbrella valley walnut xenon yellow zephyr "
    "anchor bishop canyon dragon ember fossil glacier hollow ivory jasper kernel lantern marble "
    "nimbus oyster prism quiver raven sierra tundra urchin velvet willow yonder zenith"
).split()

_OBJECTS = {
    "musical instruments": ["piano", "flute", "violin", "trumpet", "drum", "clarinet"],
    "fruits": ["apple", "peach", "plum", "grape", "banana", "melon"],
    "vegetables": ["carrot", "cabbage", "onion", "potato", "lettuce", "yam"],
    "animals": ["goat", "rabbit", "snail", "duck", "cow", "frog"],
}


def _a(name: str) -> str:
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _plural(name: str) -> str:
    return name + ("es" if name.endswith(("ch", "sh", "o")) else "s")


def word_sorting(rng: random.Random) -> tuple[str, str]:
    words = rng.sample(_WORDS, rng.randint(4, 8))
    question = "Sort the following words alphabetically: List: " + " ".join(words)
    return question, " ".join(sorted(words))


def _bool_expr(rng: random.Random, depth: int) -> str:
    if depth == 0:
        return rng.choice(["True", "False"])
    kind = rng.choice(["and", "or", "not", "paren"])
    if kind == "not":
        return "not " + _bool_expr(rng, depth - 1)
    if kind == "paren":
        return f"( {_bool_expr(rng, depth - 1)} )"
    return f"{_bool_expr(rng, depth - 1)} {kind} {_bool_expr(rng, depth - 1)}"


def boolean_expressions(rng: random.Random) -> tuple[str, str]:
    expr = _bool_expr(rng, rng.randint(2, 3))
    return f"{expr} is", str(eval(expr, {"__builtins__": {}}))  # only True/False/and/or/not


def _arith(rng: random.Random) -> str:
    a, b = rng.randint(-9, 9), rng.randint(-9, 9)
    return f"({a} {rng.choice('+-*')} {b})"


def multistep_arithmetic(rng: random.Random) -> tuple[str, str]:
    left, right = _arith(rng), _arith(rng)
    expr = f"({left} {rng.choice('+-*')} {right})"
    return f"{expr} =", str(eval(expr, {"__builtins__": {}}))  # digits and + - * only


def object_counting(rng: random.Random) -> tuple[str, str]:
    category = rng.choice(sorted(_OBJECTS))
    items, total = [], 0
    for name in rng.sample(_OBJECTS[category], rng.randint(2, 4)):
        count = rng.randint(1, 3)
        total += count
        items.append(f"{('two', 'three')[count - 2]} {_plural(name)}" if count > 1 else _a(name))
    distractors = rng.sample(_OBJECTS[rng.choice([c for c in _OBJECTS if c != category])], 2)
    items += [_a(d) for d in distractors]
    rng.shuffle(items)
    listing = ", ".join(items[:-1]) + ", and " + items[-1]
    return f"I have {listing}. How many {category} do I have?", str(total)


_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def dyck_languages(rng: random.Random) -> tuple[str, str]:
    """A prefix of a well-nested bracket sequence; the answer closes what is still open."""
    tokens: list[str] = []
    stack: list[str] = []
    length = rng.randint(4, 10)
    while len(tokens) < length or not stack:
        if stack and (len(tokens) >= length or rng.random() < 0.4):
            tokens.append(_PAIRS[stack.pop()])
            if len(tokens) >= length and stack:
                break
        else:
            opener = rng.choice(sorted(_PAIRS))
            stack.append(opener)
            tokens.append(opener)
    question = (
        "Complete the rest of the sequence, making sure that the parentheses are closed "
        "properly. Input: " + " ".join(tokens)
    )
    return question, " ".join(_PAIRS[o] for o in reversed(stack))


GENERATORS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "word_sorting": word_sorting,
    "boolean_expressions": boolean_expressions,
    "multistep_arithmetic": multistep_arithmetic,
    "object_counting": object_counting,
    "dyck_languages": dyck_languages,
}
