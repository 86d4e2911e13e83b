"""Jupyter adapters (magics, cell capture, widgets, server): thin layers over the mlo core."""
