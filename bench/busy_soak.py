"""Busy soak with attacks: hours of live capture at tens of thousands of packets a second, an attack every few minutes.

Two network namespaces joined by a veth (no default route, removed afterwards). The analyzer captures one
end live (its default backend) with the store on; tcpreplay sends the live benchmark's capture
(``live_bench.replay_capture``, mixed web, DNS and bulk traffic) into the other end at ``--pps`` for the
whole run. Every ``--attack-every`` minutes one attack of the lab set is injected beside it, each from a
new address: the made stand-ins of the public attack captures (``tests/made_captures.py``: SYN, connect
and UDP scans, FTP password guessing, a spoofed SYN flood, an Empire beacon, DNS exfiltration), the
attack's own address (its attacker, or the victim of a flood from many) moved to 10.66.K.10 with
tcprewrite, then replayed at its own pace. The store is polled every second for an alert naming that
address; time to alert is from the injection's first packet to the poll that saw the alert (window
close, detection and commit included).

Every ``--interval`` seconds (default 600): the analyzer's and dumpcap's resident memory, the analyzer's
open files and threads, the store's size on disk, and from the analyzer's health rows the packets,
kernel drops and sampled-out share of that interval; and the attacks injected in it, found or not and
how fast.

    sudo .venv/bin/python bench/busy_soak.py --minutes 120 --pps 50000 --attack-every 10   # the issue's run
    sudo .venv/bin/python bench/busy_soak.py --minutes 4 --pps 5000 --attack-every 1 --interval 60  # a look
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

CLI = ROOT / "network_traffic_analyzer.py"
# public capture whose made stand-in is injected -> a short name; in this order, round and round
ATTACKS = {
    "nmap-syn-scan.pcapng": "syn scan",
    "ftp-bruteforce.pcap": "ftp guessing",
    "syn-flood-spoofed.pcap": "syn flood",
    "nmap-udp-scan.pcap": "udp scan",
    "c2-empire-http-beacon.pcap": "beacon",
    "dns-exfil-dnsexfiltrator.pcap": "dns exfiltration",
    "nmap-connect-scan.pcap": "connect scan",
}
POLL_S = 1.0
START_WAIT_S = 5.0


@dataclass
class Injection:
    """One attack replayed into the capture, and when the analyzer's store first named its address."""

    name: str
    address: str
    injected_at: float
    packets: int
    alerted_after_s: float | None = None
    kinds: list[str] = field(default_factory=list)


@dataclass
class Interval:
    """What one stretch of the run looked like."""

    minute: float
    analyzer_rss_mb: float
    dumpcap_rss_mb: float
    open_files: int
    threads: int
    store_mb: float
    packets: int
    kernel_dropped: int
    sampled_out_share: float
    worst_lag_s: float | None
    injected: str


def made_attacks(folder: Path) -> list[tuple[str, Path, str]]:
    """(short name, capture, the address that names the attack) of each attack of ATTACKS, written once."""
    from made_captures import STAND_INS

    made = []
    for public, name in ATTACKS.items():
        capture = STAND_INS[public](folder / public.replace(".pcapng", ".pcap"))
        label = capture.label
        address = label["attacker"] if label["attacker"] != "*" else label["victim"]
        made.append((name, capture.path, str(address).split(";")[0]))
    return made


def moved(capture: Path, address: str, new: str, out: Path) -> Path:
    """The capture with the IPv4 ``address`` replaced by ``new`` wherever it stands in an IPv4 packet (the
    quoted header of an ICMP error too) or an ARP frame, with the IP, TCP, UDP and ICMP checksums computed
    again. (tcprewrite's address maps also stretch an IP length over the frame's Ethernet padding, which turns
    a scan's SYN into one that carries two bytes.)"""
    old_bytes, new_bytes = socket.inet_aton(address), socket.inet_aton(new)
    data = capture.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    if struct.unpack(order + "I", data[20:24])[0] != 1:
        raise SystemExit(f"{capture}: only Ethernet captures are moved")
    parts, at = [data[:24]], 24
    while at + 16 <= len(data):
        caplen = struct.unpack(order + "I", data[at + 8 : at + 12])[0]
        frame = bytearray(data[at + 16 : at + 16 + caplen])
        ethertype = frame[12:14]
        if ethertype == b"\x08\x06":
            frame[14:] = frame[14:].replace(old_bytes, new_bytes)
        elif ethertype == b"\x08\x00" and len(frame) >= 34:
            _move_ipv4(frame, old_bytes, new_bytes)
        parts.append(data[at : at + 16] + bytes(frame))
        at += 16 + caplen
    out.write_bytes(b"".join(parts))
    return out


def _checksum_of(data: bytes) -> int:
    from synth.packets import fold, ones_sum

    return fold(ones_sum(data))


def _move_ipv4(frame: bytearray, old: bytes, new: bytes) -> None:
    ihl = (frame[14] & 0x0F) * 4
    end = min(len(frame), 14 + struct.unpack("!H", frame[16:18])[0])
    packet = bytes(frame[14:end]).replace(old, new)
    if packet == bytes(frame[14:end]):
        return
    packet = bytearray(packet)
    packet[10:12] = b"\0\0"
    packet[10:12] = struct.pack("!H", _checksum_of(packet[:ihl]))
    proto, body = packet[9], packet[ihl:]
    pseudo = bytes(packet[12:20]) + struct.pack("!BBH", 0, proto, len(body))
    if proto == 6 and len(body) >= 20:
        body[16:18] = b"\0\0"
        body[16:18] = struct.pack("!H", _checksum_of(pseudo + bytes(body)))
    elif proto == 17 and len(body) >= 8 and body[6:8] != b"\0\0":  # a UDP checksum of 0 means none
        body[6:8] = b"\0\0"
        body[6:8] = struct.pack("!H", _checksum_of(pseudo + bytes(body)) or 0xFFFF)
    elif proto == 1 and len(body) >= 4:
        body[2:4] = b"\0\0"
        body[2:4] = struct.pack("!H", _checksum_of(bytes(body)))
    frame[14:end] = packet[:ihl] + body


def alerts_naming(db: Path, address: str) -> list[str]:
    """Kinds of the stored alerts whose attacker is ``address``, or whose victims hold it with attacker *."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute(
                "SELECT kind FROM alerts WHERE attacker = ? OR (attacker = '*' AND ',' || victims || ',' LIKE ?)",
                (address, f"%,{address},%"),
            ).fetchall()
    except sqlite3.Error:
        return []
    return sorted({kind for (kind,) in rows})


def run(minutes: float, pps: int, attack_every_min: float, interval_s: float) -> tuple[list[Interval], list]:
    from live_bench import replay, replay_capture, stop_analyzer
    from netns import namespace_pair

    background = replay_capture()
    with namespace_pair() as pair, tempfile.TemporaryDirectory(prefix="nta-busy-soak-") as tmp:
        work = Path(tmp)
        attacks = made_attacks(work)
        db = work / "data" / "analyzer.db"
        analyzer = pair.popen_in(
            pair.ns_a, sys.executable, str(CLI), "--interface", pair.if_a, "--window", "5", "--json", "--no-progress",
            "--no-dashboard", "--data-dir", str(work / "data"), "--log-file", str(work / "analysis.log"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(START_WAIT_S)  # the capture opens
        seconds = minutes * 60
        sender = replay(pair, background, pps, int(pps * (seconds + 60)), wait=False)
        injections: list[Injection] = []
        intervals: list[Interval] = []
        stop = threading.Event()

        def watch() -> None:  # the first poll that sees each injected attack's alert
            while not stop.wait(POLL_S):
                for injection in injections:
                    if injection.alerted_after_s is None:
                        kinds = alerts_naming(db, injection.address)
                        if kinds:
                            injection.alerted_after_s = round(time.time() - injection.injected_at, 1)
                            injection.kinds = kinds

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = last = time.time()
        next_attack, next_sample, k = started + 60.0, started + interval_s, 0
        try:
            while time.time() - started < seconds:
                now = time.time()
                if now >= next_attack:
                    name, capture, address = attacks[k % len(attacks)]
                    k += 1
                    new = f"10.66.{k}.10"
                    injected = moved(capture, address, new, work / f"inject-{k}.pcap")
                    pair.popen_in(pair.ns_b, "tcpreplay", "-i", pair.if_b, str(injected),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                    injections.append(Injection(name, new, now, _packets(injected)))
                    print(f"{(now - started) / 60:6.1f} min: injected {name} as {new}", flush=True)
                    next_attack += attack_every_min * 60
                if now >= next_sample:
                    intervals.append(_interval(analyzer.pid, db, last, now, started, injections))
                    print(json.dumps(asdict(intervals[-1])), flush=True)
                    last, next_sample = now, next_sample + interval_s
                time.sleep(0.5)
            time.sleep(30)  # the last attack's alert may take a few windows
            intervals.append(_interval(analyzer.pid, db, last, time.time(), started, injections))
        finally:
            stop.set()
            sender.terminate()
            sender.wait(timeout=30)
        summary = stop_analyzer(analyzer)
    print(f"analyzer: {summary.get('packets')} packets, {len(summary.get('alerts', []))} alerts:", flush=True)
    for alert in summary.get("alerts", []):
        print(f"  {alert['kind']} {alert['attacker']} -> {','.join(alert['victims'])}", flush=True)
    return intervals, injections


def _packets(capture: Path) -> int:
    out = subprocess.run(["capinfos", "-c", "-M", str(capture)], capture_output=True, text=True).stdout
    return int(out.strip().split()[-1]) if out.strip() else 0


def _interval(pid: int, db: Path, since: float, until: float, started: float, injections: list) -> Interval:
    from dashboard_load import _health
    from soak import _tree

    analyzer, dumpcaps = _tree(pid)
    rss = files = threads = 0
    if analyzer is not None:
        try:
            rss, files, threads = analyzer.memory_info().rss, analyzer.num_fds(), analyzer.num_threads()
        except psutil.Error:
            pass
    dumpcap_rss = sum(p.memory_info().rss for p in dumpcaps if p.is_running())
    store = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) if db.parent.exists() else 0
    health = _health(db, since, until) if db.exists() else {}
    share = round(health["sampled_out"] / health["packets"], 3) if health.get("packets") else 0.0
    injected = [i for i in injections if since <= i.injected_at < until]
    return Interval(
        minute=round((until - started) / 60, 1),
        analyzer_rss_mb=round(rss / 2**20, 1),
        dumpcap_rss_mb=round(dumpcap_rss / 2**20, 1),
        open_files=files,
        threads=threads,
        store_mb=round(store / 2**20, 1),
        packets=health.get("packets", 0),
        kernel_dropped=health.get("kernel_dropped", 0),
        sampled_out_share=share,
        worst_lag_s=health.get("worst_lag_s"),
        injected=", ".join(f"{i.name} ({i.address})" for i in injected),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--pps", type=int, default=50_000, help="background packets/s replayed on the veth")
    parser.add_argument("--attack-every", type=float, default=10.0, help="minutes between injected attacks")
    parser.add_argument("--interval", type=float, default=600.0, help="seconds between samples")
    args = parser.parse_args()
    intervals, injections = run(args.minutes, args.pps, args.attack_every, args.interval)
    print("| minute | analyzer MB | dumpcap MB | files | threads | store MB | packets | kernel drops | sampled out "
          "| worst lag s | injected |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")  # fmt: skip
    for i in intervals:
        print(f"| {i.minute:g} | {i.analyzer_rss_mb:g} | {i.dumpcap_rss_mb:g} | {i.open_files} | {i.threads} | "
              f"{i.store_mb:g} | {i.packets:,} | {i.kernel_dropped} | {i.sampled_out_share:.0%} | {i.worst_lag_s} | "
              f"{i.injected} |")  # fmt: skip
    print("\n| attack | address | packets | alerted after s | alert kinds |\n|---|---|---:|---:|---|")
    for i in injections:
        after = "not alerted" if i.alerted_after_s is None else f"{i.alerted_after_s:g}"
        print(f"| {i.name} | {i.address} | {i.packets:,} | {after} | {', '.join(i.kinds)} |")
    found = [i for i in injections if i.alerted_after_s is not None]
    print(f"\n{len(found)} of {len(injections)} injected attacks alerted; "
          f"{sum(i.alerted_after_s <= 10 for i in found)} within 10 s")  # fmt: skip


if __name__ == "__main__":
    main()
