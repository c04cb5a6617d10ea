"""The notebook side: the ``%%trace`` magic, sessions, and the review panel."""
