"""Compatibility module: the reply reader lives in :mod:`trace_nb.optim.reply`."""

from __future__ import annotations

from .reply import FORMATS, MAX_LENIENT_CHARS, MAX_SEARCH_CHARS, ParsedReply, parse_reply

__all__ = ["FORMATS", "MAX_LENIENT_CHARS", "MAX_SEARCH_CHARS", "ParsedReply", "parse_reply"]
