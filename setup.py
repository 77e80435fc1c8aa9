"""Meshline: integration as code, compiled to Apache Beam.

Beam ships this package to remote workers with ``--setup_file``; keep every
module under the single import name ``meshline``.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _pins(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


setup(
    name="meshline",
    version="0.1.0",
    description="Integration as code for event-driven systems, compiled to Apache Beam.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=[*find_packages(include=["meshline", "meshline.*"]), "meshline._flex_template"],
    package_dir={"meshline._flex_template": "templates"},
    package_data={"meshline": ["py.typed", "data/*", "ui/static/*"], "meshline._flex_template": ["*"]},
    install_requires=_pins("requirements.lock"),
    extras_require={"dev": _pins("requirements-dev.lock")},
    entry_points={"console_scripts": ["meshline = meshline.cli:main"]},
)
