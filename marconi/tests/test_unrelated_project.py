"""Installing marconi changes nothing in an unrelated project's pytest run.

A throwaway project with one unrelated test runs pytest in a fresh virtual environment, before and after
``pip install marconi`` (the real install of this source, as a user would do it: build, wheel, entry points).
Its output must be the same: no plugin announced, no option, no "marconi conformance summary". The packages
come from pip's cache or index, as ``make install`` fetched them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import venv
from importlib import metadata
from pathlib import Path

INSTALL_TIMEOUT = 600  # seconds; a bound against a hung download, never an assertion about speed

UNRELATED_TEST = """
def test_arithmetic():
    assert 1 + 1 == 2
"""


def marconi_source(scratch: Path) -> str:
    """What this marconi was installed from (a source tree, copied to ``scratch`` so that building it writes
    nothing into the original, or an sdist), as pip recorded it."""
    for distribution in metadata.distributions(name="marconi"):
        direct = distribution.read_text("direct_url.json")
        if direct and json.loads(direct)["url"].startswith("file://"):
            source = Path(str(json.loads(direct)["url"]).removeprefix("file://"))
            if not source.is_dir():
                return str(source)
            ignore = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__", "*.db*")
            return str(shutil.copytree(source, scratch / "marconi-source", ignore=ignore))
    raise AssertionError("marconi was not installed from a local source, so there is nothing to install again")


def run_pytest(python: Path, project: Path) -> str:
    result = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return re.sub(r"in [0-9.]+s", "in <time>", result.stdout)


def pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_installing_marconi_leaves_an_unrelated_pytest_run_unchanged(tmp_path):
    project = tmp_path / "unrelated"
    project.mkdir()
    (project / "test_unrelated.py").write_text(UNRELATED_TEST)
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    pip(python, f"pytest=={metadata.version('pytest')}")

    before = run_pytest(python, project)
    pip(python, marconi_source(tmp_path))
    installed = subprocess.run(
        [str(python), "-c", "import marconi.storage, sys; sys.stdout.write(marconi.__version__)"],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
    )
    assert installed.returncode == 0, installed.stderr
    after = run_pytest(python, project)

    assert after == before
    assert "conformance summary" not in after
    assert not [line for line in after.splitlines() if line.startswith("plugins:") and "marconi" in line]
    assert installed.stdout  # and yet marconi is there, importable with its dependencies
