"""LLM usage: the one :class:`Usage` amount, call records, running totals, the price table.

Every :meth:`trace_nb.llm.LLM.chat` call, cached or not, produces one
:class:`CallUsage` (a :class:`Usage` of one call, with its latency and model); the
client's :class:`UsageTotals` sums them. Totals are updated under a lock because
optimizers may fan calls out to worker threads. Training, remote workers and the
benchmark add :class:`Usage` values with ``+``.
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "CHARS_PER_TOKEN",
    "estimate_tokens",
    "Usage",
    "CallUsage",
    "UsageTotals",
    "DEFAULT_PRICES",
    "lookup_price",
    "compute_cost",
    "merge_prices",
    "non_negative",
    "collect_usage",
    "report_usage",
]

# List prices in USD per 1M tokens: (input, output). These are OpenAI's
# public list prices at the time of writing and go stale; override them
# with ``LLM(prices={"model": (in_usd, out_usd)})`` for your own contract,
# batch discounts, or a local model (which usually costs (0.0, 0.0)).
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
}


#: The usual rule of thumb for English text; used wherever a token count is guessed.
CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    """Tokens in ``chars`` characters of text, estimated (never negative)."""
    return math.ceil(max(chars, 0) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Usage:
    """Calls, tokens and cost (USD) spent, or estimated to be spent: the one usage amount.

    One chat call's (:class:`CallUsage` is one), a client's running totals
    (:meth:`UsageTotals.total`), a training run's and a remote worker's, a benchmark run's:
    all are this type, added with ``+``.

    Attributes
    ----------
    calls
        Chat calls, cached ones included.
    prompt_tokens, completion_tokens
        Token counts (cached calls add their stored counts, so totals describe the work
        represented, while ``cost`` shows spend).
    cost
        USD, from the price table (0.0 for cached replies and unknown prices).
    cached_calls
        Of ``calls``, those answered from a response cache.
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached_calls: int = 0

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.calls + other.calls,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost + other.cost,
            self.cached_calls + other.cached_calls,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.calls - other.calls,
            self.prompt_tokens - other.prompt_tokens,
            self.completion_tokens - other.completion_tokens,
            self.cost - other.cost,
            self.cached_calls - other.cached_calls,
        )

    def scaled(self, factor: float) -> Usage:
        """This usage times ``factor`` (counts rounded up)."""
        return Usage(
            math.ceil(self.calls * factor),
            math.ceil(self.prompt_tokens * factor),
            math.ceil(self.completion_tokens * factor),
            self.cost * factor,
            math.ceil(self.cached_calls * factor),
        )

    def amount(self) -> Usage:
        """Just the amounts (a :class:`CallUsage`'s call details dropped)."""
        return Usage(
            self.calls, self.prompt_tokens, self.completion_tokens, self.cost, self.cached_calls
        )

    def to_dict(self) -> dict[str, Any]:
        """``calls``, ``prompt_tokens``, ``completion_tokens``, ``cost``, ``cached_calls``
        and ``tokens``: plain JSON (checkpoints, remote results, history rows)."""
        return {**asdict(self.amount()), "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Usage | None) -> Usage:
        """Usage from a dict such as :meth:`to_dict` gives (a checkpoint's, a worker's).

        Unknown keys are ignored and counts that are not non-negative finite numbers read
        as 0, so a damaged file cannot make spending negative or crash a run.
        """
        if isinstance(data, Usage):  # already one (a training run's RunUsage, say)
            return data.amount()
        data = data if isinstance(data, Mapping) else {}
        return Usage(
            non_negative(data.get("calls")),
            non_negative(data.get("prompt_tokens")),
            non_negative(data.get("completion_tokens")),
            non_negative(data.get("cost"), float),
            non_negative(data.get("cached_calls")),
        )


def non_negative(value: Any, kind: type = int) -> Any:
    """A non-negative finite number of ``kind``, or 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return kind(0)
    if not math.isfinite(value) or value < 0:
        return kind(0)
    return kind(value)


@dataclass(frozen=True)
class CallUsage(Usage):
    """One chat call's :class:`Usage` (``calls == 1``) and how the call went.

    Attributes
    ----------
    prompt_tokens, completion_tokens
        Token counts reported by the server (0 when it reports none).
    latency_s
        Wall time of the whole ``chat()`` call, retries included.
    cost
        USD cost from the price table; 0.0 for cached replies and for
        models without a known price.
    cost_known
        False when the model has no price entry, so ``cost`` is a
        placeholder rather than a real zero.
    cached
        True when the reply came from the response cache (no request sent).
    model
        Model name used for the call.
    """

    calls: int = 1
    latency_s: float = 0.0
    cost_known: bool = True
    cached: bool = False
    model: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cached_calls", int(self.cached))


class UsageTotals:
    """Running totals over all calls of one :class:`~trace_nb.llm.LLM` (thread-safe).

    The amounts are one :class:`Usage` (:meth:`total`); ``calls``, ``cached_calls``,
    ``prompt_tokens``, ``completion_tokens`` and ``cost`` read it. ``records`` keeps
    every :class:`CallUsage`, in completion order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = Usage()
        self.records: list[CallUsage] = []

    def __getstate__(self) -> dict[str, Any]:  # pickle and deepcopy: the lock stays here
        with self._lock:
            return {"total": self._total, "records": list(self.records)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self.records = list(state.get("records", ()))
        total = state.get("total")
        # Pickles made before Usage held the amounts kept them as fields.
        self._total = total if isinstance(total, Usage) else Usage.from_dict(state)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UsageTotals):
            return NotImplemented
        return self.total() == other.total() and self.records == other.records

    def __repr__(self) -> str:
        return f"UsageTotals({self.total()!r}, {len(self.records)} records)"

    def add(self, record: CallUsage) -> None:
        """Add one call's usage to the totals (thread-safe)."""
        with self._lock:
            self._total = self._total + record
            self.records.append(record)

    def total(self) -> Usage:
        """The amounts so far, as one consistent :class:`Usage`."""
        return self._total  # replaced whole under the lock, so never half-updated

    @property
    def calls(self) -> int:
        return self._total.calls

    @property
    def cached_calls(self) -> int:
        return self._total.cached_calls

    @property
    def prompt_tokens(self) -> int:
        return self._total.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self._total.completion_tokens

    @property
    def cost(self) -> float:
        return self._total.cost

    @property
    def cost_known(self) -> bool:
        """True when every non-cached call had a known price."""
        with self._lock:
            return all(r.cost_known or r.cached for r in self.records)

    def reset(self) -> None:
        """Zero all totals and drop the records."""
        with self._lock:
            self._total = Usage()
            self.records = []

    def as_dict(self) -> dict[str, Any]:
        """Return a consistent JSON-friendly snapshot of the totals."""
        with self._lock:
            records = list(self.records)
            total = self._total
        out: dict[str, Any] = {
            "calls": total.calls,
            "cached_calls": total.cached_calls,
            "prompt_tokens": total.prompt_tokens,
            "completion_tokens": total.completion_tokens,
            "total_tokens": total.tokens,
            "cost": total.cost,
        }
        out["cost_known"] = all(r.cost_known or r.cached for r in records)
        out["records"] = [asdict(r) for r in records]
        return out


def lookup_price(
    model: str, prices: Mapping[str, tuple[float, float]] | None = None
) -> tuple[float, float] | None:
    """Find the (input, output) USD-per-1M-token price of ``model``.

    Parameters
    ----------
    model
        Model name, possibly a dated snapshot such as ``gpt-4o-2024-08-06``.
    prices
        Price table; defaults to :data:`DEFAULT_PRICES`.

    Returns
    -------
    tuple of float or None
        Exact match first, then the longest key that ``model`` starts with
        (so ``gpt-4o-mini-2024-07-18`` gets ``gpt-4o-mini``, not ``gpt-4o``);
        ``None`` when nothing matches.
    """
    table = DEFAULT_PRICES if prices is None else prices
    if model in table:
        return table[model]
    best = max((k for k in table if k and model.startswith(k)), key=len, default=None)
    return None if best is None else table[best]


def compute_cost(
    models: list[str],
    prompt_tokens: int,
    completion_tokens: int,
    prices: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[float, bool]:
    """Cost in USD of one call, trying each candidate model name in turn.

    Parameters
    ----------
    models
        Candidate names, best first (the requested model, then the one the
        server reported: local servers often report a file path).
    prompt_tokens, completion_tokens
        Token counts of the call.
    prices
        Price table; defaults to :data:`DEFAULT_PRICES`.

    Returns
    -------
    (cost, cost_known)
        ``(0.0, False)`` when no candidate has a price.
    """
    for name in models:
        price = lookup_price(name, prices) if name else None
        if price is not None:
            in_price, out_price = price
            # Counts and prices are validated where they enter; max() keeps a budget safe
            # even so (a negative cost would let any budget be exceeded).
            cost = (max(prompt_tokens, 0) * in_price + max(completion_tokens, 0) * out_price) / 1e6
            return (cost if math.isfinite(cost) and cost > 0 else 0.0), True
    return 0.0, False


def merge_prices(
    overrides: Mapping[str, tuple[float, float]] | None,
) -> dict[str, tuple[float, float]]:
    """Return :data:`DEFAULT_PRICES` updated with validated user overrides."""
    table = dict(DEFAULT_PRICES)
    for name, pair in (overrides or {}).items():
        try:
            in_price, out_price = (float(x) for x in pair)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"prices[{name!r}] must be (input_usd_per_1M, output_usd_per_1M), got {pair!r}"
            ) from exc
        if not all(math.isfinite(x) and x >= 0 for x in (in_price, out_price)):
            raise ValueError(f"prices[{name!r}] must be finite and not negative, got {pair!r}")
        table[str(name)] = (in_price, out_price)
    return table


# -- usage of every LLM called in a block ---------------------------------------------------
# A remote worker runs a workflow whose LLM clients were unpickled there: nobody on the
# driver watches their totals. ``collect_usage`` sums what every client reports while the
# block runs in this context (this thread or task; threads the block starts itself are not
# seen unless they copy the context).
_collectors: contextvars.ContextVar[tuple[UsageTotals, ...]] = contextvars.ContextVar(
    "trace_nb_usage_collectors", default=()
)


@contextmanager
def collect_usage() -> Iterator[UsageTotals]:
    """Totals of every LLM call made inside the ``with`` block (nested blocks all count it)."""
    totals = UsageTotals()
    token = _collectors.set((*_collectors.get(), totals))
    try:
        yield totals
    finally:
        _collectors.reset(token)


def report_usage(record: CallUsage) -> None:
    """Add one call's usage to the :func:`collect_usage` blocks this call runs in."""
    for totals in _collectors.get():
        totals.add(record)
