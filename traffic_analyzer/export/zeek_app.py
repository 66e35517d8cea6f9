"""Zeek's dns.log, http.log and ssl.log from the stored DNS, HTTP and TLS messages (the ``app_events`` table).

Field lists and types are Zeek's own (``scripts/base/protocols/{dns,http,ssl}/main.zeek``), in
Zeek's order, so zeek-cut and Zeek readers take them; what the analyzer does not decode is unset
(``-``): DNS class and header flags, and answer records other than A, AAAA, CNAME, PTR, MX and NS;
HTTP version, referrer and file ids; the TLS version, cipher and certificates. Every row carries
the uid of its conn.log row.

A DNS row is a query and its answer (same connection, name and type; ``rtt`` between them), an
HTTP row the n-th request of a connection with its n-th response (``trans_depth`` n), an SSL row
a connection's ClientHello server name. Messages are paired over the whole export, so a
transaction that spans two analysis windows is still one row.
"""

from __future__ import annotations

from typing import TextIO

import pandas as pd

from .zeek import CONN_FIELDS, ZeekFields, ZeekJsonWriter, ZeekLogWriter

ID_FIELDS: ZeekFields = CONN_FIELDS[:6]  # ts, uid and the id.* endpoints, which every Zeek protocol log starts with
DNS_FIELDS: ZeekFields = (
    *ID_FIELDS,
    ("proto", "enum", "proto"),
    ("trans_id", "count", None),
    ("rtt", "interval", "rtt"),
    ("query", "string", "dns_qname"),
    ("qclass", "count", None),
    ("qclass_name", "string", None),
    ("qtype", "count", "dns_qtype"),
    ("qtype_name", "string", "qtype_name"),
    ("rcode", "count", "dns_rcode"),
    ("rcode_name", "string", "rcode_name"),
    ("AA", "bool", None),
    ("TC", "bool", None),
    ("RD", "bool", None),
    ("RA", "bool", None),
    ("Z", "count", None),
    ("answers", "vector[string]", "dns_answers"),
    ("TTLs", "vector[interval]", "dns_ttls"),
    ("rejected", "bool", None),
)
HTTP_FIELDS: ZeekFields = (
    *ID_FIELDS,
    ("trans_depth", "count", "trans_depth"),
    ("method", "string", "http_method"),
    ("host", "string", "http_host"),
    ("uri", "string", "http_uri"),
    ("referrer", "string", None),
    ("version", "string", None),
    ("user_agent", "string", "http_user_agent"),
    ("origin", "string", None),
    ("request_body_len", "count", "request_body_len"),
    ("response_body_len", "count", "response_body_len"),
    ("status_code", "count", "http_status"),
    ("status_msg", "string", None),
    ("info_code", "count", None),
    ("info_msg", "string", None),
    ("tags", "set[enum]", None),
    ("username", "string", None),
    ("password", "string", None),
    ("proxied", "set[string]", None),
    ("orig_fuids", "vector[string]", None),
    ("orig_filenames", "vector[string]", None),
    ("orig_mime_types", "vector[string]", None),
    ("resp_fuids", "vector[string]", None),
    ("resp_filenames", "vector[string]", None),
    ("resp_mime_types", "vector[string]", "resp_mime_type"),
)
SSL_FIELDS: ZeekFields = (
    *ID_FIELDS,
    ("version", "string", None),
    ("cipher", "string", None),
    ("curve", "string", None),
    ("server_name", "string", "tls_sni"),
    ("resumed", "bool", None),
    ("last_alert", "string", None),
    ("next_protocol", "string", None),
    ("established", "bool", None),
    ("ssl_history", "string", None),
)
LOG_FIELDS: dict[str, ZeekFields] = {"dns": DNS_FIELDS, "http": HTTP_FIELDS, "ssl": SSL_FIELDS}
ZEEK_LOGS: dict[str, ZeekFields] = {"conn": CONN_FIELDS, **LOG_FIELDS}  # every Zeek log we write, by Zeek path

QTYPE_NAMES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 10: "NULL", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT"}
QTYPE_NAMES |= {28: "AAAA", 33: "SRV", 35: "NAPTR", 43: "DS", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 255: "*"}
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}  # RFC 1035/2136
_CONNECTION = ["run_id", "uid", "orig_h", "orig_p", "resp_h", "resp_p", "proto"]


def dns_log(events: pd.DataFrame) -> pd.DataFrame:
    """One row per DNS query and its answer (or an answer alone, when its query was not seen)."""
    e = events[events["kind"] == "dns"]
    answer = e["dns_response"].fillna(False).astype(bool)
    keys = [*_CONNECTION, "dns_qname", "dns_qtype"]
    queries = e[~answer].groupby(keys, dropna=False, sort=False)["ts"].min().rename("query_ts")
    answers = e[answer].groupby(keys, dropna=False, sort=False)
    answers = answers.agg(
        answer_ts=("ts", "min"),
        dns_rcode=("dns_rcode", "first"),
        dns_answers=("dns_answers", "first"),
        dns_ttls=("dns_ttls", "first"),
    )
    rows = pd.concat([queries, answers], axis=1).reset_index()
    rows["ts"] = rows["query_ts"].fillna(rows["answer_ts"])
    rows["rtt"] = rows["answer_ts"] - rows["query_ts"]
    rows["qtype_name"] = rows["dns_qtype"].map(QTYPE_NAMES)
    rows["rcode_name"] = rows["dns_rcode"].map(RCODE_NAMES)
    return rows.sort_values(["ts", "uid"], kind="stable")


def http_log(events: pd.DataFrame) -> pd.DataFrame:
    """The n-th request of each connection with its n-th response (HTTP/1.x answers in order)."""
    e = events[events["kind"] == "http"].sort_values("ts", kind="stable")
    requests = e[e["http_method"].notna()]
    responses = e[e["http_method"].isna() & e["http_status"].notna()]
    requests = requests.assign(trans_depth=requests.groupby(["run_id", "uid"]).cumcount() + 1)
    responses = responses.assign(trans_depth=responses.groupby(["run_id", "uid"]).cumcount() + 1)
    request_columns = ["ts", "http_method", "http_host", "http_uri", "http_user_agent", "http_content_length"]
    response_columns = ["ts", "http_status", "http_content_type", "http_content_length"]
    rows = pd.merge(
        requests[[*_CONNECTION, "trans_depth", *request_columns]],
        responses[["run_id", "uid", "trans_depth", *response_columns]],
        on=["run_id", "uid", "trans_depth"],
        how="outer",
        suffixes=("", "_response"),
    )
    answered_alone = rows["ts"].isna()  # a response whose request was not seen: its connection from the conn
    if answered_alone.any():
        connection = e.drop_duplicates(["run_id", "uid"]).set_index(["run_id", "uid"])[_CONNECTION[2:]]
        filled = rows.loc[answered_alone, ["run_id", "uid"]].join(connection, on=["run_id", "uid"])
        rows.loc[answered_alone, _CONNECTION[2:]] = filled[_CONNECTION[2:]].to_numpy()
    rows["ts"] = rows["ts"].fillna(rows["ts_response"])
    rows["request_body_len"] = rows["http_content_length"]
    rows["response_body_len"] = rows["http_content_length_response"]
    rows["resp_mime_type"] = rows["http_content_type"].str.split(";").str[0].str.strip().str.lower()
    return rows.sort_values(["ts", "uid"], kind="stable")


def ssl_log(events: pd.DataFrame) -> pd.DataFrame:
    """One row per TLS connection: the server name of its first ClientHello."""
    e = events[events["kind"] == "ssl"].sort_values("ts", kind="stable")
    return e.drop_duplicates(["run_id", "uid"])


BUILDERS = {"dns": dns_log, "http": http_log, "ssl": ssl_log}


def app_log(events: pd.DataFrame, log: str) -> pd.DataFrame:
    """The rows of Zeek's ``log`` (dns, http or ssl) from stored app_events rows."""
    return BUILDERS[log](events).reset_index(drop=True)


def zeek_writer(out: TextIO, log: str, as_json: bool) -> ZeekLogWriter | ZeekJsonWriter:
    """The one writer of Zeek's ``log`` (conn, dns, http, ssl): TSV with header lines, or JSON lines.

    The export and the live logs (:mod:`.zeek_live`) both write through it, so their rows are the same text.
    """
    fields = ZEEK_LOGS[log]
    return ZeekJsonWriter(out, fields) if as_json else ZeekLogWriter(out, fields, log)
