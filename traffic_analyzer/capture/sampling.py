"""Flow sampling for when traffic outruns the analysis: whole flows kept or skipped, counts scaled back.

A packet is kept when the hash of its flow (protocol and both endpoints, in either direction)
falls in the lowest ``keep_rate`` of the hash space, so a kept flow keeps every packet: its
connection state, bytes and history stay right, and per-host counts divided by the keep rate
estimate the true ones without bias (:func:`scale_counts`). Keep rates are powers of two and
the kept hash ranges nest, so a flow kept at 1/4 is also kept at 1/2: when the rate changes,
flows are only cut when the rate falls. Frames without an IP address (ARP, LLDP...) are keyed
by their MAC pair. A port scan's probes are separate flows: at 1/N the scan detector sees about
1/N of the probed ports (nmap's default 1,000 ports stay above the 25-port threshold down to
1/32; the rate never goes below :data:`MIN_KEEP_RATE`).

:class:`SamplingController` picks the rate once per analysis window from how long the analysis
of the last window took (``load`` = analysis seconds per window second) and, when ``max_pps`` is
set, from the packet rate; within a window, the capture lowers it as soon as the packets waiting
pass what the analysis can take in half a window (:meth:`SamplingController.budget`), so a
sudden flood is sampled from its first second rather than from the next window on.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pandas.util import hash_array

MAX_SHIFT = 6  # the lowest keep rate is 2**-MAX_SHIFT
MIN_KEEP_RATE = 2.0**-MAX_SHIFT
HIGH_LOAD = 0.8  # analysis busier than this share of the window: sample more
TARGET_LOAD = 0.5  # ... aiming at this share
LOW_LOAD = 0.2  # this calm for CALM_WINDOWS windows in a row: keep twice as many flows
CALM_WINDOWS = 3
INITIAL_ANALYSIS_PPS = 20_000  # assumed analysis speed until the first busy window measures it
MIN_LOAD_PACKETS = 1000  # a window with fewer packets counts as calm, however long its analysis took
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 finaliser constants
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_COUNT_COLUMNS = {
    "traffic": ["packets", "bytes"],
    "protocols": ["packets", "bytes"],
    "hosts": ["packets_out", "bytes_out", "packets_in", "bytes_in"],
    "dns": ["queries"],
}


def mix_hash(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


def _endpoint(address: pd.Series, port: pd.Series) -> np.ndarray:
    hashed = hash_array(address.fillna("").to_numpy(dtype=object))
    ports = port.fillna(0).to_numpy(dtype=np.int64).astype(np.uint64)
    return endpoint_hash(hashed, ports)


def flow_hash(packets: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash per packet, equal for both directions of a flow and stable across batches."""
    src = _endpoint(packets["src_ip"].fillna(packets["src_mac"]), packets["src_port"])
    dst = _endpoint(packets["dst_ip"].fillna(packets["dst_mac"]), packets["dst_port"])
    proto = packets["ip_proto"].fillna(-1).to_numpy(dtype=np.int64).astype(np.uint64)
    return flow_of_endpoints(src, dst, proto)


def endpoint_hash(address: np.ndarray, port: np.ndarray) -> np.ndarray:
    """One side of a flow: a 64-bit address value (or its hash) and a port."""
    with np.errstate(over="ignore"):
        return mix_hash(address + port * _GOLDEN)


def flow_of_endpoints(src: np.ndarray, dst: np.ndarray, proto: np.ndarray) -> np.ndarray:
    """The flow hash of two endpoint hashes and the protocol: the same in both directions."""
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    with np.errstate(over="ignore"):
        return mix_hash(mix_hash(lo ^ proto) + hi * _GOLDEN)


def keep_mask(packets: pd.DataFrame, keep_rate: float) -> np.ndarray:
    """Which packets a flow sample at ``keep_rate`` (a power of two, at most 1) keeps."""
    if keep_rate >= 1.0 or packets.empty:
        return np.ones(len(packets), dtype=bool)
    return kept_by_hash(flow_hash(packets), keep_rate)


def kept_by_hash(hashes: np.ndarray, keep_rate: float) -> np.ndarray:
    """Which flow hashes a sample at ``keep_rate`` keeps: the lowest share of the hash space (nested)."""
    if keep_rate >= 1.0:
        return np.ones(len(hashes), dtype=bool)
    shift = round(-math.log2(keep_rate))
    return (hashes >> np.uint64(64 - shift)) == 0


def scale_counts(result, keep_rate: float) -> None:
    """Scale a window's packet, byte and query counts (a WindowResult) back up by 1 / ``keep_rate``."""
    if keep_rate >= 1.0:
        return
    for table, columns in _COUNT_COLUMNS.items():
        frame = getattr(result, table)
        for column in columns:
            if column in frame and len(frame):
                frame[column] = (frame[column].astype("float64") / keep_rate).round().astype("int64")


class SamplingController:
    """Chooses the keep rate for the next window from the load of the last one.

    Parameters
    ----------
    max_pps : float
        If above 0, also keep at most about this many packets per second for analysis.
    enabled : bool
        False keeps every packet (the analysis then falls behind, and the capture drops).
    """

    def __init__(self, max_pps: float = 0.0, enabled: bool = True) -> None:
        self.max_pps = max_pps
        self.enabled = enabled
        self.shift = 0  # keep rate 2**-shift
        self.analysis_pps = float(INITIAL_ANALYSIS_PPS)  # packets/s the analysis got through, last measured
        self._calm = 0

    @property
    def keep_rate(self) -> float:
        return 2.0**-self.shift

    def budget(self, window_s: float) -> float | None:
        """Packets a window may hand the analysis (to keep it about TARGET_LOAD busy); None: no limit."""
        return self.analysis_pps * window_s * TARGET_LOAD if self.enabled else None

    def tighten(self) -> float:
        """Halve the keep rate now (the capture's backlog passed the budget); returns the new rate."""
        self.shift = min(MAX_SHIFT, self.shift + 1)
        self._calm = 0
        return self.keep_rate

    def update(self, busy_s: float, window_s: float, captured_pps: float, analysed: int = 0) -> float:
        """Take the last window's analysis time, packet rate and packets analysed; return the next keep rate."""
        if not self.enabled:
            return 1.0
        if analysed >= MIN_LOAD_PACKETS and busy_s > 0:
            self.analysis_pps = analysed / busy_s
        load = busy_s / window_s if window_s > 0 else 0.0
        if captured_pps * window_s < MIN_LOAD_PACKETS:
            load = 0.0  # a quiet window: its time is fixed overhead that sampling cannot cut
        shift = self.shift
        if load > HIGH_LOAD:
            shift += math.ceil(math.log2(load / TARGET_LOAD))
            self._calm = 0
        elif load < LOW_LOAD and shift > 0:
            self._calm += 1
            if self._calm >= CALM_WINDOWS:
                shift -= 1
                self._calm = 0
        else:
            self._calm = 0
        if self.max_pps > 0 and captured_pps > self.max_pps:
            shift = max(shift, math.ceil(math.log2(captured_pps / self.max_pps)))
        self.shift = min(MAX_SHIFT, max(0, shift))
        return self.keep_rate


def sampling_status(stats) -> str:
    """What the run status adds while flows are being sampled (CaptureStats in, text out)."""
    if stats.sample_rate >= 1.0:
        return ""
    return f"; analysing 1 in {round(1 / stats.sample_rate)} flows (sampling under load, counts scaled up)"
