"""Everything that talks to the tshark binary: locating it, interfaces, field output, errors."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import CaptureError
from ..records.packets import FIELD_AGGREGATOR, TSHARK_FIELDS

FIELD_ARGS: tuple[str, ...] = (
    "-T",
    "fields",
    "-E",
    "occurrence=a",  # the DNS answers need every occurrence; packets_from_fields keeps the first of the others
    "-E",
    f"aggregator={FIELD_AGGREGATOR}",
    "-E",
    "separator=/t",
    "-E",
    "quote=n",
    *[arg for field in TSHARK_FIELDS for arg in ("-e", field)],
)

# How pandas reads tshark's field output: every value a string, empty for absent, a malformed line skipped.
READ_FIELDS: dict = {
    "sep": "\t",
    "header": None,
    "names": list(TSHARK_FIELDS),
    "dtype": str,
    "quoting": csv.QUOTE_NONE,
    "keep_default_na": False,
    "on_bad_lines": "skip",
    "engine": "c",
}

# tshark's own words -> our one-line explanation. Checked in order.
_KNOWN_ERRORS: tuple[tuple[str, str], ...] = (
    (
        r"(do not|don't) have permission to capture|Operation not permitted|permission denied",
        "no permission to capture on {iface}: run as root (sudo) or give dumpcap CAP_NET_RAW",
    ),
    (
        r"No such device|doesn't exist|There is no device named|No such interface",
        "interface {iface} does not exist; --list-interfaces shows the ones tshark can see",
    ),
    (
        r"isn't a valid capture filter|can't parse filter expression|Invalid capture filter",
        "the capture filter is not valid BPF: {detail}",
    ),
    (r"is down", "interface {iface} is down"),
)


@dataclass(frozen=True)
class Interface:
    """A capture interface as tshark lists it."""

    name: str
    description: str
    is_default: bool = False


def tshark_path() -> str:
    """Path of the tshark binary, or a CaptureError telling how to install it."""
    path = shutil.which("tshark")
    if path is None:
        raise CaptureError("tshark is not installed: run ./setup.sh, or apt-get install tshark")
    return path


def explain_tshark_error(stderr: str, iface: str | None = None) -> str:
    """One line that explains a tshark/dumpcap failure, from what it printed."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and "Running as user" not in ln]
    said = [ln for ln in lines if re.match(r"(tshark|dumpcap):", ln) or "isn't a valid" in ln]
    detail = (said or lines or ["tshark exited without saying why"])[0]
    detail = re.sub(r"^(tshark|dumpcap):\s*", "", detail)
    for pattern, message in _KNOWN_ERRORS:
        if re.search(pattern, stderr, re.IGNORECASE):
            return message.format(iface=repr(iface), detail=detail)
    return f"tshark failed: {detail}"


def list_interfaces() -> list[Interface]:
    """Interfaces tshark can capture on, the default one marked."""
    proc = subprocess.run([tshark_path(), "-D"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise CaptureError(explain_tshark_error(proc.stderr))
    default = default_interface(fallback_ok=True)
    found = []
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*\d+\.\s+(\S+)(?:\s+\((.*)\))?", line)
        if m:
            found.append(Interface(m.group(1), m.group(2) or "", m.group(1) == default))
    return found


def default_interface(fallback_ok: bool = False) -> str | None:
    """The interface holding the default route, else the first non-loopback interface that is up."""
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            cols = line.split()
            if len(cols) > 2 and cols[1] == "00000000":
                return cols[0]
    except OSError:
        pass
    net = Path("/sys/class/net")
    if net.is_dir():
        for dev in sorted(net.iterdir()):
            if dev.name == "lo":
                continue
            state = (dev / "operstate").read_text().strip() if (dev / "operstate").exists() else ""
            flags = int((dev / "flags").read_text(), 16) if (dev / "flags").exists() else 0
            if state == "up" or (state == "unknown" and flags & 0x1):
                return dev.name
    if fallback_ok:
        return None
    raise CaptureError("no network interface is up; name one with --interface (see --list-interfaces)")


def fields_frame(text: str | Iterable[str]) -> pd.DataFrame:
    """Parse tshark ``-T fields`` lines (tab separated, TSHARK_FIELDS order) into a string frame."""
    data = text if isinstance(text, str) else "".join(text)
    if not data.strip():
        return pd.DataFrame(columns=list(TSHARK_FIELDS), dtype="string")
    return pd.read_csv(io.StringIO(data), **READ_FIELDS)


def check_live_capture(iface: str, bpf_filter: str | None) -> None:
    """Open the interface and compile the filter once (dumpcap -d), so failures surface before capture."""
    dumpcap = shutil.which("dumpcap")
    if dumpcap is None:
        raise CaptureError("dumpcap (part of tshark) is not installed: run ./setup.sh, or apt-get install tshark")
    cmd = [dumpcap, "-i", iface, "-d"] + (["-f", bpf_filter] if bpf_filter else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or "dumpcap:" in proc.stderr or "isn't a valid capture filter" in proc.stderr:
        raise CaptureError(explain_tshark_error(proc.stderr, iface))
