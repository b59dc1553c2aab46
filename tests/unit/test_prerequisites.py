"""scripts/test and scripts/dev name every missing prerequisite with its fix before doing anything.

The machine is simulated by a PATH holding only basic tools: no Node.js, no Chromium, no apt-get or
sudo (so nothing can be installed), or a Node.js that is too old.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BASICS = ("bash", "env", "sed", "sort", "head", "tail", "id", "cat", "grep", "tr", "cut", "dirname", "mktemp",
          "readlink", "sha256sum", "rm", "sleep", "seq")


def bare_path(tmp_path: Path, extra: dict[str, str] | None = None) -> str:
    """A PATH directory with the basics and Python, plus `extra` scripts (name -> shell body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASICS:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3").symlink_to(sys.executable)
    for name, body in (extra or {}).items():
        script = bin_dir / name
        script.write_text(f"#!{shutil.which('bash')}\n{body}\n")
        script.chmod(0o755)
    return str(bin_dir)


def run(command: list[str], path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO_ROOT, env={"PATH": path, "HOME": "/tmp"}, capture_output=True,
                          text=True, timeout=60)


def test_scripts_test_names_node_and_chromium_before_running_anything(tmp_path):
    result = run(["bash", "scripts/test"], bare_path(tmp_path))
    assert result.returncode == 1, result
    assert "Node.js 20.19+" in result.stderr
    assert "apt-get install chromium" in result.stderr
    assert "[setup]" not in result.stdout and "pass 1" not in result.stdout  # nothing installed or run


def test_a_too_old_node_is_named_with_its_version(tmp_path):
    path = bare_path(tmp_path, {"node": 'echo "v18.19.0"', "npm": 'echo "9.2.0"', "chromium": "exit 0"})
    result = run(["bash", "-c", "source scripts/lib.sh && check_prerequisites test"], path)
    assert result.returncode == 1, result
    assert "found 18.19.0" in result.stderr
    assert "chromium" not in result.stderr


@pytest.mark.parametrize("version", ["v20.19.0", "v22.1.0"])
def test_a_recent_node_with_chromium_passes(tmp_path, version):
    path = bare_path(tmp_path, {"node": f'echo "{version}"', "npm": 'echo "11.0.0"', "chromium": "exit 0"})
    result = run(["bash", "-c", "source scripts/lib.sh && check_prerequisites test"], path)
    assert result.returncode == 0, result.stderr


def test_scripts_dev_does_not_ask_for_chromium(tmp_path):
    path = bare_path(tmp_path, {"node": 'echo "v20.19.2"', "npm": 'echo "11.0.0"'})
    result = run(["bash", "-c", "source scripts/lib.sh && check_prerequisites dev"], path)
    assert result.returncode == 0, result.stderr
