"""``python -m qiao``: the same as the ``qiao`` command."""

from .cli import run

run()
