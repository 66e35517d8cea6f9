"""Secrets (SMTP and dashboard passwords) come from the environment or from a file, never from code.

A secrets file holds ``NAME=value`` lines (``export`` and quotes allowed, ``#`` comments), for
example ``NTA_DASHBOARD_PASSWORD=...``; the environment wins over the file. A secrets file
that other users can read is reported, because anyone on the machine could copy it.
"""

from __future__ import annotations

import logging
import os
import shlex
import stat
from pathlib import Path

from .errors import ConfigError


def exposed_to_others(path: str | Path) -> bool:
    """Whether users other than the owner may read the file."""
    return bool(Path(path).stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def load_secrets(path: str | Path, logger: logging.Logger) -> list[str]:
    """Put the file's secrets into the environment (unless already set); return their names."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"secrets_file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"secrets_file {str(path)!r} cannot be read: {exc}") from None
    if exposed_to_others(path):
        mode = stat.S_IMODE(path.stat().st_mode)
        logger.warning("secrets file %s is readable by other users (mode %04o): run chmod 600 %s", path, mode, path)
    names = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ConfigError(f"secrets_file {path} line {number}: expected NAME=value")
        try:
            parts = shlex.split(value, comments=False)
        except ValueError as exc:
            raise ConfigError(f"secrets_file {path} line {number}: {exc}") from None
        os.environ.setdefault(name, " ".join(parts))
        names.append(name)
    return names
