"""Branch coverage per package of the core, read from the data the last test run left in ``.coverage``.

Every pytest run measures branch coverage of ``openrealtime`` (``[tool.coverage]`` in pyproject.toml);
after a run of the whole suite::

    .venv/bin/python -m tests.coverage_packages

prints one line per package (statements and branches together, as coverage.py counts with
``branch = true``) and exits 1 when a package that has a floor is below it. The floors hold only for
the whole suite: after a targeted run, most packages are partly covered.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import coverage

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_ROOT = REPO_ROOT / "src" / "openrealtime"
PACKAGES = ("session", "protocol", "audio")
FLOORS_PERCENT = {"session": 95.0, "protocol": 95.0, "audio": 95.0}


def package_percent(cov: coverage.Coverage, package: str) -> float:
    """Coverage of one package in percent; 0 when the run measured none of its files."""
    try:  # ``report`` wants an output: its table is not needed
        return cov.report(include=[str(PACKAGE_ROOT / package / "*")], file=io.StringIO())
    except coverage.exceptions.NoDataError:
        return 0.0


def main() -> int:
    cov = coverage.Coverage(data_file=str(REPO_ROOT / ".coverage"), config_file=str(REPO_ROOT / "pyproject.toml"))
    cov.load()
    if not cov.get_data().measured_files():
        print("no coverage data: run the tests first (.venv/bin/pytest)", file=sys.stderr)
        return 2
    below = []
    for package in PACKAGES:
        percent = package_percent(cov, package)
        floor = FLOORS_PERCENT.get(package)
        verdict = "" if floor is None else f"  (floor {floor:.0f} %{', BELOW' if percent < floor else ''})"
        print(f"{package + '/':<10} {percent:5.1f} %{verdict}")
        if floor is not None and percent < floor:
            below.append(package)
    print(f"{'whole':<10} {cov.report(file=io.StringIO()):5.1f} %")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
