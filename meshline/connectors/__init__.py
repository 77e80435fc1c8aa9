"""Connectors: one module per system; ids are listed in :mod:`meshline.registry`."""
