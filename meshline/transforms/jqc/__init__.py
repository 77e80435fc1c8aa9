"""Internals of Meshline's jq engine; use :mod:`meshline.transforms.jq` (the public API).

- :mod:`.parser` -- tokenizer and precedence parser for the native subset (AST tuples);
- :mod:`.compiler` -- AST to Python closures (value mode and path mode);
- jq 1.8 value semantics, one module per concern, each importing only those above it:
  :mod:`.clock` (deadlines), :mod:`.numbers` (kinds, numbers and how they print),
  :mod:`.compare` (equality, order, JSON text, type errors), :mod:`.arith` (operators),
  :mod:`.paths` (indexing, iteration, copy-on-write paths) and :mod:`.builtin` (builtins);
- :mod:`.errors` -- :class:`JqError`, :class:`JqCompileError` and the internal control-flow
  exceptions (``Unsupported``: compile the program with jq.py; ``Fallback``: re-run this input on
  jq.py).
"""
