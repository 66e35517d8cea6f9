"""One analysis window: what detectors see of it (WindowData) and what it produced for the store (WindowResult)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..distinct import count_by
from .alert import Alert
from .app_events import empty_app_events


@dataclass(frozen=True)
class WindowData:
    """What detectors see of one analysis window."""

    start: float  # epoch seconds of the window's first packet
    end: float  # epoch seconds of its last packet
    packets: pd.DataFrame  # the window's packet table
    flows: pd.DataFrame  # conn records the window touched (current state)
    # Per-host features (features.host_windows.host_features_of): None until the anomaly model or training
    # asks, so that a file's reader leaves them to the detection worker, and a run without a model skips them.
    host_features: pd.DataFrame | None = None
    anomaly: pd.Series | None = None  # per host (host_features' order): how far past the model's threshold, >0 flagged


DNS_COLUMNS = ["host", "qname", "queries"]


@dataclass
class WindowResult:
    """Everything one analysis window produced, in the shape the store keeps."""

    window_start: float
    window_end: float
    traffic: pd.DataFrame  # second, packets, bytes
    protocols: pd.DataFrame  # protocol, packets, bytes
    hosts: pd.DataFrame  # host, packets_out, bytes_out, packets_in, bytes_in, anomaly (NaN: not scored)
    flows: pd.DataFrame  # conn.log records touched or finished in the window
    alerts: list[Alert] = field(default_factory=list)  # created or updated in the window
    health: dict = field(default_factory=dict)
    dns: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DNS_COLUMNS))  # host, qname, queries
    app: pd.DataFrame = field(default_factory=empty_app_events)  # DNS/HTTP/TLS messages by uid (records.app_events)
    flows_ended: int = 0  # flows' first this many rows ended in the window; the rest are still open

    def ended_flows(self) -> pd.DataFrame:
        """The connections that ended in this window: a live conn.log writes each once, when it ends (as Zeek)."""
        return self.flows.iloc[: self.flows_ended]


def dns_counts(packets: pd.DataFrame) -> pd.DataFrame:
    """DNS names each host asked for in a window: host, qname, queries (responses are not counted)."""
    asked = packets["dns_qname"].notna() & ~packets["dns_response"].fillna(False).astype(bool)
    asked &= packets["src_ip"].notna()
    return count_by({"host": packets["src_ip"][asked], "qname": packets["dns_qname"][asked]}, "queries")
