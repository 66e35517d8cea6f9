"""``--detectors`` on the real command line: only the chosen detectors raise alerts."""

from __future__ import annotations

from pathlib import Path

from conftest import read_json, run_cli


def test_detectors_none_raises_no_known_attack_alert(tmp_path: Path, syn_scan):
    capture = syn_scan.path
    every = read_json(tmp_path / "all", capture)
    assert "port_scan" in {a["kind"] for a in every["alerts"]}  # what the selection takes away
    assert read_json(tmp_path / "none", capture, "--detectors", "none")["alerts"] == []


def test_detectors_list_runs_only_those(tmp_path: Path, syn_scan):
    summary = read_json(tmp_path, syn_scan.path, "--detectors", "port_scan,dga")
    assert {a["kind"] for a in summary["alerts"]} == {"port_scan"}


def test_an_unknown_detector_is_a_one_line_error(tmp_path: Path, syn_scan):
    proc = run_cli("--read", str(syn_scan.path), "--no-dashboard", "--detectors", "port_scam")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "error: detectors: unknown detector 'port_scam'; known: " + ", ".join(_known())
    ]


def _known() -> list[str]:
    from traffic_analyzer.detection.catalogue import BY_NAME

    return list(BY_NAME)
