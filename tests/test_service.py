"""The systemd service of `setup.sh --service`: installed files, a unit systemd accepts, and enough privilege.

No systemd runs in the test machines, so the service is never started: `systemd-analyze verify` checks the
unit, `setup.sh` installs into a temporary root (NTA_SERVICE_ROOT), and the unit's capability bounding set
and NoNewPrivileges are applied with setpriv to a real live capture.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import CLI, ROOT

from traffic_analyzer.cli import build_parser, load_config_file, run_settings
from traffic_analyzer.privileges import readable_by, target_account

UNIT_NAME = "network-traffic-analyzer.service"
CONFIG_PATH = "/etc/network-traffic-analyzer/config.py"
DATA_PATH = "/var/lib/network-traffic-analyzer"
SETUP = ROOT / "setup.sh"


def _setup(root: Path, mode: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NTA_SERVICE_ROOT": str(root)}
    return subprocess.run([str(SETUP), mode], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A temporary root that `setup.sh --service` installed into."""
    root = tmp_path_factory.mktemp("service-root")
    proc = _setup(root, "--service")
    assert proc.returncode == 0, proc.stderr
    return root


def _unit(root: Path) -> dict[str, str]:
    """The unit's settings (the last value of each key; comments and sections left out)."""
    settings = {}
    for line in (root / "etc/systemd/system" / UNIT_NAME).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings[key] = value
    return settings


def test_setup_installs_the_unit_the_config_and_the_data_folder(installed: Path):
    unit_text = (installed / "etc/systemd/system" / UNIT_NAME).read_text()
    assert "@" not in unit_text.replace("@system", "")  # every placeholder filled in
    command = shlex.split(_unit(installed)["ExecStart"])
    assert command[:2] == [str(ROOT / ".venv/bin/python"), str(CLI)]
    config = installed / CONFIG_PATH.lstrip("/")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # Python run as root: nobody else may read or change it
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert (installed / DATA_PATH.lstrip("/")).is_dir()
    assert _unit(installed)["ReadWritePaths"] == DATA_PATH


def test_the_installed_config_and_the_units_command_line_load(installed: Path):
    config = installed / CONFIG_PATH.lstrip("/")
    assert load_config_file(str(config))["capture_duration"] == 0.0  # the project's own loader accepts it
    args = vars(build_parser().parse_args(shlex.split(_unit(installed)["ExecStart"])[2:]))
    assert args.pop("config") == CONFIG_PATH
    args.pop("json"), args.pop("list_interfaces")
    settings = run_settings(str(config), args)  # validated as at a start and on SIGHUP
    assert settings["data_dir"] == DATA_PATH
    assert Path(settings["log_file"]).parent == Path(DATA_PATH)
    assert settings["run_as"] == "nta"


def test_setup_keeps_an_edited_config_and_uninstall_keeps_settings_and_results(tmp_path: Path):
    assert _setup(tmp_path, "--service").returncode == 0
    config = tmp_path / CONFIG_PATH.lstrip("/")
    config.write_text('CONFIG = {"interface": "eth9"}\n')
    config.chmod(0o644)
    assert _setup(tmp_path, "--service").returncode == 0
    assert config.read_text() == 'CONFIG = {"interface": "eth9"}\n'
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # made root-only again
    proc = _setup(tmp_path, "--uninstall-service")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "etc/systemd/system" / UNIT_NAME).exists()
    assert config.exists() and (tmp_path / DATA_PATH.lstrip("/")).is_dir()
    assert "userdel nta" in proc.stderr  # says how to remove the rest


def _verify(unit: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )


def test_systemd_accepts_the_unit(installed: Path, tmp_path: Path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd), so the unit cannot be verified")
    probe = tmp_path / "probe.service"
    probe.write_text("[Service]\nExecStart=/bin/true\n")
    if (result := _verify(probe)).returncode != 0:
        pytest.skip(f"systemd-analyze verify does not work on this machine: {result.stderr.strip()}")
    unit = tmp_path / UNIT_NAME  # a copy, as verify wants the unit's own name and never touches /etc
    shutil.copy(installed / "etc/systemd/system" / UNIT_NAME, unit)
    result = _verify(unit)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # unknown keys and bad values are only warnings, with exit code 0


@pytest.mark.live
@pytest.mark.root
def test_the_units_capabilities_are_enough_to_capture_drop_root_and_restart(installed: Path):
    if os.geteuid() != 0:
        pytest.skip("capturing and dropping root need the tests to run as root")
    account = target_account("nobody")  # stands in for the unit's nta, which setup.sh makes on real machines
    if not (readable_by(CLI, account) and readable_by(Path(sys.executable), account)):
        pytest.skip(f"user nobody cannot read the project at {ROOT}, so it cannot run it unprivileged")
    unit = _unit(installed)
    assert unit["NoNewPrivileges"] == "yes"
    caps = ",".join("+" + cap.removeprefix("CAP_").lower() for cap in unit["CapabilityBoundingSet"].split())
    folder = Path(tempfile.mkdtemp(prefix="nta-service-", dir="/tmp"))  # reachable by nobody
    folder.chmod(0o755)
    command = [
        *("setpriv", "--no-new-privs", "--bounding-set", f"-all,{caps}", "--"),
        *(sys.executable, str(CLI), "--interface", "lo", "--duration", "4", "--run-as", "nobody"),
        *("--no-dashboard", "--json", "--no-progress", "--data-dir", str(folder / "data")),
        *("--log-file", str(folder / "data" / "analysis.log")),
    ]
    ping = subprocess.Popen(["ping", "-q", "-i", "0.2", "-w", "30", "127.0.0.1"], stdout=subprocess.DEVNULL)
    try:
        for run in ("first start", "restart over files nobody owns"):
            proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, f"{run}: {proc.stderr}"
            assert json.loads(proc.stdout)["packets"] > 0, run
            assert (folder / "data").stat().st_uid == account.uid, run  # handed over, then root dropped
            time.sleep(0.5)
    finally:
        ping.terminate()
        ping.wait()
        shutil.rmtree(folder, ignore_errors=True)
