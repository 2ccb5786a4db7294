"""The napari plugin (manifest ``napari.yaml``, entry point ``napari.manifest``; needs
``pip install 'heatmaploc[napari]'`` and a Qt binding of the user's choice).

* :mod:`.widget`: the dock widget that finds the sources of an image layer, with a
  live threshold and the physics refinement;
* :mod:`.reader`: predictions CSVs and dataset folders as layers; :mod:`.writer`: a
  Points layer as a predictions CSV; :mod:`.sample`: the examples as sample data;
* :mod:`.layers`: the conversions between :class:`~heatmaploc.points.Points` and
  napari's Points layer data (``(row, column)`` = ``(y, x)``, a leading frame axis for
  stacks), shared by all of them.

Nothing here imports torch or Qt at import time.
"""
