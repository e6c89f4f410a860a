"""``python -m accord`` is the ``accord`` command (and ``torchrun -m accord aggregate ...`` runs it on every rank)."""

import sys

from accord.cli import main

sys.exit(main())
