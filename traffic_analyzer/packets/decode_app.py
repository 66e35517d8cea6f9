"""Application protocols: tshark's protocol name for each payload, and the few fields the table keeps.

Which dissector gets a TCP or UDP payload follows tshark 4.0 (``decode_tcp_ports`` and
``decode_udp_ports``): a dissector a heuristic attached to the connection, then the lower
port's dissector, then the higher port's, then the heuristics, then "data". Most dissectors only
need a name and are assigned with numpy. A few need the bytes, in a Python loop over just their
packets: DNS (and mDNS, LLMNR), HTTP (and SSDP), TLS (record reassembly, the SNI of a Client
Hello), FTP replies and the STUN check. For TCP, HTTP messages and TLS records that span
segments are reassembled per direction the way tshark does in-order reassembly: the segments
before the last show as TCP and the fields appear on the segment that completes the message.

Deliberate gaps (the protocol column only): what a TLS handshake's certificates or a
multi-segment binary protocol (SMB, Kerberos, LDAP...) turn into, and dissectors not listed here.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import decode_protocols as P
from .decode_dns import dns_message, dns_tcp_message
from .decode_fields import AppMessage, FieldSet
from .decode_http import (
    CHUNKED,
    MAX_KEPT_BYTES,
    ONE_MORE,
    UNTIL_FIN,
    Chunks,
    HttpConversation,
    http_datagram,
    http_message,
    line_end,
)
from .decode_net import IPPROTO_TCP, IPPROTO_UDP
from .decode_tcp import TH_FIN, TcpVerdict
from .decode_tls import TLS_APP_DATA, TLS_HANDSHAKE, TLS_HEURISTIC_VERSIONS, looks_like_tls, tls_record
from .decode_transport import Transport

# Dissector keys: names of the handlers below, or a protocol name for name-only dissectors.
DNS, MDNS, LLMNR, DNS_TCP, HTTP, SSDP, TLS, FTP, STUN, NBSS = (
    "dns",
    "mdns",
    "llmnr",
    "dns-tcp",
    "http",
    "ssdp",
    "tls",
    "ftp",
    "stun",
    "nbss",
)

HTTP_TCP_PORTS = (80, 3128, 3132, 5985, 8080, 8088, 11371, 1900, 2869, 2710)  # packet-http.c TCP_DEFAULT_RANGE
TLS_TCP_PORTS = (443, 465, 563, 636, 853, 990, 992, 993, 994, 995, 2443, 5061, 5671, 8883)
TCP_PORTS: dict[int, str] = {
    20: "FTP-DATA",
    21: FTP,
    22: "SSH",
    23: "TELNET",
    25: "SMTP",
    53: DNS_TCP,
    88: "KERBEROS",
    110: "POP",
    119: "NNTP",
    135: "DCERPC",
    139: NBSS,
    143: "IMAP",
    179: "BGP",
    389: "LDAP",
    445: NBSS,
    515: "LPD",
    554: "RTSP",
    1433: "TDS",
    1723: "PPTP",
    3306: "MYSQL",
    3389: "TPKT",
    5222: "XMPP",
    5432: "PGSQL",
    6379: "RESP",
    **{port: HTTP for port in HTTP_TCP_PORTS},
    **{port: TLS for port in TLS_TCP_PORTS},
}
UDP_PORTS: dict[int, str] = {
    53: DNS,
    67: "DHCP",
    68: "DHCP",
    69: "TFTP",
    88: "KERBEROS",
    123: "NTP",
    137: "NBNS",
    138: "BROWSER",
    161: "SNMP",
    162: "SNMP",
    389: "CLDAP",
    500: "ISAKMP",
    514: "SYSLOG",
    520: "RIP",
    546: "DHCPV6",
    547: "DHCPV6",
    1194: "OPENVPN",
    1812: "RADIUS",
    1813: "RADIUS",
    1900: SSDP,
    3478: STUN,
    4500: "ISAKMP",
    5060: "SIP",
    5350: "PORTCONTROL",
    5351: "PORTCONTROL",
    5353: MDNS,
    5355: LLMNR,
    17500: "JSON",
}
STUN_COOKIE = 0x2112A442  # RFC 5389 magic cookie
_PY_HANDLERS = {DNS, MDNS, LLMNR, DNS_TCP, HTTP, SSDP, TLS, STUN, NBSS}
_DNS_NAMES = {DNS: "DNS", MDNS: "MDNS", LLMNR: "LLMNR", DNS_TCP: "DNS"}


def _port_table(ports: dict[int, str]) -> np.ndarray:
    table = np.zeros(65536, dtype=np.int64)
    for port, key in ports.items():
        table[port] = _key_id(key)
    return table


_KEYS: list[str] = [""]


def _key_id(key: str) -> int:
    if key not in _KEYS:
        _KEYS.append(key)
    return _KEYS.index(key)


_TCP_TABLE = _port_table(TCP_PORTS)
_UDP_TABLE = _port_table(UDP_PORTS)


class _Direction:
    """One direction of a TCP connection: its pending multi-segment PDU (tshark's MSP)."""

    __slots__ = ("msp_seq", "msp_end", "chunks", "filled", "waiting", "message", "parser")

    def __init__(self) -> None:
        self.msp_seq = -1  # sequence number where the pending PDU starts (-1: none)
        self.msp_end = ONE_MORE  # bytes the PDU needs from msp_seq, or ONE_MORE / UNTIL_FIN
        self.chunks: dict[int, bytes] = {}  # offset from msp_seq -> bytes (kept up to MAX_KEPT_BYTES)
        self.filled = 0  # contiguous bytes present from msp_seq
        self.waiting: list[tuple[int, int]] = []  # (offset, length) of segments past a hole
        self.message: AppMessage | None = None  # already dissected headers of the pending HTTP message
        self.parser: Chunks | None = None

    def start(self, seq: int, data: bytes, need, message: AppMessage | None = None) -> None:
        self.parser = need if isinstance(need, Chunks) else None
        self.msp_seq, self.msp_end, self.message = seq, CHUNKED if self.parser else need, message
        self.chunks, self.filled, self.waiting = {}, 0, []
        if self.parser is None:
            self.add(0, data)
        else:
            self.filled = len(data)

    def limit(self) -> int:
        """Offsets below this belong to the pending PDU."""
        if self.msp_end == ONE_MORE:
            return self.filled + 1
        if self.msp_end == UNTIL_FIN:
            return 1 << 31
        if self.msp_end == CHUNKED:
            return self.filled + 1
        return self.msp_end

    def add(self, offset: int, data: bytes) -> None:
        if offset < MAX_KEPT_BYTES:
            self.chunks.setdefault(offset, data[: MAX_KEPT_BYTES - offset])
        if offset > self.filled:
            self.waiting.append((offset, len(data)))
            return
        self.filled = max(self.filled, offset + len(data))
        while self.waiting:
            joined = [(o, n) for o, n in self.waiting if o <= self.filled]
            if not joined:
                break
            self.filled = max([self.filled] + [o + n for o, n in joined])
            self.waiting = [(o, n) for o, n in self.waiting if o > self.filled]

    def assembled(self) -> bytes:
        size = min(self.filled, MAX_KEPT_BYTES)
        out = bytearray(size)
        for offset, chunk in sorted(self.chunks.items(), reverse=True):
            out[offset : offset + len(chunk)] = chunk[: max(0, size - offset)]
        return bytes(out)

    def clear(self) -> None:
        self.msp_seq, self.chunks, self.filled, self.waiting, self.message, self.parser = -1, {}, 0, [], None, None


MAX_CONNECTIONS_KEPT = 50_000  # per-connection reassembly states kept; a live run sees millions of connections


def _forget_oldest(states: dict) -> None:
    """Bound per-connection state: past MAX_CONNECTIONS_KEPT, drop the oldest quarter.

    Connections end without telling the decoder (FIN and RST are not seen in order, or not at all),
    so without a bound every connection of a long live run stays in memory. The oldest are almost
    always over; one that is not loses its half-reassembled message, as in tshark under memory limits.
    """
    if len(states) > MAX_CONNECTIONS_KEPT:
        for key in list(itertools.islice(states, MAX_CONNECTIONS_KEPT // 4)):
            del states[key]


class AppDecoder:
    """Protocol names and application fields of TCP/UDP payloads; keeps per-connection state."""

    def __init__(self) -> None:
        self._conversations: dict[int, str] = {}  # connection id -> dissector chosen by a heuristic
        self._streams: dict[tuple[int, int], _Direction] = {}
        self._http: dict[int, HttpConversation] = {}  # per connection: what tshark keeps of its HTTP
        self._until_fin: set[int] = set()  # connections with a response that ends with the connection

    def dissect(
        self,
        buf: np.ndarray,
        t: Transport,
        verdict: TcpVerdict,
        fields: FieldSet,
        protocol: np.ndarray,
        in_error: bool = False,
    ) -> None:
        """Name the highest protocol of every payload in ``t`` and add its application fields."""
        tcp = t.proto == IPPROTO_TCP
        udp = t.proto == IPPROTO_UDP
        go = t.has_payload & verdict.dissect
        keepalive = t.has_payload & tcp & verdict.keepalive
        protocol[t.rows[keepalive]] = P.DATA
        lo, hi = np.minimum(t.sport, t.dport), np.maximum(t.sport, t.dport)
        key_lo = np.where(tcp, _TCP_TABLE[lo], _UDP_TABLE[lo])
        key_hi = np.where(tcp, _TCP_TABLE[hi], _UDP_TABLE[hi])
        key = np.where(key_lo > 0, key_lo, key_hi)
        known_conv = np.zeros(len(key), dtype=bool)
        if self._conversations:
            ids = np.fromiter(self._conversations.keys(), dtype=np.int64, count=len(self._conversations))
            keys = np.array([_key_id(k) for k in self._conversations.values()], dtype=np.int64)
            order = np.argsort(ids)
            ids, keys = ids[order], keys[order]
            pos = np.minimum(np.searchsorted(ids, verdict.connection), len(ids) - 1)
            known_conv = tcp & (ids[pos] == verdict.connection)
            key = np.where(known_conv, keys[pos], key)

        ftp = go & tcp & (key == _key_id(FTP))
        if ftp.any():
            self._ftp(buf, t, fields, protocol, np.flatnonzero(ftp))
        python = np.isin(key, [_key_id(k) for k in _PY_HANDLERS])
        names = go & (key > 0) & ~python & ~ftp
        if names.any():
            codes = np.array([P.protocol_id(k) if k.isupper() else P.DATA for k in _KEYS], dtype=np.int64)
            protocol[t.rows[names]] = codes[key[names]]
        heuristic = go & (key == 0)
        protocol[t.rows[heuristic]] = P.DATA
        # Out-of-order segments are not dissected, but they may fill a pending reassembly; a FIN ends
        # an HTTP response that runs until the connection closes.
        ooo = t.has_payload & tcp & verdict.out_of_order & (python | (key == 0))
        fin_rows = ~t.has_payload & tcp & ((t.flags & TH_FIN) != 0) & verdict.dissect
        if fin_rows.any():
            http_conns = verdict.connection[go & ((key == _key_id(HTTP)) | heuristic)]
            waiting = np.fromiter(self._until_fin, dtype=np.int64, count=len(self._until_fin))
            fin_rows &= np.isin(verdict.connection, np.concatenate([http_conns, waiting]))
        todo = np.flatnonzero((go & (python | heuristic)) | ooo | fin_rows)
        if len(todo) == 0:
            return
        # UDP payloads on unknown ports only matter for the STUN heuristic: check its header first.
        if (heuristic & udp).any():
            todo = todo[~(heuristic[todo] & udp[todo]) | _stun_candidates(buf, t, todo)]
        tcp_heuristic = (heuristic | ooo) & tcp & (key == 0)
        if tcp_heuristic.any():
            # A heuristic hit sets the dissector of its whole connection: keep the other segments of
            # connections that have a candidate.
            hit = tcp_heuristic[todo] & _text_or_tls_candidates(buf, t, todo)
            conns = np.unique(verdict.connection[todo[hit]])
            keep = ~tcp_heuristic[todo] | np.isin(verdict.connection[todo], conns)
            todo = todo[keep]
        self._loop(buf, t, verdict, fields, protocol, todo, key, in_error)

    @staticmethod
    def _ftp(buf, t: Transport, fields: FieldSet, protocol: np.ndarray, idx: np.ndarray) -> None:
        """dissect_ftp(), vectorised: a reply (from the lower, FTP port) starting with 3 digits has a code."""
        protocol[t.rows[idx]] = P.protocol_id("FTP")
        b, cap = _first_bytes(buf, t, idx, 3)
        digits = ((b >= 0x30) & (b <= 0x39)).all(axis=1) & (cap >= 3)
        reply = t.sport[idx] < t.dport[idx]  # match_uint is the lower port; equal ports count as a request
        code = (b[:, 0] - 0x30) * 100 + (b[:, 1] - 0x30) * 10 + (b[:, 2] - 0x30)
        ok = digits & reply
        fields.put_rows("ftp.response.code", t.rows[idx[ok]], code[ok])

    def _loop(self, buf, t, verdict, fields, protocol, todo, key, in_error) -> None:
        mem = memoryview(buf)
        rows = t.rows
        found: dict[str, dict[int, object]] = {}
        start, cap, rep = t.payload_start, t.payload_cap, t.payload_rep
        for i in todo.tolist():
            data = bytes(mem[start[i] : start[i] + cap[i]])
            k = _KEYS[key[i]]
            is_tcp = t.proto[i] == IPPROTO_TCP
            messages: list[AppMessage] | None
            if not is_tcp:
                messages = self._udp(k, data, int(rep[i]))
            else:
                messages = self._tcp(k, data, i, t, verdict, bool(t.whole[i]) and not in_error)
            if not messages:
                continue
            row = int(rows[i])
            for msg in messages:
                for name, value in msg.values.items():
                    found.setdefault(name, {}).setdefault(row, value)
            protocol[row] = P.protocol_id(messages[-1].name)
        for name, values in found.items():
            rows_found = np.fromiter(values.keys(), dtype=np.int64, count=len(values))
            fields.put_rows(name, rows_found, list(values.values()))

    # ------------------------------------------------------------------ UDP

    @staticmethod
    def _udp(k: str, data: bytes, rep: int) -> list[AppMessage]:
        if k in (DNS, MDNS, LLMNR):
            return [dns_message(data, rep, _DNS_NAMES[k], tcp=False)]
        if k == SSDP:
            msg = http_datagram(data)
            msg.name = "SSDP"
            return [msg]
        if k == STUN:
            return [AppMessage("STUN" if _is_stun(data, rep, heuristic=False) else "DATA")]
        # an unregistered port: the STUN heuristic
        return [AppMessage("STUN" if _is_stun(data, rep, heuristic=True) else "DATA")]

    # ------------------------------------------------------------------ TCP

    def _tcp(self, k, data, i, t: Transport, verdict: TcpVerdict, can_desegment) -> list[AppMessage] | None:
        conn = int(verdict.connection[i])
        k = self._conversations.get(conn, k)
        ooo = bool(verdict.out_of_order[i])
        if k == "":
            if ooo or not data:
                return None
            k = self._heuristic(data)
            if not k:
                return [AppMessage("DATA")]
            self._conversations[conn] = k
            _forget_oldest(self._conversations)
        if k not in (TLS, HTTP, DNS_TCP):
            if ooo or not data:
                return None
            if k == NBSS:
                return [AppMessage(_smb_name(data))]
            return [AppMessage(k if k.isupper() else "DATA")]
        key = (conn, int(verdict.direction[i]))
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Direction()
            _forget_oldest(self._streams)
        seq = int(t.seq[i])
        fin = bool(t.flags[i] & TH_FIN)
        if stream.msp_seq >= 0:
            offset = (seq - stream.msp_seq) & 0xFFFFFFFF
            if offset < stream.limit() or (not data and stream.msp_end == UNTIL_FIN):
                result = self._continue(k, stream, conn, offset, data, can_desegment, fin)
                # An out-of-order segment may complete the PDU, but tshark does not dissect it there.
                return [AppMessage("TCP")] if ooo else result
            if ooo:
                return None
            stream.clear()
        if ooo or not data:
            return None
        return self._pdus(k, stream, conn, data, seq, can_desegment, fin, fresh=True)

    def _continue(self, k, stream: _Direction, conn, offset, data, can_desegment, fin) -> list[AppMessage]:
        """A segment inside the pending PDU: add it; dissect the PDU if this completes it."""
        end = stream.msp_end
        if end == CHUNKED:
            if offset != stream.filled:
                return [AppMessage("TCP")]  # a hole: in-order dechunking only
            done = stream.parser.feed(data)
            stream.filled += len(data)
            if done < 0:
                return [AppMessage("TCP")]
            message, base = stream.message, stream.msp_seq
            tail_seq = (base + offset + done) & 0xFFFFFFFF
            stream.clear()
            rest = (
                self._pdus(k, stream, conn, data[done:], tail_seq, can_desegment, fin, False)
                if done < len(data)
                else []
            )
            return [message] + [m for m in rest if m.name != "TCP"]
        stream.add(offset, data)
        if end == UNTIL_FIN:
            if not fin:
                return [AppMessage("TCP")]
            message = stream.message
            stream.clear()
            return [message] if message is not None else [AppMessage("TCP")]
        if end != ONE_MORE:
            if stream.filled < end:
                return [AppMessage("TCP")]
            message, base = stream.message, stream.msp_seq
            tail = data[max(0, end - offset) :] if offset + len(data) > end else b""
            if message is None:
                buffer = stream.assembled()
                stream.clear()
                return self._pdus(k, stream, conn, buffer, base, can_desegment, fin, fresh=False)
            stream.clear()
            rest = self._pdus(k, stream, conn, tail, (base + end) & 0xFFFFFFFF, can_desegment, fin, False)
            return [message] + [m for m in rest if m.name != "TCP"] if tail else [message]
        buffer, base = stream.assembled(), stream.msp_seq
        too_big = stream.filled >= MAX_KEPT_BYTES
        stream.clear()
        return self._pdus(k, stream, conn, buffer, base, can_desegment and not too_big, fin, fresh=False)

    def _pdus(
        self, k, stream: _Direction, conn, buffer: bytes, base: int, can_desegment, fin, fresh
    ) -> list[AppMessage]:
        """Dissect the PDUs in buffer (which starts at sequence number base); keep an incomplete tail."""
        messages: list[AppMessage] = []
        offset = 0
        while offset < len(buffer):
            if k == TLS:
                result = tls_record(buffer, offset, can_desegment)
            elif k == DNS_TCP:
                result = dns_tcp_message(buffer, offset, can_desegment)
            else:
                http = self._http.get(conn)
                if http is None:
                    http = self._http[conn] = HttpConversation()
                    _forget_oldest(self._http)
                result = http_message(buffer, offset, can_desegment, fin, http)
            if result is None or isinstance(result, int):
                stream.start((base + offset) & 0xFFFFFFFF, buffer[offset:], ONE_MORE if result is None else result)
                break
            if isinstance(result[0], str):  # ("wait", bytes needed or UNTIL_FIN, message so far, is_request)
                stream.start((base + offset) & 0xFFFFFFFF, buffer[offset:], result[1], result[2])
                if result[1] == UNTIL_FIN:
                    self._until_fin.add(conn)
                break
            msg, used = result[0], result[1]
            messages.append(msg)
            if used <= 0:
                break
            offset += used
        if messages:
            return messages
        # Nothing complete: TLS and DNS keep their layer in the frame that started the PDU, HTTP does not.
        if fresh and k in (TLS, DNS_TCP):
            return [AppMessage("TLS" if k == TLS else "DNS")]
        return [AppMessage("TCP")]

    @staticmethod
    def _heuristic(data: bytes) -> str:
        """tshark's enabled TCP heuristics that matter here: TLS records, then HTTP lines."""
        if looks_like_tls(data):
            return TLS
        end, _ = line_end(data, 0)
        if end >= 0 and end != 8:
            pos = end - 8 if end >= 8 else len(data) + end - 8  # a negative tvb offset counts from the end
            if data[pos : pos + 7].upper() == b"HTTP/1." or data[:7].upper() == b"HTTP/1.":
                return HTTP
        return ""


# ---------------------------------------------------------------------- candidates (vectorised pre-checks)


def _first_bytes(buf: np.ndarray, t: Transport, rows: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows x count) first payload bytes (0 past the captured end) and the captured lengths."""
    cap = t.payload_cap[rows]
    pos = t.payload_start[rows][:, None] + np.arange(count)
    out = buf[np.minimum(pos, len(buf) - 1)].astype(np.int64)
    out[np.arange(count)[None, :] >= cap[:, None]] = 0
    return out, cap


def _stun_candidates(buf, t, rows) -> np.ndarray:
    b, cap = _first_bytes(buf, t, rows, 8)
    cookie = (b[:, 4] << 24) | (b[:, 5] << 16) | (b[:, 6] << 8) | b[:, 7]
    return (cap >= 20) & ((b[:, 0] & 0xC0) == 0) & (cookie == STUN_COOKIE)


def _text_or_tls_candidates(buf, t, rows) -> np.ndarray:
    b, cap = _first_bytes(buf, t, rows, 5)
    tls = (
        (cap >= 5)
        & np.isin(b[:, 0], (TLS_HANDSHAKE, TLS_APP_DATA))
        & np.isin((b[:, 1] << 8) | b[:, 2], TLS_HEURISTIC_VERSIONS)
    )
    text = (b[:, 0] >= 0x20) & (b[:, 0] < 0x7F)
    return tls | text


# ---------------------------------------------------------------------- small ones


def _is_stun(data: bytes, rep: int, heuristic: bool) -> bool:
    """dissect_stun_message()'s checks (TURN channel data only on the STUN port)."""
    if len(data) < 4:
        return False
    msg_type = (data[0] << 8) | data[1]
    length = (data[2] << 8) | data[3]
    if msg_type & 0xC000:
        if heuristic or (msg_type & 0x8000 and msg_type != 0xFF10):
            return False
        return rep in (length + 4, (length + 4 + 3) & ~3)
    if len(data) < 20:
        return False
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    cookie = int.from_bytes(data[4:8], "big")
    return method <= 0xFF and cookie == STUN_COOKIE and rep == length + 20


def _smb_name(data: bytes) -> str:
    if len(data) >= 8 and data[0] == 0:
        if data[4:8] == b"\xfeSMB":
            return "SMB2"
        if data[4:8] == b"\xffSMB":
            return "SMB"
    return "NBSS"
