"""Whether a tracking server is there and answers, told in seconds rather than minutes.

MLflow's own client retries a refused or unanswered request for minutes by default (seven
retries, two minutes each), so a server that is down or hangs would be warned about long
after the run ended. :func:`reachable` tells a refused connection at once, and with
``answer=True`` also a server that accepts connections but never answers
(:data:`ANSWER_TIMEOUT_S`). Only ``http(s)://`` URIs reached directly are checked.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

__all__ = ["ANSWER_TIMEOUT_S", "host", "reachable"]

ANSWER_TIMEOUT_S = 5.0  # a tracking server answers /health in milliseconds


def host(url: str) -> str:
    """``host[:port]`` of a URL: never its user or password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "")


def reachable(uri: str, timeout: float = 5.0, *, answer: bool = False) -> None:
    """Raise ``ConnectionError`` when an ``http(s)://`` tracking server cannot be connected
    to, and with ``answer=True`` when it does not answer a request within
    :data:`ANSWER_TIMEOUT_S` seconds (any HTTP answer counts, an error status too)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(
        parts.hostname
    ):
        return  # reached through a proxy: only MLflow's own client can tell
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"no MLflow server answers at {host(uri)}: {e}") from None
    if answer:
        _answers(uri)


def _answers(uri: str) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=ANSWER_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # it answered (a server without /health, or one that wants a login)
    except TimeoutError as e:
        reason = e
    except urllib.error.URLError as e:
        if not isinstance(e.reason, TimeoutError):
            return  # e.g. TLS trouble: MLflow's own client says what is wrong
        reason = e.reason
    except OSError:
        return
    raise ConnectionError(
        f"the MLflow server at {host(uri)} accepts connections but does not answer "
        f"within {ANSWER_TIMEOUT_S:g} s ({reason})"
    ) from None
