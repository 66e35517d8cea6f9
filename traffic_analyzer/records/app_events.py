"""The application-layer event record: one decoded DNS, HTTP or TLS message, filed under its connection's uid.

Each window keeps the messages it decoded (a DNS query or answer, an HTTP request or response,
a TLS ClientHello's server name) with the uid and endpoints of the flow they travelled in, so
the Zeek dns.log, http.log and ssl.log exports join conn.log row for row.
"""

from __future__ import annotations

import pandas as pd

from .packets import TEXT

APP_KINDS = ("dns", "http", "ssl")  # Zeek log names
APP_EVENT_COLUMNS: dict[str, object] = {
    "ts": "float64",  # the packet's time
    "uid": TEXT,  # the conn.log uid of its flow
    "kind": TEXT,  # dns, http or ssl
    "orig_h": TEXT,  # the flow's originator and responder (Zeek's id.*), not the packet's direction
    "orig_p": "Int32",
    "resp_h": TEXT,
    "resp_p": "Int32",
    "proto": TEXT,  # tcp or udp
    "from_orig": "boolean",  # sent by the originator
    "dns_qname": TEXT,
    "dns_qtype": "Int32",
    "dns_rcode": "Int16",
    "dns_response": "boolean",
    "dns_answers": TEXT,  # the answer's A/AAAA/CNAME/PTR/MX/NS data, comma-joined (Zeek's answers), v7
    "dns_ttls": TEXT,  # and their TTLs in seconds (Zeek's TTLs), v7
    "http_method": TEXT,
    "http_host": TEXT,
    "http_uri": TEXT,
    "http_user_agent": TEXT,
    "http_status": "Int16",
    "http_content_type": TEXT,
    "http_content_length": "Int64",
    "tls_sni": TEXT,
}


_EMPTY = pd.DataFrame({c: pd.Series(dtype=t) for c, t in APP_EVENT_COLUMNS.items()})  # built once: every window asks


def empty_app_events() -> pd.DataFrame:
    return _EMPTY.copy()
