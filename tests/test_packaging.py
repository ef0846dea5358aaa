"""Every source package is listed in pyproject.toml, so `pip install .` ships it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_packaged() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = tool["package-dir"]
    expected = set()
    for package, folder in package_dir.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            nested = ".".join((package, *relative))
            if not any(nested.startswith(f"{other}.") for other in package_dir if other != package
                       and other.startswith(f"{package}.")):
                expected.add(nested)
    assert expected <= set(tool["packages"]), sorted(expected - set(tool["packages"]))
