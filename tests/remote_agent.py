"""A small traced agent for the remote-engine tests: two trained parameters, a parameter that
is not trained, shared constant and operator nodes made before any run, bundles calling
bundles, nodes made in threads the workflow starts, an LLM call per example, and examples
that raise, fail inside an operator (one with an exception that pickles but does not
unpickle), or kill their worker process."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from trace_nb import bundle, node
from trace_nb.llm import LLM

SECRET = "sk-remote-test-0123456789abcdef"


class QuotaError(Exception):
    """Pickles, but cannot be unpickled: its __init__ takes two arguments."""

    def __init__(self, who: str, limit: int):
        super().__init__(f"{who} is over quota {limit}")


def reply_for(request: dict) -> str:
    """The loopback server's answer: the question echoed in a sentence."""
    question = request["messages"][-1]["content"]
    if question == "boom":
        return "boom boom"
    return f"The Answer Is {question} indeed"


def build(base_url: str, latency: float = 0.0, key: str | None = None):
    """(trained parameters, workflow, feedback, the workflow's LLM)."""
    llm = LLM(model="fake-model", base_url=base_url, cache=False, backoff=0.01, api_key=key)
    prompt = node(
        "Answer with the word asked for.", name="prompt", trainable=True, constraint="one sentence"
    )
    style = node("lower", name="style", trainable=True, description="lower or upper")
    limit = node(3, name="limit", trainable=True)  # a parameter nobody trains here
    suffix = node("!", name="suffix")  # made before any run: shared by every example

    @bundle()
    def shorten(text, n):
        """Keep the first n words."""
        return " ".join(text.split()[:n])

    @bundle()
    def ask(instruction, question):
        """Ask the model the question."""
        if latency:
            time.sleep(latency)
        return llm.chat(
            [{"role": "system", "content": instruction}, {"role": "user", "content": question}]
        ).text

    @bundle()
    def shout(text):
        """Upper-case the text."""
        return text.upper()

    @bundle()
    def yell(text):
        """Upper-case the text, another way (same value as shout: only the operator differs)."""
        return text.upper()

    @bundle()
    def tag(text):
        """Wrap the text in brackets."""
        if text == "quota":
            raise QuotaError("alice", 3)
        return f"[{text}]"

    @bundle()
    def keep(text, *context):
        """The text; the context is what it was checked against."""
        return text

    word = node("ok", name="word")
    banners = [shout(word), yell(word)]  # operator nodes made before any run: shared

    @bundle()
    def polish(text, how, n):
        """Change the case, then keep n words (a bundle calling a bundle)."""
        if "boom" in text:
            raise RuntimeError("the answer exploded")
        cased = text.lower() if how == "lower" else text.upper()
        return shorten(cased, n)

    def workflow(example: dict):
        if example.get("crash"):
            os._exit(3)  # the worker process dies
        if example.get("raise"):
            raise ValueError(f"cannot handle {example['q']!r}")
        question = node(example["q"], name="question")
        answer = ask(prompt, question)
        words = polish(answer, style, limit)
        # Nodes made in threads the workflow starts belong to this run, not to the payload.
        with ThreadPoolExecutor(2) as pool:
            tags = list(pool.map(lambda t: tag(node(t)), example.get("tags", ["a", "b"])))
        banner = banners[example.get("banner", 0)]
        return keep(words + suffix, *tags, banner)

    def feedback(example: dict, output: str):
        want = example["want"]
        return (1.0 if output == want else 0.0), f"expected {want!r}, got {output!r}"

    return [prompt, style], workflow, feedback, llm


def examples(n: int) -> list[dict]:
    return [{"q": f"w{i}", "want": "the answer is!", "banner": i % 2} for i in range(n)]
