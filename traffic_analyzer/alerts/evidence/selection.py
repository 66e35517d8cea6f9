"""Which packets are an alert's evidence: its Wireshark display filter, and the same rule for the in-process cut.

The display filter is the definition users see (and can paste into Wireshark 4 or tshark); the
:class:`~traffic_analyzer.capture.pcap_cut.Selection` the cut uses is built from the same terms,
so the two select the same frames (``tests/integration/test_evidence_exact.py`` compares them with tshark).
Addresses are those of a packet's first IP, IPv6 or Ethernet layer (Wireshark's layer operator,
``ip.addr#1``), the addresses the packet table and so the detectors see: an ICMP error quoting
an attacker's probe, or a tunnelled packet, does not bring in the hosts named inside it.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from pathlib import Path

from ...capture.pcap_cut import Address, Selection
from ...records.alert import Alert

EVIDENCE_KEY = "evidence_pcap"  # the alert evidence key holding the pcap's path
SLACK_S = 2.0  # packets this long before an alert's start and after its end are evidence too
MAX_FILTER_HOSTS = 64  # victims named in one display filter; an alert with more keeps only its attacker
NANOSECONDS = 10**9
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _address(text: str) -> Address | None:
    """The address ``text`` names (a MAC, an IPv4 or IPv6 address); None for what is not an address."""
    if _MAC.match(text.lower()):
        return Address("eth", text.lower())
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None  # "*", "many" and anything else never reach a filter
    return Address("ip" if ip.version == 4 else "ipv6", str(ip))


def _terms(alert: Alert, slack_s: float) -> tuple[str, str, Address | None, tuple[Address, ...]]:
    """(first time, last time, attacker, victims): the time span as the filter writes it (µs), and the hosts."""
    first, last = f"{alert.start - slack_s:.6f}", f"{alert.end + slack_s:.6f}"
    mac = str(alert.evidence.get("mac", ""))
    attacker = _address(mac) if _MAC.match(mac.lower()) else _address(alert.attacker)
    victims = [a for a in (_address(v) for v in alert.victims) if a is not None]
    if mac or (attacker is not None and len(victims) > MAX_FILTER_HOSTS):
        victims = []  # an L2 alert's victims are IPs it claimed in ARP; too many victims say nothing
    return first, last, attacker, tuple(victims[:MAX_FILTER_HOSTS])


def display_filter(alert: Alert, slack_s: float = SLACK_S) -> str:
    """The Wireshark display filter selecting an alert's packets."""
    first, last, attacker, victims = _terms(alert, slack_s)
    terms = [f"frame.time_epoch >= {first}", f"frame.time_epoch <= {last}"]
    if attacker is not None:
        terms.append(_filter_term(attacker))
    if victims:
        terms.append("(" + " || ".join(map(_filter_term, victims)) + ")")
    return " && ".join(terms)


def frame_selection(alert: Alert, out: Path, slack_s: float = SLACK_S) -> Selection:
    """The frames :func:`display_filter` selects, as the in-process cut takes them, going to ``out``."""
    first, last, attacker, victims = _terms(alert, slack_s)
    groups = tuple(group for group in ((attacker,) if attacker is not None else (), victims) if group)
    return Selection(out, _nanoseconds(first), _nanoseconds(last), groups)


def _filter_term(address: Address) -> str:
    return f"{address.layer}.addr#1 == {address.text}"


def _nanoseconds(text: str) -> int:
    """Epoch nanoseconds of a decimal time, exactly (tshark compares frame times to the filter's text)."""
    return int(Decimal(text) * NANOSECONDS)
