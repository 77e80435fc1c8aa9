"""Compiler: the integration model → a Beam pipeline (build), plus test and summary helpers."""

from meshline.compiler.build import Built, build_pipeline, plan_triggers

__all__ = ["Built", "build_pipeline", "plan_triggers"]
