"""LLM access for trace_nb: one chat client with retries, caching and cost accounting.

``import trace_nb.llm`` is cheap: the ``openai`` package is only imported
when the first chat call is made.

Examples
--------
>>> from trace_nb.llm import LLM
>>> llm = LLM(model="gpt-4o-mini")            # key from OPENAI_API_KEY  # doctest: +SKIP
>>> llm.chat([{"role": "user", "content": "Say hi as JSON"}], json=True).text  # doctest: +SKIP
"""

from __future__ import annotations

from .client import LLM, ChatReply
from .errors import LLMConfigError, LLMError, LLMResponseError, LLMTimeoutError
from .usage import DEFAULT_PRICES, CallUsage, Usage, UsageTotals

__all__ = [
    "LLM",
    "ChatReply",
    "CallUsage",
    "Usage",
    "UsageTotals",
    "LLMError",
    "LLMConfigError",
    "LLMResponseError",
    "LLMTimeoutError",
    "DEFAULT_PRICES",
]
