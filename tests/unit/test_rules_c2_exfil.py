"""C2, exfiltration and download rules on hand-built windows: beacon, exfiltration, suspicious_download."""

from __future__ import annotations

import numpy as np
import pytest
from builders import dns_query, feed, flow, http_request, http_response, summary, tcp, udp, window

from traffic_analyzer.detection.beacon import MAX_BURSTS_PER_PAIR, BeaconDetector
from traffic_analyzer.detection.exfiltration import ExfiltrationDetector
from traffic_analyzer.detection.suspicious_download import SuspiciousDownloadDetector
from traffic_analyzer.records.packets import TCP_ACK, TCP_PSH

pytestmark = pytest.mark.unit

CLIENT, SERVER, OTHER = "10.0.0.66", "198.51.100.9", "203.0.113.50"
C2_PORT = 8443


# beacon: >= min_beacons check-ins from a client to one server port with jitter <= max_jitter, remembered
# for window_s; the server is the attacker, the client the victim


def check_ins(times, client: str = CLIENT, port: int = C2_PORT, size: int = 200) -> list[dict]:
    """One payload packet per check-in, from the client's ephemeral port to the server port."""
    return [tcp(t, client, SERVER, port, sport=50000, flags=TCP_PSH | TCP_ACK, payload_len=size) for t in times]


def every(first_ts: float, count: int, interval_s: float = 30.0) -> list[float]:
    return [first_ts + interval_s * i for i in range(count)]


def test_beacon_fires_at_min_beacons():
    times = every(1000.0, 8)
    alerts = BeaconDetector(min_beacons=8).detect(window(check_ins(times)))
    assert [summary(a) for a in alerts] == [("c2_beacon", SERVER, [CLIENT], times[0], times[-1])]
    assert alerts[0].evidence["check_ins"] == 8 and alerts[0].evidence["median_interval_s"] == 30.0


def test_beacon_adds_up_check_ins_across_windows():
    times = every(1000.0, 8)
    alerts = feed(BeaconDetector(min_beacons=8), [window(check_ins(times[:5])), window(check_ins(times[5:]))])
    assert alerts[0] == [] and [summary(a) for a in alerts[1]] == [("c2_beacon", SERVER, [CLIENT], 1000.0, times[-1])]


JITTERED = [1000.0, 1030.0, 1052.0, 1090.0, 1120.0, 1141.0, 1180.0, 1210.0]  # intervals 30 +- 8: jitter 27 %


@pytest.mark.parametrize(
    "rows",
    [
        check_ins(every(1000.0, 7)),  # one check-in short of min_beacons
        check_ins(JITTERED),  # jitter over max_jitter (20 %)
        check_ins(every(1000.0, 8, interval_s=1.5)),  # intervals under min_interval_s (2 s): streaming
        check_ins(every(1000.0, 8), port=123),  # NTP: periodic by design
        [row for c in ("10.0.0.66", "10.0.0.67", "10.0.0.68") for row in check_ins(every(1000.0, 8), client=c)],
    ],
    ids=["7-check-ins", "jitter", "fast", "ntp", "shared-service"],
)
def test_beacon_near_miss(rows):
    detector = BeaconDetector(min_beacons=8, max_jitter=0.2, min_interval_s=2.0, shared_min_clients=3)
    assert detector.detect(window(rows)) == []


@pytest.mark.parametrize("gap_s, fires", [(30.0, True), (21_700.0, False)])
def test_beacon_forgets_a_pair_silent_for_window_s(gap_s, fires):
    early = every(1000.0, 7)
    late = early[-1] + gap_s
    other = dns_query(late - 1.0, "10.0.0.2", "10.0.0.53", "example.com")  # the window before the 8th check-in
    windows = [window(check_ins(early)), window([other]), window(check_ins([late]))]
    alerts = feed(BeaconDetector(min_beacons=8, window_s=21_600.0), windows)
    assert bool(alerts[-1]) is fires


def test_beacon_check_ins_older_than_window_s_do_not_count():
    early = every(1000.0, 6)  # 1000-1150
    detector = BeaconDetector(min_beacons=8, window_s=21_600.0)
    windows = [window(check_ins(early)), window(check_ins([15_000.0])), window(check_ins([23_000.0]))]
    # at 23000 only the check-ins of 15000 and 23000 are within window_s: two, not eight
    assert feed(detector, windows)[-1] == []


def test_beacon_ages_by_the_last_packet_seen():
    detector = BeaconDetector(min_beacons=8, window_s=21_600.0)
    early = every(1000.0, 7)
    # the window's end says 1e6, its packets say 1500: the check-ins of 1000-1180 are 320 s old, not 1e6
    alerts = feed(detector, [window(check_ins(early)), window(check_ins([1500.0]), end=1_000_000.0)])
    assert [summary(a) for a in alerts[1]] == [("c2_beacon", SERVER, [CLIENT], 1000.0, 1500.0)]


def test_beacon_with_30_percent_jitter_and_alike_check_ins_fires():
    rng = np.random.default_rng(7)
    times = list(np.cumsum(60.0 * (1.0 + rng.uniform(-0.3, 0.3, 30))) + 1000.0)
    alerts = BeaconDetector(min_beacons=8).detect(window(check_ins(times)))
    assert [a.kind for a in alerts] == ["c2_beacon"] and alerts[0].evidence["jitter"] > 0.1


def scrapes(servers: list[str], times: list[float]) -> list[dict]:
    """One client fetching the same path from each server on one schedule, as Prometheus does."""
    return [
        tcp(t + 0.01 * i, CLIENT, server, 9100, sport=50000 + i, flags=TCP_PSH | TCP_ACK, payload_len=180)
        for t in times
        for i, server in enumerate(servers)
    ]


@pytest.mark.parametrize("servers, fires", [(3, False), (2, True)])
def test_beacon_a_client_on_one_schedule_with_monitor_min_servers_is_a_scraper(servers, fires):
    targets = [f"10.0.1.{i}" for i in range(1, servers + 1)]
    detector = BeaconDetector(min_beacons=8, monitor_min_servers=3)
    assert bool(detector.detect(window(scrapes(targets, every(1000.0, 10))))) is fires


def polls(times, answer: int | list[int]) -> list[dict]:
    """A 300-byte request and an ``answer``-byte reply per check-in (one size, or one per check-in)."""
    answers = answer if isinstance(answer, list) else [answer] * len(times)
    return [
        row
        for t, size in zip(times, answers, strict=True)
        for row in (
            tcp(t, CLIENT, SERVER, 8050, sport=50000, flags=TCP_PSH | TCP_ACK, payload_len=300),
            tcp(t + 0.05, SERVER, CLIENT, 50000, sport=8050, flags=TCP_PSH | TCP_ACK, payload_len=size),
        )
    ]


@pytest.mark.parametrize("answer, fires", [(60_000, False), (2_000, True), (9_000, True)])
def test_beacon_polls_that_fetch_data_are_not_check_ins(answer, fires):
    alerts = BeaconDetector(min_beacons=8).detect(window(polls(every(1000.0, 10, interval_s=5.0), answer)))
    assert bool(alerts) is fires
    if fires:
        assert alerts[0].evidence["median_response_bytes"] == answer


def test_beacon_answers_that_change_every_time_are_a_feed_not_check_ins():
    """A dashboard's figures differ from one refresh to the next; an idle implant gets the same answer."""
    times = every(1000.0, 12, interval_s=2.0)
    varied = [int(s) for s in np.random.default_rng(3).integers(450, 4_000, size=12)]
    assert BeaconDetector(min_beacons=8).detect(window(polls(times, varied))) == []
    tasked_once = [200] * 11 + [3_000]  # the same answer but for one tasking
    assert len(BeaconDetector(min_beacons=8).detect(window(polls(times, tasked_once)))) == 1
    # Empire's: half its check-ins merged two or three answers into one burst, or were tasked: few sizes all the same
    merged = [257, 514, 257, 771, 514, 257, 3_000, 514, 257, 1_028, 257, 514]
    assert len(BeaconDetector(min_beacons=8).detect(window(polls(times, merged)))) == 1


def test_beacon_snmp_polls_are_periodic_by_design():
    rows = [udp(t, CLIENT, SERVER, 161, sport=40000, payload_len=80) for t in every(1000.0, 20)]
    assert BeaconDetector(min_beacons=8).detect(window(rows)) == []


def test_beacon_remembers_at_most_max_bursts_per_pair():
    times = every(1000.0, MAX_BURSTS_PER_PAIR + 44)
    alerts = BeaconDetector().detect(window(check_ins(times)))
    assert [summary(a) for a in alerts] == [("c2_beacon", SERVER, [CLIENT], times[44], times[-1])]
    assert alerts[0].evidence["check_ins"] == MAX_BURSTS_PER_PAIR


# exfiltration: >= min_bytes sent to one peer within window_s, >= min_upload_ratio times what came back


def upload(ts: float, sent: int, received: int = 100_000, duration: float = 60.0, **fields) -> dict:
    return flow(
        ts,
        CLIENT,
        SERVER,
        443,
        duration=duration,
        conn_state="SF",
        history="ShADadFf",
        orig_bytes=sent,
        resp_bytes=received,
        **fields,
    )


def test_exfiltration_fires_at_min_bytes():
    alerts = ExfiltrationDetector(min_bytes=20_000_000).detect(window(flow_rows=[upload(1300.0, 20_000_000)]))
    assert [summary(a) for a in alerts] == [("data_exfiltration", CLIENT, [SERVER], 1300.0, 1360.0)]
    assert alerts[0].evidence["bytes_sent"] == 20_000_000


def test_exfiltration_adds_up_flows_across_windows():
    windows = [window(flow_rows=[upload(1300.0, 10_000_000)]), window(flow_rows=[upload(1400.0, 10_000_000)])]
    alerts = feed(ExfiltrationDetector(min_bytes=20_000_000), windows)
    assert alerts[0] == [] and [summary(a) for a in alerts[1]] == [
        ("data_exfiltration", CLIENT, [SERVER], 1300.0, 1460.0)
    ]


@pytest.mark.parametrize(
    "rows",
    [
        [upload(1300.0, 19_999_999)],  # one byte short of min_bytes
        [upload(1300.0, 20_000_000, received=4_000_001)],  # just under min_upload_ratio (5x)
        [upload(1300.0, 10_000_000), flow(1310.0, CLIENT, OTHER, 443, orig_bytes=10_000_000)],  # two peers
    ],
    ids=["bytes", "ratio", "two-peers"],
)
def test_exfiltration_near_miss(rows):
    assert ExfiltrationDetector(min_bytes=20_000_000, min_upload_ratio=5.0).detect(window(flow_rows=rows)) == []


def test_exfiltration_counts_a_flow_seen_in_two_windows_once():
    growing = [upload(1300.0, 12_000_000, duration=30.0), upload(1300.0, 15_000_000, duration=60.0)]  # one uid
    windows = [window(flow_rows=[row]) for row in growing]
    assert feed(ExfiltrationDetector(min_bytes=20_000_000), windows) == [[], []]


@pytest.mark.parametrize("late_ts, fires", [(1800.0, True), (2000.0, False)])
def test_exfiltration_forgets_flows_older_than_window_s(late_ts, fires):
    detector = ExfiltrationDetector(min_bytes=20_000_000, window_s=600.0)
    windows = [window(flow_rows=[upload(1300.0, 10_000_000)]), window(flow_rows=[upload(late_ts, 10_000_000)])]
    alerts = feed(detector, windows)
    assert alerts[0] == [] and bool(alerts[1]) is fires


def test_exfiltration_alert_ends_with_the_upload():
    def unrelated(ts: float) -> dict:
        return flow(ts, "10.0.0.2", "10.0.0.53", 53, proto="udp", orig_bytes=40)

    windows = [window(flow_rows=[upload(1300.0, 20_000_000), unrelated(1364.0)]), window(flow_rows=[unrelated(1560.0)])]
    ends = {a.end for found in feed(ExfiltrationDetector(), windows) for a in found}
    assert ends == {1360.0}  # the upload's last packet, in every window that still remembers it


def test_exfiltration_counts_an_old_connection_that_uploads_now():
    idle = upload(1000.0, 0, received=0, duration=100.0)  # opened at 1000, nothing sent by 1100
    busy = upload(1000.0, 30_000_000, duration=700.0)  # 30 MB sent between 1100 and 1700: within window_s
    alerts = feed(
        ExfiltrationDetector(min_bytes=20_000_000, window_s=600.0), [window(flow_rows=[r]) for r in (idle, busy)]
    )
    assert [a.kind for a in alerts[1]] == ["data_exfiltration"]


# suspicious_download: executable HTTP responses of >= min_payload_bytes, scored by host, port and plug-in chain;
# the receiver's POSTs to other servers within followup_s after an exploit chain are C2 check-ins


def download(
    ts: float, host: str, size: int = 100_000, ctype: str = "application/x-msdownload", uri: str = "/get/file", **fields
) -> list:
    """CLIENT asks SERVER (Host ``host``) for ``uri`` and gets ``size`` bytes of ``ctype``."""
    agent = fields.pop("http_user_agent", None)
    request = http_request(ts, CLIENT, SERVER, uri, http_host=host, **({"http_user_agent": agent} if agent else {}))
    response = http_response(ts + 0.5, SERVER, CLIENT, http_content_type=ctype, http_content_length=size, **fields)
    return [request, response]


def test_suspicious_download_exploit_kit_from_a_throwaway_host():
    alerts = SuspiciousDownloadDetector(min_payload_bytes=50_000).detect(window(download(1100.0, "flash-update.tk")))
    assert [summary(a) for a in alerts] == [("exploit_kit", SERVER, [CLIENT], 1100.5, 1100.5)]
    assert alerts[0].evidence["host"] == "flash-update.tk"


@pytest.mark.parametrize(
    "rows",
    [
        download(1100.0, "downloads.example.com"),  # an executable type
        download(1100.0, "downloads.example.com", ctype="application/octet-stream", uri="/files/setup.exe?v=2"),
    ],
    ids=["x-msdownload", "exe-name"],
)
def test_suspicious_download_from_an_ordinary_host_is_a_low_note(rows):
    alerts = SuspiciousDownloadDetector().detect(window(rows))
    assert [summary(a) for a in alerts] == [("suspicious_download", SERVER, [CLIENT], 1100.5, 1100.5)]
    assert alerts[0].score < 40


OCTET = "application/octet-stream"
APT = "Debian APT-HTTP/1.3 (2.4.12)"


@pytest.mark.parametrize(
    "rows",
    [
        download(1100.0, "flash-update.tk", size=49_999),  # one byte under min_payload_bytes
        download(1100.0, "flash-update.tk", ctype="application/pdf"),  # not executable
        download(1100.0, "flash-update.tk", status=404),  # no file came
        download(1100.0, "cdn.example-games.com", size=10_000_000, ctype=OCTET, uri="/patch/content-0042.pak"),
        download(1100.0, "archive.ubuntu.com", ctype=OCTET, uri="/ubuntu/pool/main/c/curl/curl_7.81_amd64.deb"),
        download(1100.0, "mirror.example.org", ctype="application/vnd.debian.binary-package", uri="/pool/x"),
        download(1100.0, "10.0.0.5:3142", ctype=OCTET, uri="/debian/pool/x.deb", port=3142, http_user_agent=APT),
    ],
    ids=["small", "pdf", "404", "cdn-blob", "apt-deb", "deb-type", "apt-cacher-by-ip"],
)
def test_suspicious_download_near_miss(rows):
    assert SuspiciousDownloadDetector(min_payload_bytes=50_000).detect(window(rows)) == []


def posts(times, server: str = OTHER) -> list[dict]:
    return [http_request(t, CLIENT, server, "/gate.php", method="POST", http_host="cdn-stats.top") for t in times]


def test_suspicious_download_reports_check_ins_after_an_exploit_chain():
    detector = SuspiciousDownloadDetector(followup_s=600.0, min_checkins=2)
    alerts = feed(detector, [window(download(1100.0, "flash-update.tk")), window(posts([1150.0, 1160.0]))])
    assert [summary(a) for a in alerts[1]] == [("c2_checkin", OTHER, [CLIENT], 1150.0, 1160.0)]


def test_suspicious_download_counts_check_ins_across_new_servers():
    detector = SuspiciousDownloadDetector(min_checkins=2)
    later = window(posts([1150.0]) + posts([1165.0], server="203.0.113.51"))
    alerts = feed(detector, [window(download(1100.0, "flash-update.tk")), later])
    assert sorted(a.attacker for a in alerts[1]) == [OTHER, "203.0.113.51"]


@pytest.mark.parametrize(
    "before, after",
    [
        ([], posts([1150.0])),  # one POST: a web form
        (posts([1000.0]), posts([1150.0, 1160.0])),  # a server the host used before the exploit chain
        ([], posts([1150.0, 1160.0], server=SERVER)),  # the exploit kit itself: already reported
    ],
    ids=["one-post", "known-server", "exploit-kit-server"],
)
def test_suspicious_download_posts_without_a_link_to_the_exploit_are_not_check_ins(before, after):
    detector = SuspiciousDownloadDetector(min_checkins=2)
    windows = [window(before + download(1100.0, "flash-update.tk")), window(after)]
    assert feed(detector, windows)[1] == []


@pytest.mark.parametrize("post_ts, fires", [(1100.5 + 599.0, True), (1100.5 + 601.0, False)])
def test_suspicious_download_stops_watching_after_followup_s(post_ts, fires):
    detector = SuspiciousDownloadDetector(followup_s=600.0, min_checkins=2)
    alerts = feed(detector, [window(download(1100.0, "flash-update.tk")), window(posts([post_ts - 1.0, post_ts]))])
    assert bool(alerts[1]) is fires


def test_beacon_forgets_exactly_the_check_ins_older_than_its_window():
    """The memory ages pair by pair as their first check-ins come due (a heap), not by a scan of every pair
    each window: after each window no check-in older than window_s is left, and a pair left with none is
    gone from the per-server and per-client counts."""
    rng = np.random.default_rng(5)
    detector = BeaconDetector(window_s=120.0, min_beacons=50)  # no alert: only the memory is looked at
    clients = [f"10.0.0.{i}" for i in range(1, 9)]
    sent: list[tuple[float, str, int]] = []
    for start in np.arange(0.0, 1200.0, 5.0):
        rows = []
        for client in rng.choice(clients, size=3, replace=False):
            port = int(rng.choice([8443, 9443]))
            at = float(start + rng.uniform(0, 4.9))
            rows.append(tcp(at, str(client), SERVER, port, sport=50000, flags=TCP_PSH | TCP_ACK, payload_len=100))
            sent.append((at, str(client), port))
        last = max(r["ts"] for r in rows)
        detector.detect(window(sorted(rows, key=lambda r: r["ts"])))
        horizon = last - detector.window_s
        recent = {(c, SERVER, p) for t, c, p in sent if t >= horizon}
        assert set(detector._bursts) == recent
        assert all(b[1] >= horizon for bursts in detector._bursts.values() for b in bursts)
        assert dict(detector._clients) == {(SERVER, p): sum(k[2] == p for k in recent) for _, _, p in recent}
        assert {k for keys in detector._of_client.values() for k in keys} == recent
    assert len(detector._aging) <= 2 * len(detector._bursts) + 1024


def test_exfiltration_a_destination_many_hosts_upload_to_is_a_shared_service():
    """The site's cloud sync or backup server: the first two uploaders are raised, the third and later not."""
    detector = ExfiltrationDetector(min_bytes=1_000_000, shared_min_uploaders=3)
    raised = []
    for k, client in enumerate(["10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"]):
        at = 1000.0 + 3600.0 * k  # an hour apart: each upload's own memory has aged
        alerts = detector.detect(window(flow_rows=[uploaded(at, client)]))
        raised += [a.attacker for a in alerts]
    assert raised == ["10.0.0.11", "10.0.0.12"]
    later = detector.detect(window(flow_rows=[uploaded(1000.0 + 3600.0 * 30, "10.0.0.15")]))
    assert [a.attacker for a in later] == ["10.0.0.15"]  # a day on, the uploaders are forgotten


def uploaded(ts: float, client: str, sent: int = 5_000_000) -> dict:
    return flow(ts, client, SERVER, 443, duration=60.0, conn_state="SF", history="ShADadFf", orig_bytes=sent)


@pytest.mark.parametrize(
    "destination, severity, external",
    [
        ("10.0.0.20", "low", False),  # the site's NAS: a nightly backup is as large and as lopsided
        ("192.168.1.5", "low", False),
        ("203.0.113.99", "medium", True),  # a lab's stand-in for the Internet is outside the site
        ("8.8.4.4", "medium", True),
    ],
)
def test_exfiltration_to_a_local_host_is_a_low_note(destination, severity, external):
    row = flow(1300.0, CLIENT, destination, 80, duration=60.0, conn_state="SF", orig_bytes=20_000_000)
    (alert,) = ExfiltrationDetector(min_bytes=20_000_000).detect(window(flow_rows=[row]))
    assert (alert.severity, alert.evidence["external"], alert.attacker) == (severity, external, CLIENT)
    assert ("stayed inside the site" in alert.explanation) is not external


def test_exfiltration_a_huge_local_upload_stays_low():
    row = flow(1300.0, CLIENT, "10.0.0.20", 873, duration=900.0, conn_state="SF", orig_bytes=3_000_000_000)
    (alert,) = ExfiltrationDetector(min_bytes=20_000_000).detect(window(flow_rows=[row]))
    assert alert.severity == "low" and alert.score <= 35.0
