"""Indicator files and the intel_match rule on hand-built files and windows: loading, look-ups, alerts, reload."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from builders import dns_answer, dns_query, feed, flow, http_request, summary, tcp, window

from traffic_analyzer.cli import run_settings
from traffic_analyzer.detection import intel_match
from traffic_analyzer.detection.intel import ADDR, DOMAIN, SUBNET, URL, IndicatorSet
from traffic_analyzer.detection.intel_files import load_intel
from traffic_analyzer.detection.intel_match import IntelMatchDetector
from traffic_analyzer.errors import AnalyzerError, ConfigError
from traffic_analyzer.pipeline import default_detectors
from traffic_analyzer.reload import reloaded_indicators, swapped_detectors
from traffic_analyzer.settings import Config, config_of, validate

pytestmark = pytest.mark.unit

CLIENT, RESOLVER, C2 = "10.0.0.5", "10.0.0.53", "198.51.100.7"
ZEEK_HEADER = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n"


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def indicators(folder: Path, text: str, name: str = "feodo.txt") -> IndicatorSet:
    return load_intel([write(folder, name, text)])[0]


# loading: plain lists and Zeek intel files; bad lines skipped and counted, unreadable files one error


def test_a_plain_list_takes_addresses_ranges_domains_and_skips_comments(tmp_path):
    text = "# feed\n\n198.51.100.7\n203.0.113.0/24 ; SBL1\n*.Evil.Example.\n2001:db8::/32\n"
    intel, [report] = load_intel([write(tmp_path, "feodo.txt", text)])
    assert intel.counts() == {ADDR: 1, SUBNET: 2, DOMAIN: 1, URL: 0}
    assert report.indicators == 4 and report.bad_lines == 0 and report.warning() is None
    assert intel.sources == ("feodo.txt",)


def test_bad_lines_are_skipped_and_counted_in_one_warning_naming_the_file_and_first_line(tmp_path):
    text = "198.51.100.7\nnot an indicator\n999.1.1.1\nevil.example\n"
    intel, [report] = load_intel([write(tmp_path, "feodo.txt", text)])
    assert len(intel) == 2 and report.bad_lines == 2
    assert report.warning() == (
        f"intel file {tmp_path / 'feodo.txt'}: skipped 2 bad lines (first: line 2, 'not an indicator')"
    )


def test_a_zeek_intel_file_keeps_its_types_and_sources_and_counts_the_others(tmp_path):
    text = ZEEK_HEADER + (
        "198.51.100.7\tIntel::ADDR\tfeodo\tC2\n"
        "203.0.113.0/24\tIntel::SUBNET\t-\t-\n"
        "Evil.Example\tIntel::DOMAIN\tabuse.ch\t-\n"
        "evil.example/gate.php\tIntel::URL\tabuse.ch\t-\n"
        "bad@evil.example\tIntel::EMAIL\tabuse.ch\t-\n"
        "198.51.100.0/24\tIntel::ADDR\tfeodo\t-\n"
        "short line\n"
    )
    intel, [report] = load_intel([write(tmp_path, "intel.dat", text)])
    assert intel.counts() == {ADDR: 1, SUBNET: 1, DOMAIN: 1, URL: 1}
    assert report.ignored == {"Intel::EMAIL": 1} and report.bad_lines == 2  # an ADDR with a prefix, a short line
    assert "ignored 1 indicators of other types (Intel::EMAIL 1)" in report.warning()
    found = intel.match_addresses(pd.Series(["203.0.113.9"]))
    assert found.to_dict("records") == [
        {"value": "203.0.113.9", "indicator": "203.0.113.0/24", "indicator_type": SUBNET, "source": "intel.dat"}
    ]


def test_an_indicator_named_by_two_lists_names_both(tmp_path):
    first, second = write(tmp_path, "a.txt", "evil.example\n"), write(tmp_path, "b.txt", "EVIL.example\n")
    intel, _ = load_intel([first, second])
    assert intel.match_domains(pd.Series(["evil.example"]))["source"].tolist() == ["a.txt, b.txt"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("missing.txt", None, "intel file {path} cannot be read: No such file or directory"),
        ("junk.txt", "hello world\nfoo bar\n", "intel file {path} line 1: 'hello world' is not an indicator"),
        ("bad.dat", "#fields\tindicator\tmeta.source\n1.2.3.4\tx\n", "intel file {path} line 1: a Zeek intel header"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_line_naming_it(tmp_path, name, text, message):
    path = write(tmp_path, name, text) if text is not None else str(tmp_path / name)
    with pytest.raises(AnalyzerError) as info:
        load_intel([path])
    assert str(info.value).startswith(message.format(path=path)) and "\n" not in str(info.value)


# look-ups: longest prefix, both address families, a domain and its subdomains only


def test_addresses_match_the_most_specific_listed_network(tmp_path):
    intel = indicators(tmp_path, "10.0.0.0/8\n10.1.0.0/16\n10.1.2.3\n2001:db8::/32\n")
    values = ["10.1.2.3", "10.1.9.9", "10.200.0.1", "11.0.0.1", "2001:db8:5::1", "2001:db9::1", "not-an-ip"]
    found = intel.match_addresses(pd.Series(values))
    assert dict(zip(found["value"], found["indicator"], strict=True)) == {
        "10.1.2.3": "10.1.2.3",
        "10.1.9.9": "10.1.0.0/16",
        "10.200.0.1": "10.0.0.0/8",
        "2001:db8:5::1": "2001:db8::/32",
    }
    assert found.set_index("value")["indicator_type"].to_dict()["10.1.2.3"] == ADDR


def test_a_domain_matches_itself_and_its_subdomains_not_lookalikes(tmp_path):
    intel = indicators(tmp_path, "evil.example\nx.good.example\n")
    names = [
        "evil.example",
        "A.B.Evil.Example.",
        "notevil.example",
        "evil.example.com",
        "good.example",
        "x.good.example:443",
    ]
    found = intel.match_domains(pd.Series(names))
    assert dict(zip(found["value"], found["indicator"], strict=True)) == {
        "evil.example": "evil.example",
        "A.B.Evil.Example.": "evil.example",
        "x.good.example:443": "x.good.example",
    }


# the rule: who is named, what the explanation says, one alert per indicator and host


def test_a_flow_to_a_listed_address_names_the_local_host_as_victim(tmp_path):
    detector = IntelMatchDetector(indicators=indicators(tmp_path, "198.51.100.7\n"))
    alerts = detector.detect(window(flow_rows=[flow(100.0, CLIENT, C2, 443)]))
    assert [summary(a) for a in alerts] == [("intel_match", C2, [CLIENT], 100.0, 100.0)]
    assert alerts[0].explanation == (
        f"{CLIENT} connected to {C2} (conn responder, tcp/443) listed as Intel::ADDR in feodo.txt."
    )
    assert alerts[0].severity == "high" and alerts[0].detector == "intel_match"


def test_a_listed_host_reaching_in_is_the_attacker_too(tmp_path):
    detector = IntelMatchDetector(indicators=indicators(tmp_path, "198.51.100.0/24\n"))
    alerts = detector.detect(window(flow_rows=[flow(100.0, C2, CLIENT, 22)]))
    assert alerts[0].explanation == (
        f"{CLIENT} was contacted by {C2} (conn originator, tcp/22), in 198.51.100.0/24 listed as Intel::SUBNET "
        "in feodo.txt."
    )


def test_values_seen_before_are_answered_from_memory_and_a_new_list_forgets_them(tmp_path):
    lists = indicators(tmp_path, "198.51.100.7\nevil.example\n")
    asked: list[list[str]] = []
    real = lists.match_addresses

    def counted(values: pd.Series) -> pd.DataFrame:
        asked.append(list(values))
        return real(values)

    lists.match_addresses = counted
    detector = IntelMatchDetector(indicators=lists)
    first = detector.detect(window(flow_rows=[flow(100.0, CLIENT, C2, 443)]))
    again = detector.detect(window(flow_rows=[flow(110.0, CLIENT, C2, 443), flow(111.0, CLIENT, "10.0.0.9", 80)]))
    # each window looks up only the values no window showed before: the client and the server once
    assert asked == [[CLIENT, C2], ["10.0.0.9"]]
    assert [summary(a) for a in first] == [("intel_match", C2, [CLIENT], 100.0, 100.0)]
    assert [summary(a) for a in again] == [("intel_match", C2, [CLIENT], 100.0, 110.0)]

    detector.indicators = indicators(tmp_path, "10.0.0.9\n", name="other.txt")  # a reload with other lists
    alerts = detector.detect(window(flow_rows=[flow(120.0, CLIENT, "10.0.0.9", 80)]))
    assert [summary(a) for a in alerts] == [("intel_match", "10.0.0.9", [CLIENT], 120.0, 120.0)]


def test_a_listed_value_is_still_found_after_the_memory_of_values_starts_over(tmp_path, monkeypatch):
    monkeypatch.setattr(intel_match, "MAX_REMEMBERED", 4)  # a handful of values, then the memory starts over
    detector = IntelMatchDetector(indicators=indicators(tmp_path, "198.51.100.7\n"))
    for second in range(10):
        others = [flow(100.0 + 10 * second, CLIENT, f"10.0.{second}.{i}", 80) for i in range(3)]
        alerts = detector.detect(window(flow_rows=[flow(100.0 + 10 * second, CLIENT, C2, 443), *others]))
        assert [(a.attacker, a.victims) for a in alerts] == [(C2, [CLIENT])], second


def test_a_dns_lookup_of_a_listed_domain_is_explained_with_source_type_and_field(tmp_path):
    detector = IntelMatchDetector(indicators=indicators(tmp_path, "evil.example\n"))
    alerts = detector.detect(window([dns_query(10.0, CLIENT, RESOLVER, "evil.example")]))
    assert [summary(a) for a in alerts] == [("intel_match", "evil.example", [CLIENT], 10.0, 10.0)]
    assert alerts[0].explanation == f"{CLIENT} looked up evil.example (DNS query) listed as Intel::DOMAIN in feodo.txt."


def test_dns_answer_records_match_listed_ranges_and_domains_not_only_the_query_name(tmp_path):
    detector = IntelMatchDetector(indicators=indicators(tmp_path, "198.51.100.0/24\nevil.example\n2001:db8::/32\n"))
    records = "www.evil.example,198.51.100.7,2001:db8::1"
    alerts = detector.detect(window([dns_answer(10.0, RESOLVER, CLIENT, "innocent.example", answers=records)]))
    by_attacker = {a.attacker: a for a in alerts}
    assert set(by_attacker) == {"evil.example", "198.51.100.7", "2001:db8::1"}
    assert all(a.victims == [CLIENT] and a.evidence["fields"] == {"DNS answer": 1} for a in alerts)
    assert by_attacker["198.51.100.7"].explanation == (
        f"{CLIENT} got a DNS answer for 198.51.100.7 (DNS answer), in 198.51.100.0/24"
        " listed as Intel::SUBNET in feodo.txt."
    )
    assert by_attacker["evil.example"].evidence["seen"] == ["www.evil.example"]


def test_unlisted_answer_records_and_queries_with_records_raise_nothing(tmp_path):
    detector = IntelMatchDetector(indicators=indicators(tmp_path, "198.51.100.0/24\nevil.example\n"))
    query = dns_query(10.0, CLIENT, RESOLVER, "innocent.example") | {"dns_answers": "198.51.100.7"}
    answer = dns_answer(10.1, RESOLVER, CLIENT, "innocent.example", answers="good.example,192.0.2.1")
    assert detector.detect(window([query, answer])) == []


def test_dns_answers_tls_and_http_under_one_domain_make_one_alert_per_host(tmp_path):
    detector = IntelMatchDetector(indicators=indicators(tmp_path, "evil.example\n"))
    first = window(
        [dns_query(10.0, CLIENT, RESOLVER, "cdn.evil.example"), dns_answer(10.1, RESOLVER, CLIENT, "cdn.evil.example")]
    )
    second = window(
        [
            tcp(20.0, CLIENT, C2, 443, protocol="TLS", tls_sni="cdn.evil.example"),
            http_request(21.0, CLIENT, C2, "/gate.php", http_host="cdn.evil.example:8080"),
        ]
    )
    alerts = feed(detector, [first, second])
    assert [len(a) for a in alerts] == [1, 1]
    alert = alerts[1][0]
    assert summary(alert) == ("intel_match", "evil.example", [CLIENT], 10.0, 21.0)
    assert alert.explanation == (
        f"{CLIENT} looked up cdn.evil.example (DNS query), under evil.example listed as Intel::DOMAIN in "
        "feodo.txt; 4 matches in all (DNS query 1, DNS answer 1, TLS SNI 1, HTTP Host 1)."
    )
    assert alert.evidence["servers"] == [C2] and alert.evidence["indicator_type"] == DOMAIN


def test_a_listed_url_matches_the_request_as_zeek_writes_it(tmp_path):
    intel = indicators(tmp_path, ZEEK_HEADER + "evil.example/gate.php\tIntel::URL\tfeodo\t-\n", "intel.dat")
    detector = IntelMatchDetector(indicators=intel)
    requests = [
        http_request(5.0, CLIENT, C2, "/gate.php", http_host="Evil.Example"),
        http_request(6.0, CLIENT, C2, "/other.php", http_host="evil.example"),
    ]
    alerts = detector.detect(window(requests))
    assert [summary(a) for a in alerts] == [("intel_match", "evil.example/gate.php", [CLIENT], 5.0, 5.0)]
    assert alerts[0].explanation == (
        f"{CLIENT} requested Evil.Example/gate.php (HTTP URL) listed as Intel::URL in feodo."
    )


def test_without_indicators_nothing_is_found_and_nothing_is_looked_up():
    assert IntelMatchDetector().detect(window(flow_rows=[flow(1.0, CLIENT, C2, 443)])) == []


def test_the_score_sets_the_severity_and_is_checked():
    assert IntelMatchDetector(score=95).score == 95
    with pytest.raises(ValueError, match="score"):
        IntelMatchDetector(score=120)


# the setting, the command line and a reload


def test_the_setting_is_a_list_of_paths_and_the_command_line_adds_to_the_config_file(tmp_path):
    with pytest.raises(ConfigError, match="intel_files must be a list of file paths"):
        validate({"intel_files": "feodo.txt"})
    config = tmp_path / "config.py"
    config.write_text("CONFIG = {'intel_files': ['a.txt']}\n")
    assert run_settings(str(config), {"intel_files": ["b.txt", "a.txt"]})["intel_files"] == ["a.txt", "b.txt"]
    assert config_of({"intel_files": ["a.txt"]}).intel_files == ("a.txt",)


def test_a_reload_rereads_the_files_and_a_bad_file_keeps_the_running_indicators(tmp_path, caplog):
    path = write(tmp_path, "feodo.txt", "198.51.100.7\n")
    logger = logging.getLogger("intel-reload-test")
    old = Config(intel_files=(path,))
    running = reloaded_indicators(old.intel_files, IndicatorSet(), logger)
    detectors = default_detectors(25, 60.0, intel=running)
    assert swapped_detectors(detectors, old, old, reloaded_indicators(old.intel_files, running, logger)) is detectors

    write(tmp_path, "feodo.txt", "198.51.100.7\nevil.example\n")
    changed = reloaded_indicators(old.intel_files, running, logger)
    swapped = swapped_detectors(detectors, old, old, changed)
    kept = [new is before for new, before in zip(swapped, detectors, strict=True)]
    assert kept == [d.name != "intel_match" for d in detectors]
    assert next(d for d in swapped if d.name == "intel_match").indicators is changed

    Path(path).unlink()
    with caplog.at_level(logging.WARNING, logger="intel-reload-test"):
        assert reloaded_indicators(old.intel_files, changed, logger) is changed
    assert f"intel file {path} cannot be read" in caplog.text and "the indicators loaded before stay" in caplog.text


def test_parsed_indicators_are_kept_for_the_next_start_and_follow_the_files(tmp_path):
    path = write(tmp_path, "feodo.txt", "198.51.100.7\nevil.example\nbad line\n")
    cache = tmp_path / "data"
    cache.mkdir()
    first, [report] = load_intel([path], cache)
    [kept] = cache.glob("intel-cache-*.pickle")
    again, [report_again] = load_intel([path], cache)
    assert again.fingerprint == first.fingerprint and again.counts() == first.counts() == {
        ADDR: 1, SUBNET: 0, DOMAIN: 1, URL: 0
    }  # fmt: skip
    assert report_again.warning() == report.warning() and "skipped 1 bad lines" in report.warning()
    assert again is not first  # read back from the cache, not parsed: the same set

    write(tmp_path, "feodo.txt", "198.51.100.7\n")  # other bytes: parsed again, the old cache dropped
    changed, _ = load_intel([path], cache)
    assert changed.counts()[DOMAIN] == 0 and not kept.exists() and len(list(cache.glob("intel-cache-*"))) == 1

    [current] = cache.glob("intel-cache-*.pickle")
    current.write_bytes(b"not a pickle")  # a damaged cache is parsed over, never trusted
    assert load_intel([path], cache)[0].counts()[ADDR] == 1
    assert load_intel([path], tmp_path / "missing")[0].counts()[ADDR] == 1  # a folder it cannot write: no cache
