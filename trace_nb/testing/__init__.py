"""Test helpers for code built on trace_nb, usable in your own test suites."""

from __future__ import annotations

from .server import FakeOpenAIServer

__all__ = ["FakeOpenAIServer"]
