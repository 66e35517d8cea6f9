"""TCP conversations with consistent sequence and acknowledgement numbers, timed as a capture at the uplink sees them.

The capture point sits between the LAN and the Internet: a LAN host answers a packet within a few
hundred microseconds, an external host one round trip later. Data is cut into full segments, the
receiver acknowledges every second one (delayed ACKs), and large transfers may instead be written
as offload-sized segments cut at a snaplen (see ``lab.Profile``).
"""

from __future__ import annotations

import numpy as np

from . import packets as pk
from .lab import MSS, Lab
from .network import Host

SYN_OPTIONS = bytes.fromhex("020405b40103030701010402")  # MSS 1460, NOP, WS 7, NOP NOP, SACK permitted
SYNACK_OPTIONS = bytes.fromhex("020405b40101040201030307")  # MSS 1460, NOP NOP, SACK permitted, NOP, WS 7
SYN_WINDOW = 64240  # window offered in a SYN (unscaled)
WINDOW = 502  # scaled window (x128) once established: ~64 KB
LAN_TURN_US = (60, 400)  # a LAN host answers within this many microseconds (uniform)
ACK_TURN_US = (20, 120)  # a receiver on the LAN acknowledges data this quickly
DEFAULT_RATE_BPS = 40e6  # sending rate of a transfer when the caller gives none


class PatternStream:
    """A long byte stream that repeats one pattern, so each segment's content and checksum are computed once."""

    def __init__(self, pattern: bytes, max_segment: int) -> None:
        self.period = len(pattern)
        self._tiled = pattern * (max_segment // self.period + 2)
        self._sums: dict[tuple[int, int], int] = {}

    def segment(self, offset: int, length: int, keep: int) -> tuple[bytes, int]:
        """(the first ``keep`` bytes, one's-complement sum of all ``length`` bytes) at stream ``offset``."""
        start = offset % self.period
        key = (start, length)
        total = self._sums.get(key)
        if total is None:
            total = self._sums[key] = pk.ones_sum(self._tiled[start : start + length])
        return self._tiled[start : start + min(keep, length)], total

    def prefix(self, length: int) -> bytes:
        """The stream's first ``length`` bytes (at most one period and a segment: bodies small enough to write)."""
        return self._tiled[:length]


class TcpFlow:
    """One TCP connection between ``client`` and ``server``; ``t`` is the time of the last data or handshake packet."""

    def __init__(
        self,
        lab: Lab,
        rng: np.random.Generator,
        client: Host,
        server: Host,
        dport: int,
        t_us: int,
        rtt_us: int,
        *,
        sport: int | None = None,
    ) -> None:
        self.lab = lab
        self.rng = rng
        self.client = client
        self.server = server
        self.sport = client.port() if sport is None else sport
        self.dport = dport
        self.t = t_us
        self.rtt_us = rtt_us
        self.c_seq = int(rng.integers(0, 2**32))
        self.s_seq = int(rng.integers(0, 2**32))
        self._c_macs = lab.net.macs(client, server)
        self._s_macs = lab.net.macs(server, client)
        self._last_client = True
        self.via: bytes | None = None  # a machine-in-the-middle MAC the client's frames pass through, if any

    def turn(self, client_side: bool) -> int:
        """How long after a packet passes the capture point the given side's answer passes it."""
        host = self.client if client_side else self.server
        if host.local:
            return int(self.rng.integers(*LAN_TURN_US))
        return self.rtt_us + int(self.rng.integers(0, max(1, self.rtt_us // 10)))

    def _ack_turn(self, client_side: bool) -> int:
        host = self.client if client_side else self.server
        return int(self.rng.integers(*ACK_TURN_US)) if host.local else self.rtt_us

    def emit(
        self,
        t_us: int,
        from_client: bool,
        flags: int,
        payload: bytes = b"",
        *,
        options: bytes = b"",
        window: int = WINDOW,
        wire_payload_len: int | None = None,
        payload_sum: int | None = None,
        snap_len: int | None = None,
    ) -> None:
        """One segment with the current sequence numbers; does not advance them."""
        if from_client:
            src, dst, sp, dp, seq, ack = self.client, self.server, self.sport, self.dport, self.c_seq, self.s_seq
            smac, dmac = self._c_macs
        else:
            src, dst, sp, dp, seq, ack = self.server, self.client, self.dport, self.sport, self.s_seq, self.c_seq
            smac, dmac = self._s_macs
        ident = src.ip_id()
        hops = [(t_us, smac, dmac, src.ttl)]
        if from_client and self.via is not None:  # to the machine in the middle, which forwards it one hop on
            later = t_us + int(self.rng.integers(40, 300))
            hops = [(t_us, smac, self.via, src.ttl), (later, self.via, dmac, src.ttl - 1)]
        for at, hop_src, hop_dst, ttl in hops:
            frame, wire = pk.tcp_frame(
                hop_src,
                hop_dst,
                src.ip4,
                dst.ip4,
                sp,
                dp,
                seq,
                ack if flags & pk.TCP_ACK else 0,
                flags,
                window,
                payload,
                ident=ident,
                ttl=ttl,
                options=options,
                wire_payload_len=wire_payload_len,
                payload_sum=payload_sum,
                snap_len=snap_len,
            )
            self.lab.add(at, frame, wire)

    def idle_until(self, t_us: int) -> None:
        """Nothing is sent until ``t_us`` (a kept-alive connection waiting for its next request)."""
        self.t = max(self.t, t_us)

    def open(self) -> int:
        """SYN, SYN-ACK, ACK; returns the time of the ACK."""
        self.emit(self.t, True, pk.TCP_SYN, options=SYN_OPTIONS, window=SYN_WINDOW)
        self.c_seq += 1
        t = self.t + self.turn(False)
        self.emit(t, False, pk.TCP_SYN | pk.TCP_ACK, options=SYNACK_OPTIONS, window=65160)
        self.s_seq += 1
        self.t = t + self.turn(True)
        self.emit(self.t, True, pk.TCP_ACK)
        self._last_client = True
        return self.t

    def refuse(self) -> int:
        """SYN answered by RST-ACK (closed port)."""
        self.emit(self.t, True, pk.TCP_SYN, options=SYN_OPTIONS, window=SYN_WINDOW)
        self.c_seq += 1
        self.t += self.turn(False)
        self.emit(self.t, False, pk.TCP_RST | pk.TCP_ACK, window=0)
        return self.t

    def _start(self, from_client: bool, think_us: int) -> int:
        if from_client != self._last_client:
            return self.t + self.turn(from_client) + think_us
        return self.t + think_us

    def send(
        self,
        from_client: bool,
        data: bytes,
        *,
        think_us: int = 0,
        rate_bps: float = DEFAULT_RATE_BPS,
        reply_follows: bool = False,
    ) -> int:
        """``data`` from one side in the profile's segments (wire-size, or offload-size in the corpus), acknowledged
        every second wire-size segment or every offload segment.

        With ``reply_follows`` an odd last segment is left for the reply to acknowledge.
        Returns the time of the last data segment.
        """
        t = self._start(from_client, think_us)
        seg = self.lab.profile.bulk_segment
        gap = int(min(seg, len(data)) * 8e6 / rate_bps)
        ack_every = 2 if seg <= MSS else 1
        count = 0
        for off in range(0, len(data), seg):
            chunk = data[off : off + seg]
            last = off + seg >= len(data)
            self.emit(t, from_client, pk.TCP_ACK | (pk.TCP_PSH if last else 0), chunk)
            self._advance(from_client, len(chunk))
            count += 1
            if (not last and count % ack_every == 0) or (last and not reply_follows):
                self.emit(t + self._ack_turn(not from_client), not from_client, pk.TCP_ACK)
            self.t = t
            t += gap + int(self.rng.integers(0, 1 + gap // 4))
        self._last_client = from_client
        return self.t

    def send_bulk(
        self, from_client: bool, nbytes: int, stream: PatternStream, *, rate_bps: float, think_us: int = 0
    ) -> int:
        """A large transfer of ``nbytes`` from ``stream``, in the profile's segment size (possibly snaplen-cut)."""
        profile = self.lab.profile
        seg = profile.bulk_segment
        keep = seg if profile.snap_len is None else max(0, profile.snap_len - 54)
        t = self._start(from_client, think_us)
        gap = seg * 8e6 / rate_bps
        jitter = self.rng.random(nbytes // seg + 1) * gap * 0.3
        ack_every = 2 if seg <= MSS else 1
        count = 0
        for off in range(0, nbytes, seg):
            n = min(seg, nbytes - off)
            visible, total = stream.segment(off, n, keep)
            last = off + seg >= nbytes
            snap = None if len(visible) == n else profile.snap_len
            self.emit(
                t,
                from_client,
                pk.TCP_ACK | (pk.TCP_PSH if last else 0),
                visible,
                wire_payload_len=n,
                payload_sum=total,
                snap_len=snap,
            )
            self._advance(from_client, n)
            count += 1
            if count % ack_every == 0 or last:
                self.emit(t + self._ack_turn(not from_client), not from_client, pk.TCP_ACK)
            self.t = t
            t += int(gap + jitter[count - 1])
        self._last_client = from_client
        return self.t

    def _advance(self, from_client: bool, n: int) -> None:
        if from_client:
            self.c_seq += n
        else:
            self.s_seq += n

    def close(self, by_client: bool = True, *, after_us: int = 0) -> int:
        """FIN from one side, FIN-ACK back, last ACK; returns the time of the last ACK."""
        t = self.t + self._ack_turn(by_client) + after_us
        self.emit(t, by_client, pk.TCP_FIN | pk.TCP_ACK)
        self._advance(by_client, 1)
        t += self.turn(not by_client)
        self.emit(t, not by_client, pk.TCP_FIN | pk.TCP_ACK)
        self._advance(not by_client, 1)
        t += self.turn(by_client)
        self.emit(t, by_client, pk.TCP_ACK)
        self.t = t
        return t

    def abort(self, by_client: bool = True, *, after_us: int = 0) -> int:
        """RST-ACK from one side (a client closing a kept-alive connection abruptly, a server dropping a login)."""
        self.t += after_us
        self.emit(self.t, by_client, pk.TCP_RST | pk.TCP_ACK, window=0)
        return self.t
