"""Prompt text for the optimizers, kept as data in one place."""

from __future__ import annotations

SECTIONS = (
    "Instruction",
    "Code",
    "Documentation",
    "Variables",
    "Constraints",
    "Inputs",
    "Others",
    "Outputs",
    "Feedback",
)

OPTOPRIME_SYSTEM = """\
You improve a program by changing the values of its variables.

You are shown a problem in sections:
#Instruction: what to do.
#Code: the operations that ran, one per line, as `result = operation(argument=name, ...)`,
in the order they ran. Each name refers to a value listed in another section.
#Documentation: what each operation in #Code does.
#Variables: the values you may change, written `(type) name=value`. Code variables are shown
as their source code.
#Constraints: rules each variable's value must follow.
#Inputs: fixed values the code read; you cannot change them.
#Others: intermediate values computed along the way.
#Outputs: the values the code produced.
#Feedback: what the user thinks of the outputs.

Work out how the variables led to the outputs, then choose new values that answer the
feedback. Answer with one JSON object and nothing else:
{"reasoning": "<how the variables affect the outputs and what to change>",
 "answer": "<leave empty unless the instruction asks a question>",
 "suggestion": {"<variable name>": <new value>, ...}}
Use the variable names exactly as written in #Variables. Only include variables you want to
change. A new value must have the variable's type; for a code variable give the complete
new source of the function, keeping its name and arguments."""

OPTOPRIME_INSTRUCTION = (
    "Change the values in #Variables to improve #Outputs according to #Feedback."
)

MEMORY_HEADER = "Earlier values of the variables and the feedback they received (oldest first):"

OPRO_SYSTEM = """\
You optimize the values of some variables. You see the objective, the current values, and
a history of earlier values with the feedback (and score, when there is one) they received.
Propose new values that do better. Answer with one JSON object and nothing else:
{"reasoning": "<what the history shows and what to try next>",
 "suggestion": {"<variable name>": <new value>, ...}}
Use the variable names exactly as given. A new value must have the variable's type."""

OPRO_DEFAULT_OBJECTIVE = "Find values of the variables that get the best feedback."


def json_type(value: object, is_code: bool = False) -> dict:
    """The JSON-schema type of a parameter's value (code is a string)."""
    if is_code or isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, list | tuple):
        return {"type": "array"}
    if isinstance(value, dict):
        return {"type": "object"}
    return {}


def reply_schema(types: dict[str, dict]) -> dict:
    """JSON schema of the reply, for servers that can constrain their output to it.

    ``types`` maps each variable name to its schema (see :func:`json_type`), so a server
    with constrained decoding cannot answer a number with an object.
    """
    return {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "answer": {"type": "string"},
            "suggestion": {"type": "object", "properties": types},
        },
        "required": ["reasoning", "suggestion"],
    }


# Shown after OPTOPRIME_SYSTEM when OptoPrime(include_example=True): one worked problem.
OPTOPRIME_EXAMPLE = """\
Here is an example problem and a good answer.

Example problem:
#Instruction
Change the values in #Variables to improve #Outputs according to #Feedback.

#Code
sub_1 = sub(a=count, b=3)
mul_1 = mul(a=sub_1, b=2)

#Documentation
[sub] a - b: difference.
[mul] a * b: product, or repetition of a string/list.

#Variables
(int) count=5

#Constraints
count: a whole number

#Inputs


#Others
(int) sub_1=2

#Outputs
(int) mul_1=4

#Feedback
The output should be 10.

Example answer:
{"reasoning": "mul_1 = (count - 3) * 2. For mul_1 to be 10, count - 3 must be 5, so count must be 8.",
 "answer": "",
 "suggestion": {"count": 8}}"""
