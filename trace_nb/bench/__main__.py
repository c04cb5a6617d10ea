"""``python -m trace_nb.bench``: see :mod:`trace_nb.bench.cli`."""

from .cli import main

raise SystemExit(main())
