"""Alert evidence: the packets behind an alert, saved as DATA_DIR/evidence/<alert_id>.pcap.

An alert's pcap holds the packets of its attacker with its victims (the addresses of their first
IP/IPv6 layer, or the attacker's MAC for ARP alerts) from 2 s before its start to 2 s after its
end, the first ``evidence_max_packets`` of them in at most ``evidence_max_mb``:
:func:`display_filter` is the definition, shown to users. The frames are cut in-process
(:mod:`traffic_analyzer.capture.pcap_cut`): for ``--read`` runs out of the input file, in one
pass when the run ends; for live runs out of a bounded ring buffer of recent raw packets
(:class:`~traffic_analyzer.capture.ring_buffer.RingBuffer`).

- :mod:`.selection`: which packets are an alert's evidence (display filter and cut selection);
- :mod:`.recorder`: when and from what the pcaps are cut.
"""

from .recorder import REFRESH_S, EvidenceRecorder, evidence_recorder
from .selection import EVIDENCE_KEY, MAX_FILTER_HOSTS, SLACK_S, display_filter, frame_selection

__all__ = [
    "EVIDENCE_KEY",
    "MAX_FILTER_HOSTS",
    "REFRESH_S",
    "SLACK_S",
    "EvidenceRecorder",
    "display_filter",
    "evidence_recorder",
    "frame_selection",
]
