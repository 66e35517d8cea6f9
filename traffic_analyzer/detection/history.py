"""Questions detectors ask of a Zeek conn ``history`` (originator letters upper case, responder's lower).

Each is a ``distinct.Remembered`` test: histories recur window after window, so each is answered once.
"""

from __future__ import annotations

from ..distinct import Remembered

OPEN_CONNECTION = r"A[^FRfr]*$"  # originator ACKed and nobody has closed: data may still come
COMPLETED_LETTERS = r"[AD]"  # originator's pure ACK or data: the handshake went through

has_syn_ack = Remembered(lambda h: h.str.contains("h", regex=False))  # the responder answered a SYN
unasked_reply = Remembered(
    lambda h: h.str.contains("h", regex=False) & ~h.str.contains("S", regex=False)
)  # a SYN-ACK nobody asked for
sent_syn = Remembered(lambda h: h.str.contains("S", regex=False))  # the originator sent a SYN
completed = Remembered(lambda h: h.str.contains(COMPLETED_LETTERS))
still_open = Remembered(lambda h: h.str.contains(OPEN_CONNECTION))
lone_reset = Remembered(lambda h: h.str.fullmatch("R"))  # a reset and nothing else
