"""``python -m heatmaploc`` (and ``torchrun -m heatmaploc``): the ``heatmaploc`` command."""
import sys

from heatmaploc.cli import main

sys.exit(main())
