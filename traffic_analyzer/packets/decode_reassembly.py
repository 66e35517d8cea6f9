"""TCP reassembly of application PDUs per connection and direction, the way tshark's in-order reassembly does it.

A TLS record, a DNS-over-TCP message or an HTTP message may span segments: the segments before the
last show as TCP and the message's fields appear on the segment that completes it (tshark's
multi-segment PDU, MSP). The PDU parsers (:func:`~.decode_tls.tls_record`,
:func:`~.decode_dns.dns_tcp_message`, :func:`~.decode_http.http_message`) say what they found as a
:class:`~.decode_fields.Pdu`; this module keeps the pending bytes between segments. A segment in the
middle of a PDU whose bytes nothing reads again (a TLS record's but a handshake's, an HTTP body's) is only
counted (:meth:`TcpReassembly.counts_only`), so most segments of a bulk transfer are never sliced or parsed.
"""

from __future__ import annotations

import itertools

from .decode_dispatch import DNS_TCP, TLS
from .decode_dns import dns_tcp_message
from .decode_fields import AppMessage, Pdu
from .decode_http import CHUNKED, MAX_KEPT_BYTES, ONE_MORE, UNTIL_FIN, Chunks, HttpConversation, http_message
from .decode_tls import tls_record


class _Direction:
    """One direction of a TCP connection: its pending multi-segment PDU (tshark's MSP)."""

    __slots__ = ("msp_seq", "msp_end", "chunks", "filled", "waiting", "message", "parser", "body_unread")

    def __init__(self) -> None:
        self.msp_seq = -1  # sequence number where the pending PDU starts (-1: none)
        self.msp_end = ONE_MORE  # bytes the PDU needs from msp_seq, or ONE_MORE / UNTIL_FIN
        self.chunks: dict[int, bytes] = {}  # offset from msp_seq -> bytes (kept up to MAX_KEPT_BYTES)
        self.filled = 0  # contiguous bytes present from msp_seq
        self.waiting: list[tuple[int, int]] = []  # (offset, length) of segments past a hole
        self.message: AppMessage | None = None  # already dissected headers of the pending HTTP message
        self.parser: Chunks | None = None
        self.body_unread = False  # the bytes before the PDU's end are not read again (TcpReassembly.counts_only)

    def start(self, seq: int, data: bytes, pdu: Pdu) -> None:
        """Wait for the rest of the PDU that starts at ``seq`` with ``data`` (what its parser asked for)."""
        need, message = pdu.need, pdu.message
        self.parser = need if isinstance(need, Chunks) else None
        self.msp_seq, self.msp_end, self.message = seq, CHUNKED if self.parser else need, message
        self.chunks, self.filled, self.waiting = {}, 0, []
        # Nothing reads a PDU's middle again when its end is known and either its headers are dissected
        # already (an HTTP body: only the bytes past the end are parsed) or its parser skips it (a TLS
        # record but a handshake), nor a response that runs until the connection ends.
        self.body_unread = need == UNTIL_FIN or (
            self.parser is None and need > 0 and (message is not None or not pdu.body_read)
        )
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

    def add_unread(self, offset: int, size: int) -> None:
        """add() for in-order bytes nothing reads again: only their place is kept.

        The place still counts: as in add(), a later segment at the same offset keeps no bytes of its own.
        """
        if offset < MAX_KEPT_BYTES:
            self.chunks.setdefault(offset, b"")
        self.filled = offset + size

    def assembled(self) -> bytes:
        size = min(self.filled, MAX_KEPT_BYTES)
        out = bytearray(size)
        for offset, chunk in sorted(self.chunks.items(), reverse=True):
            out[offset : offset + len(chunk)] = chunk[: max(0, size - offset)]
        return bytes(out)

    def clear(self) -> None:
        self.msp_seq, self.chunks, self.filled, self.waiting, self.message, self.parser = -1, {}, 0, [], None, None
        self.body_unread = False


MAX_CONNECTIONS_KEPT = 50_000  # per-connection reassembly states kept; a live run sees millions of connections


def forget_oldest(states: dict) -> None:
    """Bound per-connection state: past MAX_CONNECTIONS_KEPT, drop the oldest quarter.

    Connections end without telling the decoder (FIN and RST are not seen in order, or not at all),
    so without a bound every connection of a long live run stays in memory. The oldest are almost
    always over; one that is not loses its half-reassembled message, as in tshark under memory limits.
    """
    if len(states) > MAX_CONNECTIONS_KEPT:
        for key in list(itertools.islice(states, MAX_CONNECTIONS_KEPT // 4)):
            del states[key]


class TcpReassembly:
    """Pending PDUs of each connection direction, and what tshark keeps of each HTTP connection."""

    def __init__(self) -> None:
        self._streams: dict[tuple[int, int], _Direction] = {}
        self._http: dict[int, HttpConversation] = {}  # per connection: what tshark keeps of its HTTP
        self.until_fin: set[int] = set()  # connections with a response that ends with the connection

    def forget_finished(self) -> None:
        """Keep in ``until_fin`` only the connections whose reassembly state is kept: a FIN of one whose state
        was forgotten completes nothing, and a live run sees millions of such responses (each window also
        looks its FIN segments up in this set)."""
        self.until_fin &= {conn for conn, _ in self._streams}

    def counts_only(self, conn: int, direction: int, seq: int, size: int, fin: bool) -> bool:
        """Count an in-order segment of ``size`` bytes (> 0) that only extends its direction's pending PDU.

        True when the segment neither completes the PDU nor is read again (the middle of a TLS record or
        of an HTTP body): its frame shows as TCP, as segment() would say, and the caller need not slice
        its bytes. False: nothing changed, dissect it with segment().
        """
        stream = self._streams.get((conn, direction))
        if stream is None or not stream.body_unread or stream.waiting:
            return False
        offset = (seq - stream.msp_seq) & 0xFFFFFFFF
        if offset != stream.filled:
            return False
        if stream.msp_end == UNTIL_FIN:
            if fin or offset >= stream.limit():
                return False
        elif offset + size >= stream.msp_end:
            return False
        stream.add_unread(offset, size)
        return True

    def segment(
        self, k: str, conn: int, direction: int, seq: int, fin: bool, data: bytes, ooo: bool, can_desegment: bool
    ) -> list[AppMessage] | None:
        """The messages a segment of a TLS, HTTP or DNS-over-TCP connection completes (None: not dissected)."""
        key = (conn, direction)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Direction()
            forget_oldest(self._streams)
            if len(self.until_fin) > 2 * MAX_CONNECTIONS_KEPT:
                self.forget_finished()
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
                    forget_oldest(self._http)
                result = http_message(buffer, offset, can_desegment, fin, http)
            if result.need is not None:
                stream.start((base + offset) & 0xFFFFFFFF, buffer[offset:], result)
                if result.need == UNTIL_FIN:
                    self.until_fin.add(conn)
                break
            messages.append(result.message)
            if result.used <= 0:
                break
            offset += result.used
        if messages:
            return messages
        # Nothing complete: TLS and DNS keep their layer in the frame that started the PDU, HTTP does not.
        if fresh and k in (TLS, DNS_TCP):
            return [AppMessage("TLS" if k == TLS else "DNS")]
        return [AppMessage("TCP")]
