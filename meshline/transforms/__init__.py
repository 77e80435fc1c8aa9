"""Filters and transformations: pure element functions, wired into Beam by the compiler."""
