"""Internals of Meshline's jq engine; use :mod:`meshline.transforms.jq` (the public API).

- :mod:`.parser` -- tokenizer and precedence parser for the native subset (AST tuples);
- :mod:`.compiler` -- AST to Python closures (value mode and path mode);
- :mod:`.runtime` -- jq 1.8 value semantics: order, equality, arithmetic, number printing,
  indexing, copy-on-write paths and the builtins;
- :mod:`.errors` -- :class:`JqError`, :class:`JqCompileError` and the internal control-flow
  exceptions (``Unsupported``: compile the program with jq.py; ``Fallback``: re-run this input on
  jq.py).
"""
