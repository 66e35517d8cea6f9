"""Least privilege: only packet capture needs root (CAP_NET_RAW); analysis and the dashboard do not.

Started with ``sudo``, the analyzer opens the capture as root, gives the files it writes
(data directory, log file) to the user who ran sudo, and then becomes that user for good:
the capture processes (tshark, dumpcap) keep the root they were started with, while the
Python process that parses attacker-written bytes and serves the dashboard does not. A root
keeper (:mod:`traffic_analyzer.capture.processes`) ends those captures, and starts the
configured dumpcap again, and nothing else, when it dies after the drop.
``run_as`` names another account, or ``root`` to keep root (not recommended).
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

KEEP_ROOT = "root"


@dataclass(frozen=True)
class Account:
    """The unprivileged account the analyzer becomes."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _account(entry: pwd.struct_passwd) -> Account:
    groups = tuple(sorted({entry.pw_gid, *os.getgrouplist(entry.pw_name, entry.pw_gid)}))
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


def target_account(run_as: str | None) -> Account | None:
    """Whom to become, or None to stay as we are.

    Only root drops privileges. ``run_as`` wins; otherwise the user who ran sudo (SUDO_UID,
    which sudo sets); a root login without sudo and without ``run_as`` stays root.
    """
    if os.geteuid() != 0:
        return None
    if run_as:
        if run_as == KEEP_ROOT:
            return None
        try:
            entry = pwd.getpwuid(int(run_as)) if run_as.isdigit() else pwd.getpwnam(run_as)
        except KeyError:
            raise ConfigError(f"run_as {run_as!r}: no such user on this machine") from None
        if entry.pw_uid == 0:
            return None
        return _account(entry)
    sudo_uid = os.environ.get("SUDO_UID", "")
    if sudo_uid.isdigit() and int(sudo_uid) != 0:
        try:
            return _account(pwd.getpwuid(int(sudo_uid)))
        except KeyError:
            return None
    return None


def readable_by(path: str | Path, account: Account) -> bool:
    """Whether ``account`` may read ``path`` (read bit on the file, search bit on every parent)."""
    target = Path(path).resolve()
    try:
        if not _permits(target.stat(), account, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH):
            return False
        return all(
            _permits(parent.stat(), account, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH) for parent in target.parents
        )
    except OSError:
        return False


def _permits(st: os.stat_result, account: Account, user_bit: int, group_bit: int, other_bit: int) -> bool:
    if st.st_uid == account.uid:
        return bool(st.st_mode & user_bit)
    if st.st_gid in account.groups:
        return bool(st.st_mode & group_bit)
    return bool(st.st_mode & other_bit)


def hand_over(paths: list[Path], account: Account) -> None:
    """Give ``paths`` (folders recursively) to ``account`` so it can go on writing them."""
    for path in paths:
        if not path.exists():
            continue
        os.chown(path, account.uid, account.gid, follow_symlinks=False)
        if path.is_dir() and not path.is_symlink():
            for root, dirs, files in os.walk(path):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), account.uid, account.gid, follow_symlinks=False)


def drop_to(account: Account) -> None:
    """Become ``account`` for good: groups, then gid, then uid (real, effective and saved).

    glibc applies set*id to every thread of the process, so the dashboard thread started
    afterwards and any thread already running (capture readers) run unprivileged too.
    """
    os.setgroups(list(account.groups))
    os.setresgid(account.gid, account.gid, account.gid)
    os.setresuid(account.uid, account.uid, account.uid)
    os.environ.update(HOME=account.home, USER=account.name, LOGNAME=account.name)
    if os.geteuid() == 0 or os.getuid() == 0:
        raise ConfigError(f"could not drop root privileges to {account.name}")
