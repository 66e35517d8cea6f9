"""``export --log dns|http|ssl``: Zeek's dns.log, http.log and ssl.log, read back with zat's ZeekLogReader.

The store comes from a real --read of a public phone capture with DNS, HTTP and TLS. Each log is
read by a Zeek log reader we did not write (zat), its fields are compared with the field lists
Zeek documents, and every row's uid must be a conn.log row of the same connection.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from zat.zeek_log_reader import ZeekLogReader

CAPTURE = "benign-android-mixed.pcap"
ID = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
# The logged fields of Zeek's base scripts (docs.zeek.org "Zeek Logs": dns.log, http.log, ssl.log; the Info
# records of scripts/base/protocols/{dns,http,ssl}/main.zeek and http/files.zeek), in Zeek's order.
ZEEK_FIELDS = {
    "dns": ID
    + "proto trans_id rtt query qclass qclass_name qtype qtype_name rcode rcode_name AA TC RD RA Z "
    "answers TTLs rejected".split(),
    "http": ID
    + "trans_depth method host uri referrer version user_agent origin request_body_len "
    "response_body_len status_code status_msg info_code info_msg tags username password proxied orig_fuids "
    "orig_filenames orig_mime_types resp_fuids resp_filenames resp_mime_types".split(),
    "ssl": ID + "version cipher curve server_name resumed last_alert next_protocol established ssl_history".split(),
}


@pytest.fixture(scope="module")
def logs(pcaps: Path, tmp_path_factory) -> Path:
    """conn, dns, http and ssl logs (TSV and JSON lines) of one --read."""
    tmp = tmp_path_factory.mktemp("zeek_app")
    proc = run_cli(
        "--read", str(pcaps / CAPTURE), "--no-dashboard", "--no-progress", "--no-evidence",
        "--data-dir", str(tmp / "data"), "--log-file", str(tmp / "analysis.log"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for log in ("conn", "dns", "http", "ssl"):
        for fmt, suffix in (("zeek", "log"), ("jsonl", "json")):
            out = tmp / f"{log}.{suffix}"
            proc = run_cli("export", "--data-dir", str(tmp / "data"), "--log", log, "--format", fmt, "--out", str(out))
            assert proc.returncode == 0, proc.stderr
    return tmp


def read(path: Path) -> tuple[list[str], list[dict]]:
    reader = ZeekLogReader(str(path))
    rows = list(reader.readrows())
    return reader.field_names, rows


@pytest.mark.parametrize("log", ["dns", "http", "ssl"])
def test_each_log_has_zeeks_fields_and_joins_conn_log(logs, log):
    _, conns = read(logs / "conn.log")
    by_uid = {c["uid"]: c for c in conns}
    fields, rows = read(logs / f"{log}.log")
    assert fields == ZEEK_FIELDS[log]
    assert rows
    for row in rows:
        conn = by_uid[row["uid"]]  # every row is a connection of conn.log
        assert [row[k] for k in ID[2:]] == [conn[k] for k in ID[2:]]
        assert row["ts"] >= conn["ts"]
    assert (logs / f"{log}.log").read_text().splitlines()[4] == f"#path\t{log}"


def test_dns_log_pairs_queries_with_answers(logs):
    _, rows = read(logs / "dns.log")
    time_android = [r for r in rows if r["query"] == "time.android.com"]
    assert time_android and all(r["qtype_name"] == "A" and r["rcode_name"] == "NOERROR" for r in time_android)
    assert all(0 < r["rtt"].total_seconds() < 1 for r in time_android)
    assert {r["id.resp_p"] for r in rows} <= {53, 5353}


def test_dns_log_lists_answers_and_ttls_in_answer_order(logs):
    """tshark -r benign-android-mixed.pcap -Y 'dns.qry.name == captive.apple.com && dns.flags.response == 1'."""
    _, rows = read(logs / "dns.log")
    captive = [r for r in rows if r["query"] == "captive.apple.com" and r["qtype_name"] == "A"]
    assert captive and captive[0]["answers"] == (
        "captive-cidr.origin-apple.com.akadns.net,captive-cdn.origin-apple.com.akadns.net,"
        "captive.g.aaplimg.com,17.253.53.201,17.253.53.208"
    )
    assert captive[0]["TTLs"] == "4234.000000,130.000000,340.000000,19.000000,19.000000"
    json_rows = [json.loads(line) for line in (logs / "dns.json").read_text().splitlines()]
    time_android = next(r for r in json_rows if r["query"] == "time.android.com" and "answers" in r)
    assert time_android["answers"] == ["216.239.35.8", "216.239.35.0", "216.239.35.4", "216.239.35.12"]
    assert time_android["TTLs"] == [280.0, 280.0, 280.0, 280.0]


def test_http_log_has_requests_with_their_responses(logs):
    _, rows = read(logs / "http.log")
    apple = [r for r in rows if r["host"] == "captive.apple.com"]
    assert len(apple) == 1
    assert (apple[0]["method"], apple[0]["uri"], apple[0]["status_code"]) == ("GET", "/", 200)
    assert apple[0]["user_agent"].startswith("Mozilla/5.0") and apple[0]["resp_mime_types"] == "text/html"
    googlezip = sorted(r["trans_depth"] for r in rows if r["host"] == "check.googlezip.net" and r["id.orig_p"] == 36834)
    assert googlezip == [1, 2]  # two requests on one connection


def test_ssl_log_names_the_servers_and_json_lines_say_the_same(logs):
    _, rows = read(logs / "ssl.log")
    names = {r["server_name"] for r in rows}
    assert {"clients1.google.com", "play.googleapis.com"} <= names
    assert len({r["uid"] for r in rows}) == len(rows)  # one row per TLS connection
    for log in ("dns", "http", "ssl"):
        _, tsv = read(logs / f"{log}.log")
        records = [json.loads(line) for line in (logs / f"{log}.json").read_text().splitlines()]
        assert [r["uid"] for r in records] == [r["uid"] for r in tsv]
        assert all(set(r) <= set(ZEEK_FIELDS[log]) for r in records)
