"""Test helpers for code built on trace_nb, usable in your own test suites."""

from __future__ import annotations

from .offline import real_model_configured, tutorial_llm
from .server import FakeOpenAIServer

__all__ = ["FakeOpenAIServer", "real_model_configured", "tutorial_llm"]
