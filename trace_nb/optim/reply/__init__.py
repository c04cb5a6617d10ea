"""Read an LLM reply into reasoning, answer and a suggestion of new parameter values.

OptoPrime asks the model for JSON of the form::

    {"reasoning": "...", "answer": "...", "suggestion": {"<var>": <new value>, ...}}

Real models (GPT-4o as well as tiny local models) send many deformed variants of it:
fenced, wrapped in prose, Python literals, raw newlines inside strings, trailing commas,
XML tags, truncated output, or plain ``TERMINATE``. :func:`parse_reply` tries a fixed
sequence of readers, from the strictest to the most forgiving, and never raises: when no
suggestion can be read, :attr:`ParsedReply.error` says why, in words meant for the user.

Values are returned exactly as the reply gives them (``"5"`` stays a string); turning them
into the parameter's type is the job of :mod:`trace_nb.optim.coerce`.

Decisions
---------
* ``"suggestion": {}`` (or ``[]``) is a valid reply meaning "no changes": the result has
  ``suggestion == {}`` and ``error is None``; callers treat it as zero proposals.
* ``"suggestion": null`` is *not* treated like ``{}``; it is reported as an error because
  it is not the documented format (the message tells the model to send ``{}``).
* A suggestion whose keys are all unknown gives ``suggestion == {}``, the keys in
  :attr:`ParsedReply.unknown` and an error naming them; unknown keys are never guessed
  into known names (only exact, then whitespace/quote-stripped, matches count).
* The word ``TERMINATE`` never cancels a suggestion that is present; it only explains an
  empty result.
* A reply cut off before its suggestion closed (an unbalanced ``{``) gives an error rather
  than a partial suggestion read from the fragments.
* XML ``<value>`` contents are returned as (dedented, stripped) text.
* Lone UTF-16 surrogates (``"\\ud800"``) are repaired to U+FFFD before reading, so no
  value that cannot be encoded as UTF-8 ever leaves the parser.
* The work is bounded: a reply longer than :data:`MAX_SEARCH_CHARS` is read only when it
  is one JSON document; lenient decoders see at most :data:`MAX_LENIENT_CHARS` per
  candidate; a JSON integer too long for ``int()`` stays its digit string.
"""

from __future__ import annotations

from .ladder import MAX_LENIENT_CHARS, MAX_SEARCH_CHARS, parse_reply
from .model import FORMATS, ParsedReply

__all__ = ["FORMATS", "MAX_LENIENT_CHARS", "MAX_SEARCH_CHARS", "ParsedReply", "parse_reply"]
