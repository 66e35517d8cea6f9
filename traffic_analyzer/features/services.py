"""Application protocol names as Zeek's conn.log ``service`` and the protocol mix show them.

tshark names a packet by its highest dissector, and an HTTP message by its body's media dissector
(DATA-TEXT-LINES for HTML, JSON, PNG, MEDIA ...): a flow of web traffic became service
``data-text-lines`` and the overview listed JSON and MEDIA where Zeek and a person say HTTP
(issue 15 item 8). Those names on TCP are HTTP here; the others map to Zeek's analyzer names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..packets.decode_http import MEDIA_NAMES

# tshark's dissectors of HTTP bodies; DATA, DNS (DNS over TCP) and SDP (SIP over TCP) also run outside HTTP.
HTTP_BODY_PROTOCOLS = frozenset(MEDIA_NAMES.values()) - {"DATA", "DNS", "SDP"} | {"MEDIA", "MIME_MULTIPART"}
# tshark protocol name -> Zeek conn.log service, where lower case is not already Zeek's name.
ZEEK_SERVICE_NAMES = {
    "TLS": "ssl",
    "SSL": "ssl",
    "MDNS": "dns",
    "SMB2": "smb",
    "NBNS": "netbios-ns",
    "NBSS": "netbios-ssn",
    "FTP-DATA": "ftp-data",
    "KRB5": "krb",
    "DCERPC": "dce_rpc",
    "IMF": "smtp",  # an e-mail message, carried by SMTP
    "POP": "pop3",
    "PGSQL": "postgresql",
}


def http_named(protocol: pd.Series, tcp: np.ndarray | pd.Series) -> pd.Series:
    """``protocol`` with tshark's HTTP body dissectors on TCP named HTTP."""
    return protocol.mask(protocol.isin(HTTP_BODY_PROTOCOLS) & np.asarray(tcp, dtype=bool), "HTTP")


def zeek_service(name: str) -> str:
    """Zeek's conn.log service name of a tshark protocol name."""
    return ZEEK_SERVICE_NAMES.get(name, name.lower())
