"""The systemd service of `setup.sh --service`: installed files, a unit systemd accepts, and enough privilege.

No systemd runs in the test machines, so the service is never started: `systemd-analyze verify` checks the
unit, `setup.sh` installs into a temporary root (NTA_SERVICE_ROOT), and the unit's capability bounding set
and NoNewPrivileges are applied with setpriv to a real live capture.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import CLI, ROOT, wait_until

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
    assert re.search(r"@[A-Z]+@", unit_text) is None  # every placeholder filled in
    command = shlex.split(_unit(installed)["ExecStart"])
    assert command[:2] == [str(ROOT / ".venv/bin/python"), str(CLI)]
    config = installed / CONFIG_PATH.lstrip("/")
    assert stat.S_IMODE(config.stat().st_mode) == 0o640  # Python run as root: only root may change it
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o750
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
    config.chmod(0o666)
    assert _setup(tmp_path, "--service").returncode == 0
    assert config.read_text() == 'CONFIG = {"interface": "eth9"}\n'
    assert stat.S_IMODE(config.stat().st_mode) == 0o640  # only root may change it again
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


def _staged(arg: str, root: Path) -> str:
    """An argument of the unit's command line with its /etc and /var/lib paths moved under ``root``."""
    for path in (CONFIG_PATH, DATA_PATH):
        if arg.startswith(path):
            return str(root / path.lstrip("/")) + arg[len(path) :]
    return arg


@pytest.mark.live
@pytest.mark.root
def test_the_unit_captures_drops_root_reloads_and_restarts_with_its_privileges():
    if os.geteuid() != 0:
        pytest.skip("capturing and dropping root need the tests to run as root")
    account = target_account("nobody")  # stands in for the unit's nta, which setup.sh makes on real machines
    if not (readable_by(CLI, account) and readable_by(Path(sys.executable), account)):
        pytest.skip(f"user nobody cannot read the project at {ROOT}, so it cannot run it unprivileged")
    root = Path(tempfile.mkdtemp(prefix="nta-service-", dir="/tmp"))  # reachable by nobody
    root.chmod(0o755)
    ping = subprocess.Popen(["ping", "-q", "-i", "0.2", "-w", "60", "127.0.0.1"], stdout=subprocess.DEVNULL)
    try:
        assert _setup(root, "--service").returncode == 0
        unit = _unit(root)
        assert unit["NoNewPrivileges"] == "yes"
        caps = ",".join("+" + cap.removeprefix("CAP_").lower() for cap in unit["CapabilityBoundingSet"].split())
        config = root / CONFIG_PATH.lstrip("/")
        config.write_text('CONFIG = {"interface": "lo", "window_s": 1.0, "dashboard": False}\n')
        for path in (config.parent, config):
            os.chown(path, 0, account.gid)  # root:nta on a real machine (setup.sh)
        exec_start = [_staged(arg, root) for arg in shlex.split(unit["ExecStart"])]
        exec_start[exec_start.index("--run-as") + 1] = account.name
        command = ["setpriv", "--no-new-privs", "--bounding-set", f"-all,{caps}", "--", *exec_start, "--json"]
        data = root / DATA_PATH.lstrip("/")
        log = data / "network_analysis.log"

        first = subprocess.Popen([*command, "--duration", "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: data.stat().st_uid == account.uid and log.exists(), 30, "the first window and the drop")
        config.write_text('CONFIG = {"interface": "lo", "window_s": 1.0, "dashboard": False, "scan_min_ports": 30}\n')
        first.send_signal(signal.SIGHUP)  # systemctl reload, after root was dropped
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert json.loads(out)["packets"] > 0
        assert "applied scan_min_ports" in log.read_text(), log.read_text()

        again = subprocess.run([*command, "--duration", "3"], capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr  # root again, over files nobody owns: DAC_OVERRIDE
        assert json.loads(again.stdout)["packets"] > 0
    finally:
        ping.terminate()
        ping.wait()
        shutil.rmtree(root, ignore_errors=True)
