"""Acknowledgements and the allow-list: the pure rule, and their tables beside a real result store."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from traffic_analyzer.store.annotations import AllowEntry, AllowList, AnnotationStore, allowed
from traffic_analyzer.store.engine import store_url
from traffic_analyzer.store.reader import ResultReader
from traffic_analyzer.store.writer import ResultWriter

SCANNER, TARGET, OTHER = "10.0.0.1", "10.0.0.2", "10.0.0.3"


@pytest.mark.parametrize(
    ("entries", "kind", "attacker", "victims", "expected"),
    [
        ([], "port_scan", SCANNER, [TARGET], False),
        ([AllowEntry("host", attacker=SCANNER)], "port_scan", SCANNER, [TARGET], True),
        ([AllowEntry("host", attacker=SCANNER)], "brute_force", SCANNER, [TARGET, OTHER], True),
        ([AllowEntry("host", attacker=SCANNER)], "port_scan", TARGET, [SCANNER], False),  # victims are not hosts
        ([AllowEntry("pair", attacker=SCANNER, victim=TARGET)], "port_scan", SCANNER, [TARGET], True),
        ([AllowEntry("pair", attacker=SCANNER, victim=TARGET)], "anomaly", SCANNER, [TARGET], True),
        ([AllowEntry("pair", attacker=SCANNER, victim=TARGET)], "port_scan", OTHER, [TARGET], False),
        # an alert that also hits a victim the pairs do not cover still fires
        ([AllowEntry("pair", attacker=SCANNER, victim=TARGET)], "sweep", SCANNER, [TARGET, OTHER], False),
        (
            [AllowEntry("pair", attacker=SCANNER, victim=TARGET), AllowEntry("pair", attacker=SCANNER, victim=OTHER)],
            "sweep",
            SCANNER,
            [TARGET, OTHER],
            True,
        ),
        ([AllowEntry("pair", attacker=SCANNER, victim=TARGET)], "port_scan", SCANNER, [], False),
        ([AllowEntry("kind", kind="anomaly")], "anomaly", OTHER, ["many"], True),
        ([AllowEntry("kind", kind="anomaly")], "port_scan", OTHER, [TARGET], False),
    ],
)
def test_allowed_follows_the_scope_of_each_entry(entries, kind, attacker, victims, expected):
    assert allowed(kind, attacker, victims, entries) is expected
    assert AllowList(tuple(entries)).allows(kind, attacker, victims) is expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scope": "network"}, "allow-list scope must be one of host, pair, kind, not 'network'"),
        ({"scope": "host"}, "a host allow-list entry needs attacker"),
        ({"scope": "pair", "attacker": SCANNER}, "a pair allow-list entry needs victim"),
        ({"scope": "kind", "attacker": SCANNER}, "a kind allow-list entry needs kind"),
    ],
)
def test_an_incomplete_entry_is_refused_with_what_it_lacks(kwargs, message):
    with pytest.raises(ValueError) as caught:
        AllowEntry(**kwargs)
    assert str(caught.value) == message


def test_a_store_nobody_annotated_reads_as_empty_and_gets_no_tables(tmp_path):
    url = store_url(tmp_path)
    ResultWriter(url).close()
    store = AnnotationStore(url)

    assert store.acknowledged() == {}
    assert store.allow_entries() == []
    assert AllowList.load(url) == AllowList(())
    assert not {"alert_acknowledgements", "allow_list"} & set(sa.inspect(sa.create_engine(url)).get_table_names())
    store.close()


def test_acknowledgements_and_entries_survive_a_new_connection(tmp_path):
    url = store_url(tmp_path)
    ResultWriter(url).close()
    first = AnnotationStore(url)
    first.acknowledge("abc123")
    first.acknowledge("abc123")  # again: keeps the first time, no error
    first.add(AllowEntry("host", attacker=SCANNER, note="from alert abc123 (port_scan)"))
    first.add(AllowEntry("host", attacker=SCANNER))  # a duplicate changes nothing
    first.add(AllowEntry("pair", attacker=SCANNER, victim=TARGET))
    first.add(AllowEntry("kind", kind="anomaly"))
    acked_at = first.acknowledged()["abc123"]
    first.close()

    second = AnnotationStore(url)
    assert second.acknowledged() == {"abc123": acked_at}
    entries = second.allow_entries()
    assert [(e.scope, e.attacker, e.victim, e.kind) for e in entries] == [
        ("host", SCANNER, "", ""),
        ("pair", SCANNER, TARGET, ""),
        ("kind", "", "", "anomaly"),
    ]
    assert entries[0].note == "from alert abc123 (port_scan)"
    assert all(e.entry_id is not None and e.created_at is not None for e in entries)
    assert AllowList.load(url).allows("port_scan", SCANNER, [OTHER])

    second.remove(entries[0].entry_id)
    assert not AllowList.load(url).allows("port_scan", SCANNER, [OTHER])
    assert AllowList.load(url).allows("port_scan", SCANNER, [TARGET])  # the pair entry is still there
    second.close()


def test_annotation_tables_stay_apart_from_the_analysis_tables(tmp_path):
    url = store_url(tmp_path)
    writer = ResultWriter(url)
    writer.start_run("r1", "file x.pcap", {"status": "none"})
    AnnotationStore(url).acknowledge("abc123")
    writer.finish_run("r1", "finished")  # the analysis writer keeps writing beside them
    writer.close()

    assert ResultReader(url).latest_run()["status"] == "finished"
    tables = set(sa.inspect(sa.create_engine(url)).get_table_names())
    assert {"alert_acknowledgements", "allow_list", "runs", "alerts"} <= tables
