"""The user's Beam arguments, read: shared by the runner modules (below them all)."""

from __future__ import annotations

__all__ = ["given_option"]


def given_option(beam_args: list[str], name: str) -> str | None:
    """The value of ``--name`` among the user's Beam args ("" for a bare flag), or None."""
    flag = f"--{name}"
    for i, arg in enumerate(beam_args):
        if arg == flag:
            following = beam_args[i + 1] if i + 1 < len(beam_args) else ""
            return "" if following.startswith("--") else following
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
    return None
