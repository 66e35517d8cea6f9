"""Application protocols: tshark's protocol name for each payload, and the few fields the table keeps.

Which dissector gets a TCP or UDP payload follows tshark 4.0 (:mod:`.decode_dispatch`). Most
dissectors only need a name and are assigned with numpy. A few need the bytes, in a Python loop
over just their packets: DNS (and mDNS, LLMNR), HTTP (and SSDP), TLS (the SNI of a Client Hello),
FTP replies and the STUN check. HTTP messages, TLS records and DNS messages that span TCP
segments go through :mod:`.decode_reassembly`.

Deliberate gaps (the protocol column only): what a TLS handshake's certificates or a
multi-segment binary protocol (SMB, Kerberos, LDAP...) turn into, and dissectors not listed here.
"""

from __future__ import annotations

import numpy as np

from . import decode_protocols as P
from .decode_dispatch import (
    DNS,
    DNS_NAMES,
    DNS_TCP,
    FTP,
    HTTP,
    KEYS,
    LLMNR,
    MDNS,
    NBSS,
    PY_HANDLERS,
    SSDP,
    STUN,
    TCP_TABLE,
    TLS,
    UDP_TABLE,
    first_bytes,
    heuristic_dissector,
    is_stun,
    key_id,
    smb_name,
    stun_candidates,
    text_or_tls_candidates,
)
from .decode_dns import dns_message
from .decode_fields import AppMessage, FieldSet
from .decode_http import http_datagram
from .decode_net import IPPROTO_TCP, IPPROTO_UDP
from .decode_reassembly import TcpReassembly, forget_oldest
from .decode_tcp import TH_FIN, TcpVerdict
from .decode_transport import Transport

REASSEMBLED = frozenset((TLS, HTTP, DNS_TCP))  # dissector keys whose PDUs may span TCP segments


class AppDecoder:
    """Protocol names and application fields of TCP/UDP payloads; keeps per-connection state."""

    def __init__(self) -> None:
        self._conversations: dict[int, str] = {}  # connection id -> dissector chosen by a heuristic
        self._reassembly = TcpReassembly()

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
        key_lo = np.where(tcp, TCP_TABLE[lo], UDP_TABLE[lo])
        key_hi = np.where(tcp, TCP_TABLE[hi], UDP_TABLE[hi])
        key = np.where(key_lo > 0, key_lo, key_hi)
        known_conv = np.zeros(len(key), dtype=bool)
        if self._conversations:
            ids = np.fromiter(self._conversations.keys(), dtype=np.int64, count=len(self._conversations))
            keys = np.array([key_id(k) for k in self._conversations.values()], dtype=np.int64)
            order = np.argsort(ids)
            ids, keys = ids[order], keys[order]
            pos = np.minimum(np.searchsorted(ids, verdict.connection), len(ids) - 1)
            known_conv = tcp & (ids[pos] == verdict.connection)
            key = np.where(known_conv, keys[pos], key)

        ftp = go & tcp & (key == key_id(FTP))
        if ftp.any():
            self._ftp(buf, t, fields, protocol, np.flatnonzero(ftp))
        python = np.isin(key, [key_id(k) for k in PY_HANDLERS])
        names = go & (key > 0) & ~python & ~ftp
        if names.any():
            codes = np.array([P.protocol_id(k) if k.isupper() else P.DATA for k in KEYS], dtype=np.int64)
            protocol[t.rows[names]] = codes[key[names]]
        heuristic = go & (key == 0)
        protocol[t.rows[heuristic]] = P.DATA
        # Out-of-order segments are not dissected, but they may fill a pending reassembly; a FIN ends
        # an HTTP response that runs until the connection closes.
        ooo = t.has_payload & tcp & verdict.out_of_order & (python | (key == 0))
        fin_rows = ~t.has_payload & tcp & ((t.flags & TH_FIN) != 0) & verdict.dissect
        if fin_rows.any():
            http_conns = verdict.connection[go & ((key == key_id(HTTP)) | heuristic)]
            until_fin = self._reassembly.until_fin
            waiting = np.fromiter(until_fin, dtype=np.int64, count=len(until_fin))
            fin_rows &= np.isin(verdict.connection, np.concatenate([http_conns, waiting]))
        todo = np.flatnonzero((go & (python | heuristic)) | ooo | fin_rows)
        if len(todo) == 0:
            return
        # UDP payloads on unknown ports only matter for the STUN heuristic: check its header first.
        if (heuristic & udp).any():
            todo = todo[~(heuristic[todo] & udp[todo]) | stun_candidates(buf, t, todo)]
        tcp_heuristic = (heuristic | ooo) & tcp & (key == 0)
        if tcp_heuristic.any():
            # A heuristic hit sets the dissector of its whole connection: keep the other segments of
            # connections that have a candidate.
            hit = tcp_heuristic[todo] & text_or_tls_candidates(buf, t, todo)
            conns = np.unique(verdict.connection[todo[hit]])
            keep = ~tcp_heuristic[todo] | np.isin(verdict.connection[todo], conns)
            todo = todo[keep]
        self._loop(buf, t, verdict, fields, protocol, todo, key, in_error)

    @staticmethod
    def _ftp(buf, t: Transport, fields: FieldSet, protocol: np.ndarray, idx: np.ndarray) -> None:
        """dissect_ftp(), vectorised: a reply (from the lower, FTP port) starting with 3 digits has a code."""
        protocol[t.rows[idx]] = P.protocol_id("FTP")
        b, cap = first_bytes(buf, t, idx, 3)
        digits = ((b >= 0x30) & (b <= 0x39)).all(axis=1) & (cap >= 3)
        reply = t.sport[idx] < t.dport[idx]  # match_uint is the lower port; equal ports count as a request
        code = (b[:, 0] - 0x30) * 100 + (b[:, 1] - 0x30) * 10 + (b[:, 2] - 0x30)
        ok = digits & reply
        fields.put_rows("ftp.response.code", t.rows[idx[ok]], code[ok])

    def _loop(self, buf, t, verdict, fields, protocol, todo, key, in_error) -> None:
        """Dissect the payloads of ``todo`` one by one: datagrams, then segments in capture order (the
        reassembly state runs across them; datagrams leave no state).

        Every per-packet value is taken out of its array once, as a list: indexing numpy arrays one
        element at a time costs more than the dissection of a typical segment. A segment that only
        extends a pending TLS record or HTTP body is counted without slicing its bytes.
        """
        mem = memoryview(buf)
        found: dict[str, dict[int, object]] = {}
        named_rows: list[int] = []
        names: list[str] = []

        def add(row: int, messages: list[AppMessage] | None) -> None:
            if messages:
                for msg in messages:
                    for name, value in msg.values.items():
                        found.setdefault(name, {}).setdefault(row, value)
                named_rows.append(row)
                names.append(messages[-1].name)

        tcp = t.proto[todo] == IPPROTO_TCP
        keys = np.array(KEYS, dtype=object)[key[todo]]
        start = t.payload_start[todo]
        end = start + t.payload_cap[todo]
        udp, udp_messages = ~tcp, self._udp
        for row, k, lo, hi, rep in zip(
            *(c[udp].tolist() for c in (t.rows[todo], keys, start, end, t.payload_rep[todo])), strict=True
        ):
            add(row, udp_messages(k, bytes(mem[lo:hi]), rep))

        counted: list[int] = []  # segments inside a pending PDU: shown as TCP
        conversations, counts_only, tcp_messages = self._conversations, self._reassembly.counts_only, self._tcp
        columns = (
            t.rows[todo], keys, start, end, verdict.connection[todo], verdict.out_of_order[todo],
            verdict.direction[todo], t.seq[todo], (t.flags[todo] & TH_FIN) != 0, t.whole[todo] & (not in_error),
        )  # fmt: skip
        for row, k, lo, hi, conn, ooo, direction, seq, fin, whole in zip(
            *(c[tcp].tolist() for c in columns), strict=True
        ):
            k = conversations.get(conn, k)
            if k in REASSEMBLED and not ooo and hi > lo and counts_only(conn, direction, seq, hi - lo, fin):
                counted.append(row)
            else:
                add(row, tcp_messages(k, bytes(mem[lo:hi]), conn, ooo, direction, seq, fin, whole))

        protocol[np.array(counted, dtype=np.int64)] = P.TCP
        if named_rows:
            codes = {name: P.protocol_id(name) for name in dict.fromkeys(names)}
            protocol[np.array(named_rows, dtype=np.int64)] = [codes[name] for name in names]
        for name, values in found.items():
            rows_found = np.fromiter(values.keys(), dtype=np.int64, count=len(values))
            fields.put_rows(name, rows_found, list(values.values()))

    @staticmethod
    def _udp(k: str, data: bytes, rep: int) -> list[AppMessage]:
        if k in (DNS, MDNS, LLMNR):
            return [dns_message(data, rep, DNS_NAMES[k], tcp=False)]
        if k == SSDP:
            msg = http_datagram(data)
            msg.name = "SSDP"
            return [msg]
        if k == STUN:
            return [AppMessage("STUN" if is_stun(data, rep, heuristic=False) else "DATA")]
        # an unregistered port: the STUN heuristic
        return [AppMessage("STUN" if is_stun(data, rep, heuristic=True) else "DATA")]

    def _tcp(
        self, k: str, data: bytes, conn: int, ooo: bool, direction: int, seq: int, fin: bool, can_desegment: bool
    ) -> list[AppMessage] | None:
        k = self._conversations.get(conn, k)
        if k == "":
            if ooo or not data:
                return None
            k = heuristic_dissector(data)
            if not k:
                return [AppMessage("DATA")]
            self._conversations[conn] = k
            forget_oldest(self._conversations)
        if k not in REASSEMBLED:
            if ooo or not data:
                return None
            if k == NBSS:
                return [AppMessage(smb_name(data))]
            return [AppMessage(k if k.isupper() else "DATA")]
        return self._reassembly.segment(k, conn, direction, seq, fin, data, ooo, can_desegment)
