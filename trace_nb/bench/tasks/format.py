"""Format/constraint prompts: a grader's textual feedback is the only guide.

The trained parameter is a prompt template (``{topic}`` marks where the topic goes) sent
to the student model (the same LLM endpoint). A seeded set of 3-4 hidden requirements
(lowercase, a word limit, a keyword, an opening word, a closing phrase, no commas) grades
the reply; the grader says which requirements fail, in words, never the fix itself. Train
on three topics, score on three held-out topics: the mean fraction of requirements met.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...graph import bundle, node
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

TOPICS = [
    "a bicycle",
    "a lighthouse",
    "green tea",
    "a library",
    "a thunderstorm",
    "a violin",
    "a vegetable garden",
    "a mountain hut",
    "a teapot",
    "a city park",
    "a sailboat",
    "honey",
]
KEYWORDS = ["sturdy", "quiet", "bright", "gentle", "simple", "classic"]
OPENERS = ["imagine", "consider", "picture", "behold"]
CLOSERS = ["enjoy the day", "see you soon", "that is all", "thanks for reading"]
INITIAL_TEMPLATE = "Write a short description of {topic}."
STUDENT_MAX_TOKENS = 200


@dataclass
class Requirement:
    key: str
    instruction: str  # what a prompt would say to get it (the offline student obeys it)
    check: Callable[[str], str | None]  # None when met, else the grader's complaint


def _requirements(rng: random.Random) -> list[Requirement]:
    limit = rng.choice([20, 25])
    keyword, opener, closer = rng.choice(KEYWORDS), rng.choice(OPENERS), rng.choice(CLOSERS)

    def lowercase(t: str) -> str | None:
        return None if t == t.lower() else "It must be written entirely in lowercase letters."

    def words(t: str) -> str | None:
        n = len(t.split())
        return None if n <= limit else f"It has {n} words; at most {limit} are allowed."

    def has_keyword(t: str) -> str | None:
        found = keyword in t.lower().replace(".", " ").replace(",", " ").split()
        return None if found else f"It must use the word '{keyword}'."

    def starts(t: str) -> str | None:
        first = (t.split() or [""])[0].strip(".,!").lower()
        return None if first == opener else f"Its first word must be '{opener}'."

    def ends(t: str) -> str | None:
        return (
            None
            if t.strip().rstrip(".!").endswith(closer)
            else f"It must end with the phrase '{closer}'."
        )

    def commas(t: str) -> str | None:
        return None if "," not in t else f"It contains {t.count(',')} comma(s); none are allowed."

    pool = [
        Requirement("lowercase", "Write everything in lowercase letters.", lowercase),
        Requirement("words", f"Use at most {limit} words.", words),
        Requirement("keyword", f"Include the word '{keyword}'.", has_keyword),
        Requirement("start", f"Start with the word '{opener}'.", starts),
        Requirement("end", f"End with the exact phrase '{closer}'.", ends),
        Requirement("commas", "Do not use any commas.", commas),
    ]
    return rng.sample(pool, rng.randint(3, 4))


def fill_topic(template: str, topic: str) -> str:
    """Put the topic into the prompt template where {topic} appears (or after it)."""
    return template.replace("{topic}", topic) if "{topic}" in template else f"{template}\n\n{topic}"


create_request = bundle()(fill_topic)


class FormatTask(TaskInstance):
    def __init__(self, seed: int):
        rng = random.Random(f"format-{seed}")
        self.name, self.seed = "format_constraints", seed
        self.requirements = _requirements(rng)
        topics = rng.sample(TOPICS, 6)
        self.train, self.test = topics[:3], topics[3:]
        self.template = node(INITIAL_TEMPLATE, trainable=True, name="prompt_template")
        self.objective = (
            "A language model writes a short text from the prompt template in #Variables "
            "({topic} is replaced by a topic). Change the template so that the texts meet every "
            "requirement the grader names in #Feedback, for any topic."
        )
        self.student = Student(STUDENT_MAX_TOKENS)
        self.ask_llm = self.student.ask

    def parameters(self) -> list:
        return [self.template]

    def grade(self, text: str) -> tuple[float, list[str]]:
        complaints = [c for r in self.requirements if (c := r.check(text)) is not None]
        return 1 - len(complaints) / len(self.requirements), complaints

    def train_step(self, step: int, llm: Any) -> None:
        self.student.llm = llm
        topic = self.train[step % len(self.train)]
        text = self.ask_llm(create_request(self.template, topic))
        score, complaints = self.grade(str(text.data))
        if complaints:
            text.backward("The grader rejected the text: " + " ".join(complaints), score=score)
        else:
            text.backward("The grader accepted the text: every requirement is met.", score=score)

    def score_examples(self, step: int, llm: Any) -> float:
        self.student.llm = llm
        topic = self.train[step % len(self.train)]
        return self.grade(self.student.reply(fill_topic(self.template.data, topic)))[0]

    def evaluate(self, llm: Any) -> Score:
        self.student.llm = llm
        scores = [
            self.grade(self.student.reply(fill_topic(self.template.data, t)))[0] for t in self.test
        ]
        return Score(sum(scores) / len(scores), all(s == 1 for s in scores))

    # -- offline oracle ------------------------------------------------------------------
    def _student(self, prompt: str) -> str:
        """Writes a fixed text about the topic and obeys the instructions the prompt contains."""
        topic = next((t for t in TOPICS if t in prompt), "the topic")
        asked = {r.key: r for r in self.requirements if r.instruction in prompt}
        body = (
            f"Here is {topic}, which many people enjoy. It is useful, reliable and well "
            f"made, and it comes with a friendly guide for beginners and experts alike."
        )
        if "commas" in asked:
            body = body.replace(",", "")
        head = [asked["start"].instruction.split("'")[1]] if "start" in asked else []
        tail = [asked["keyword"].instruction.split("'")[1]] if "keyword" in asked else []
        tail += asked["end"].instruction.split("'")[1].split() if "end" in asked else []
        words = body.split()
        if "words" in asked:
            limit = int(asked["words"].instruction.split()[3])
            words = words[: limit - len(head) - len(tail)]
        text = " ".join(head + words + tail)
        return text.lower() if "lowercase" in asked else text

    def oracle(self, request: dict) -> Any:
        """Student: see :meth:`_student`. Optimizer: adds the instruction for each complaint."""
        if is_student(request):
            return self._student(user_text(request))
        name = self.template.name
        values = current_values(request)
        if name not in values:
            return NO_VALUES
        feedback = feedback_of(request)
        template = values[name]
        added = [
            r.instruction
            for r in self.requirements
            if r.instruction not in template and _complained(r, feedback)
        ]
        if not added:
            return reply("The grader has no complaint I can act on.", {})
        return reply(
            "Add an instruction for each requirement the grader named.",
            {name: template + " " + " ".join(added)},
        )


def _complained(requirement: Requirement, feedback: str) -> bool:
    # The complaint texts start with fixed words per requirement.
    marks = {
        "lowercase": "lowercase",
        "words": "words; at most",
        "keyword": "must use the word",
        "start": "first word must be",
        "end": "must end with",
        "commas": "comma",
    }
    return marks[requirement.key] in feedback


def make(seed: int) -> FormatTask:
    return FormatTask(seed)
