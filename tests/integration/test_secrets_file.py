"""Secrets come from the environment or a private file; a file others may read or change is reported."""

from __future__ import annotations

import logging
import os

import pytest
from conftest import run_cli

from traffic_analyzer.errors import ConfigError
from traffic_analyzer.secrets_file import load_secrets


@pytest.fixture(autouse=True)
def own_environment(monkeypatch):
    """load_secrets writes os.environ: give each test a copy, so no secret leaks into later tests."""
    monkeypatch.setattr(os, "environ", os.environ.copy())


def test_secrets_file_fills_the_environment_without_overriding_it(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NTA_SMTP_PASSWORD", "from-environment")
    monkeypatch.delenv("NTA_DASHBOARD_PASSWORD", raising=False)
    secrets = tmp_path / "secrets.env"
    secrets.write_text("# dashboard login\nexport NTA_DASHBOARD_PASSWORD='s3cret with space'\nNTA_SMTP_PASSWORD=x\n")
    secrets.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        names = load_secrets(secrets, logging.getLogger("t"))
    assert names == ["NTA_DASHBOARD_PASSWORD", "NTA_SMTP_PASSWORD"]
    assert os.environ["NTA_DASHBOARD_PASSWORD"] == "s3cret with space"
    assert os.environ["NTA_SMTP_PASSWORD"] == "from-environment"
    assert not caplog.records  # private file: nothing to say


def test_secrets_file_readable_by_others_is_reported(tmp_path, caplog):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("NTA_TEST_SECRET=1\n")
    secrets.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        load_secrets(secrets, logging.getLogger("t"))
    assert any("readable by other users (mode 0644)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("text", "message"), [("just words\n", "line 1: expected NAME=value"), ("A='open\n", "line 1")]
)
def test_broken_secrets_file_is_one_clear_error(tmp_path, text, message):
    secrets = tmp_path / "secrets.env"
    secrets.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_secrets(secrets, logging.getLogger("t"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_secrets(tmp_path / "missing.env", logging.getLogger("t"))


def test_config_file_others_may_change_is_refused_when_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the check guards runs as root")
    config = tmp_path / "config.py"
    config.write_text("CONFIG = {'dashboard': False}\n")
    config.chmod(0o666)
    proc = run_cli("--config", str(config), "--read", "/nonexistent.pcap")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: config file {config} is writable by other users and would run as root: " \
        f"run chmod go-w {config}"  # fmt: skip
