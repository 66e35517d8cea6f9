"""The README names every system package the test setup installs (issue 15 item 12)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit


def test_the_readme_lists_every_package_setup_dev_installs():
    """A new user ran the tests on their own machine and found sshd and PostgreSQL running:
    the README must say what `setup.sh --dev` installs, and that tests belong on a development machine."""
    setup = (ROOT / "setup.sh").read_text()
    start = re.search(r'if \[\[ .* == "--dev" \]\]', setup).start()  # the --dev block of setup.sh
    dev = setup[start : setup.index("\nfi\n", start)]
    packages = {p for line in re.findall(r"APT_PACKAGES\+=\(([^)]*)\)", dev) for p in line.split()}
    assert {"postgresql", "openssh-server", "hydra", "hping3", "dnsmasq-base"} <= packages
    readme = (ROOT / "README.md").read_text()
    missing = sorted(p for p in packages if f"`{p}`" not in readme)
    assert not missing, f"README does not name these packages that setup.sh --dev installs: {missing}"
    assert "development machine" in readme
