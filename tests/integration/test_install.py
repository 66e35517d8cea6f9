"""``pip install .`` gives a working ``network-traffic-analyzer`` command, offline.

The project is installed into a fresh venv with ``--no-deps --no-build-isolation --no-index``
(the venv sees the base Python's setuptools and wheel; the test machine has no internet). The
runtime packages come from the project's .venv through a ``.pth`` line, so what runs is the
installed copy of the analyzer, from a folder outside the checkout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "requirements.txt", "README.md", "network_traffic_analyzer.py", "traffic_analyzer")
BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a fresh venv with the analyzer pip-installed from a copy of the sources."""
    check = [str(BASE_PYTHON), "-c", "import setuptools, wheel"]
    if subprocess.run(check, capture_output=True).returncode != 0:
        pytest.skip(f"{BASE_PYTHON} has no setuptools and wheel to build offline (apt install python3-setuptools)")
    tmp = tmp_path_factory.mktemp("install")
    (tmp / "src").mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tmp / "src" / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, tmp / "src" / name)
    venv = tmp / "venv"
    subprocess.run([str(BASE_PYTHON), "-m", "venv", "--system-site-packages", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    proc = subprocess.run([*pip, str(tmp / "src")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "nta-runtime.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # pandas & co from .venv
    return venv / "bin"


def test_the_command_runs_from_the_installed_copy(installed, tmp_path):
    proc = subprocess.run(
        [str(installed / "network-traffic-analyzer"), "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "--read" in proc.stdout and "--eve-file" in proc.stdout
    where = subprocess.run(
        [str(installed / "python"), "-c", "import traffic_analyzer; print(traffic_analyzer.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(installed.parent)) and "site-packages" in where
    assert (Path(where).parent / "dashboard" / "assets" / "style.css").is_file()


def test_the_installed_command_reads_a_capture_and_exports(installed, tmp_path):
    command = str(installed / "network-traffic-analyzer")
    args = ["--read", str(ROOT / "tests" / "data" / "tiny-ethernet.pcap"), "--no-dashboard", "--json", "--no-progress"]
    args += ["--data-dir", str(tmp_path / "data"), "--log-file", str(tmp_path / "analysis.log")]
    proc = subprocess.run([command, *args], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["packets"] > 0
    proc = subprocess.run([command, "export", "--data-dir", str(tmp_path / "data")], capture_output=True, text=True)
    assert proc.returncode == 0 and "#path\tconn" in proc.stdout, proc.stderr
