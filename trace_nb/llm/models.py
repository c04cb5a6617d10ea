"""Which model to use when none is named: the one rule for ``LLM()``, ``%%trace`` and tutorials.

1. A model named in code (``LLM(model=...)``) or in ``TRACE_NB_MODEL`` is used as it is.
2. Otherwise the server is asked what it serves (``GET {base_url}/models``). Exactly one
   model: that one is used, and :class:`~trace_nb.llm.LLM` says so once. None or several:
   :class:`~trace_nb.llm.errors.LLMConfigError`, naming the ways to choose one.

OpenAI's own endpoint serves dozens of models, so it is not asked: with only
``OPENAI_API_KEY`` set, the error comes at once, without a network call.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request

from .errors import LLMConfigError, scrub_secret

__all__ = [
    "HOW_TO_NAME_A_MODEL",
    "announce_once",
    "discover_model",
    "remember_announced",
    "served_models",
]

OPENAI_BASE_URL = "https://api.openai.com/v1"
MAX_LISTED = 12  # models named in the "several" error; the rest are counted

HOW_TO_NAME_A_MODEL = (
    "Name the model in one of these ways:\n"
    "  * the environment variable TRACE_NB_MODEL=<model> (read by LLM(), %%trace and the "
    "tutorials)\n"
    "  * in code: LLM(model='<model>'), e.g. LLM(model='gpt-4o-mini') or\n"
    "    LLM(model='llama3.1', base_url='http://localhost:11434/v1')\n"
    "  * for one %%trace cell: llm = LLM(model='<model>'), then %%trace --llm llm"
)

_told: set[tuple[str, str]] = set()
_told_lock = threading.Lock()


def served_models(base_url: str, api_key: str | None = None, timeout: float = 10.0) -> list[str]:
    """The model ids ``GET {base_url}/models`` lists, in the server's order.

    Raises
    ------
    LLMConfigError
        The server could not be reached, or answered something that is not a model list.
    """
    url = base_url.rstrip("/") + "/models"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(4 * 1024 * 1024)
    except urllib.error.HTTPError as e:
        problem = f"it answered HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        problem = f"it could not be reached ({type(e).__name__}: {reason})"
    else:
        try:
            data = json.loads(body)
            return [str(m["id"]) for m in data["data"]]
        except (ValueError, KeyError, TypeError):
            problem = "its answer is not a model list"
    raise LLMConfigError(
        scrub_secret(
            f"No model named, and the server at {base_url} could not say which models it "
            f"serves: GET {url}: {problem}.\n{HOW_TO_NAME_A_MODEL}",
            api_key,
        )
    )


def discover_model(base_url: str, api_key: str | None = None, timeout: float = 10.0) -> str:
    """The model to use at ``base_url`` when none is named: the only one it serves.

    Raises
    ------
    LLMConfigError
        No base URL beyond OpenAI's own (which serves many), a server that cannot be asked,
        or one that serves no model or several; the message says how to name one.
    """
    base_url = base_url.rstrip("/")
    if base_url == OPENAI_BASE_URL:
        raise LLMConfigError(
            "No model named. OpenAI serves many models, so trace_nb does not pick one for "
            f"you.\n{HOW_TO_NAME_A_MODEL}"
        )
    models = served_models(base_url, api_key, timeout)
    if len(models) == 1:
        return models[0]
    if not models:
        found = f"the server at {base_url} lists no model (GET {base_url}/models is empty)"
    else:
        shown = ", ".join(models[:MAX_LISTED])
        more = f" and {len(models) - MAX_LISTED} more" if len(models) > MAX_LISTED else ""
        found = f"the server at {base_url} serves {len(models)} models ({shown}{more})"
    raise LLMConfigError(
        scrub_secret(
            f"No model named, and {found}: which one to use?\n{HOW_TO_NAME_A_MODEL}", api_key
        )
    )


def announce_once(model: str, base_url: str) -> bool:
    """Say on stderr, once per process for each server and model, which model was chosen.

    Returns True when the line was written now, False when it had been written before.
    """
    with _told_lock:
        if (base_url, model) in _told:
            return False
        _told.add((base_url, model))
    print(
        f"trace_nb: using model {model!r}, the only model the server at {base_url} serves "
        "(set TRACE_NB_MODEL or pass LLM(model=...) to choose another).",
        file=sys.stderr,
    )
    return True


def remember_announced(model: str, base_url: str) -> None:
    """Count the choice as said (for callers that say it in their own words)."""
    with _told_lock:
        _told.add((base_url, model))
