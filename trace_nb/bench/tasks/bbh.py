"""BBH-style tasks: a prompt template and an answer-extraction function, both trained.

As in the paper's Big-Bench Hard experiment, the program is
``extract_answer(ask_llm(create_prompt(prompt_template, question)))``: the optimizer may
rewrite the prompt template (a string) and the source of ``extract_answer`` (code). The
"student model" that answers the prompts is the same LLM endpoint as the optimizer. Each
step trains on two examples of the train split; the score is accuracy on the held-out
split (exact match). Questions come from :mod:`.bbh_data` (seeded, exact answers).
"""

from __future__ import annotations

import random
import re
from typing import Any

from ...graph import ExecutionError, bundle, node
from .base import (
    NO_VALUES,
    Score,
    Student,
    TaskInstance,
    current_values,
    feedback_of,
    is_student,
    reply,
    user_text,
)
from .bbh_data import GENERATORS

N_TRAIN, N_TEST, BATCH = 6, 6, 2
STUDENT_MAX_TOKENS = 400
INITIAL_TEMPLATE = "Answer the following question.\n\n{question}"
FORMAT_HINT = (
    "\n\nThink step by step, then give the final answer on its own last line as 'Answer: <answer>'."
)
_re = re  # kept in this module's namespace: the extraction code runs in it


def fill(template: str, question: str) -> str:
    """Put the question into the prompt template where {question} appears (or after it)."""
    if "{question}" in template:
        return template.replace("{question}", question)
    return f"{template}\n\n{question}"


def extract_answer(response):
    """Return the final answer contained in the model's response."""
    return response.strip().split("\n")[-1]


FIXED_EXTRACT = '''def extract_answer(response):
    """Return the final answer contained in the model's response."""
    import re

    found = re.findall(r"Answer:\\s*(.+)", response)
    return found[-1].strip() if found else response.strip().split("\\n")[-1]
'''

create_prompt = bundle()(fill)


class BBHTask(TaskInstance):
    """One BBH-style task: seeded train and held-out questions, trained template and extractor."""

    def __init__(self, kind: str, seed: int):
        rng = random.Random(f"bbh-{kind}-{seed}")
        self.name, self.seed, self.kind = f"bbh_{kind}", seed, kind
        examples: dict[str, str] = {}
        while len(examples) < N_TRAIN + N_TEST:
            question, answer = GENERATORS[kind](rng)
            examples.setdefault(question, answer)
        items = list(examples.items())
        self.train, self.test = items[:N_TRAIN], items[N_TRAIN:]
        self.answers = examples
        self.template = node(INITIAL_TEMPLATE, trainable=True, name="prompt_template")
        self.extract = bundle(trainable=True)(extract_answer)
        self.objective = (
            "The program asks a language model a question and extracts its answer. Change the "
            "prompt template and the answer extraction code in #Variables so that the extracted "
            "answers match the expected answers given in #Feedback."
        )
        self.student = Student(STUDENT_MAX_TOKENS)
        self.ask_llm = self.student.ask

    def parameters(self) -> list:
        return [self.template, *self.extract.parameters()]

    def train_step(self, step: int, llm: Any) -> None:
        self.student.llm = llm
        for k in range(BATCH):
            question, answer = self.train[(step * BATCH + k) % len(self.train)]
            try:
                got = self.extract(self.ask_llm(create_prompt(self.template, question)))
            except ExecutionError as e:
                e.exception_node.backward(
                    f"The answer extraction failed: {e}. The expected answer was {answer!r}."
                )
                continue
            if str(got.data).strip() == answer:
                got.backward(f"Correct: the extracted answer {answer!r} is right.")
            else:
                got.backward(
                    f"Wrong: the extracted answer is {str(got.data)[:200]!r}, but the "
                    f"expected answer is {answer!r}."
                )

    def answer(self, question: str, llm: Any) -> str | None:
        """The program's answer with the current parameters (untraced), or None on an error."""
        self.student.llm = llm
        try:
            return str(
                self.extract.function(self.student.reply(fill(self.template.data, question)))
            ).strip()
        except Exception:  # noqa: BLE001 - broken extraction code scores as a wrong answer
            return None

    def score_examples(self, step: int, llm: Any) -> float:
        batch = [self.train[(step * BATCH + k) % len(self.train)] for k in range(BATCH)]
        return sum(self.answer(q, llm) == a for q, a in batch) / len(batch)

    def evaluate(self, llm: Any) -> Score:
        right = sum(self.answer(q, llm) == a for q, a in self.test)
        return Score(right / len(self.test), right == len(self.test), {"correct": right})

    # -- offline oracle ------------------------------------------------------------------
    def oracle(self, request: dict) -> Any:
        """Student: answers right, in the 'Answer: X' format only when the prompt asks for it.
        Optimizer: adds that format request to the template and fixes the extraction code."""
        if is_student(request):
            prompt = user_text(request)
            gold = next((a for q, a in self.answers.items() if q in prompt), "I do not know")
            if "Answer:" in prompt:
                return f"Let me work through it step by step.\nAnswer: {gold}"
            return f"Let me work through it step by step.\nI believe it is {gold}."
        values = current_values(request)
        template_name = self.template.name
        code_name = self.extract.parameter.name
        if template_name not in values or code_name not in values:
            return NO_VALUES
        if "Wrong" not in feedback_of(request) and "failed" not in feedback_of(request):
            return reply("Every answer was right.", {})
        suggestion: dict[str, Any] = {}
        if "Answer:" not in values[template_name]:
            suggestion[template_name] = values[template_name] + FORMAT_HINT
        if "Answer:" not in values[code_name]:
            suggestion[code_name] = FIXED_EXTRACT
        return reply(
            "Ask for a marked final answer and extract what follows the marker.", suggestion
        )


def make(kind: str, seed: int) -> BBHTask:
    return BBHTask(kind, seed)
