"""``python -m pyzerobus``: the ``pyzerobus`` command (see :mod:`pyzerobus.cli`)."""

from .cli import main

raise SystemExit(main())
