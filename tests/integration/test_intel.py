"""--intel on the real CLI: public captures read with indicator files naming their servers and names."""

from __future__ import annotations

from conftest import read_json, run_cli

FIREFOX_CLIENT, FIREFOX_SERVER = "192.168.1.13", "178.62.197.130"  # benign-tls-firefox.pcap: www.ntop.org over TLS
IODINE_CLIENT = "10.0.2.30"  # dns-tunnel-iodine.pcap: its queries go to subdomains of pirate.sea


def test_a_listed_server_and_its_name_are_reported_with_their_list(pcaps, tmp_path):
    plain = tmp_path / "feodo.txt"
    plain.write_text(f"# test list\n{FIREFOX_SERVER}\n")
    zeek = tmp_path / "intel.dat"
    zeek.write_text("#fields\tindicator\tindicator_type\tmeta.source\nwww.ntop.org\tIntel::DOMAIN\tntop-feed\n")
    summary = read_json(tmp_path, pcaps / "benign-tls-firefox.pcap", "--intel", str(plain), "--intel", str(zeek))
    found = {(a["attacker"], tuple(a["victims"])): a for a in summary["alerts"] if a["kind"] == "intel_match"}
    assert set(found) == {(FIREFOX_SERVER, (FIREFOX_CLIENT,)), ("www.ntop.org", (FIREFOX_CLIENT,))}
    assert found[(FIREFOX_SERVER, (FIREFOX_CLIENT,))]["explanation"] == (
        f"{FIREFOX_CLIENT} connected to {FIREFOX_SERVER} (conn responder, tcp/443) listed as Intel::ADDR in feodo.txt."
    )
    assert found[("www.ntop.org", (FIREFOX_CLIENT,))]["explanation"] == (
        f"{FIREFOX_CLIENT} opened TLS to www.ntop.org (TLS SNI) listed as Intel::DOMAIN in ntop-feed."
    )
    assert all(a["severity"] == "high" for a in found.values())
    assert "loaded 2 indicators" in (tmp_path / "analysis.log").read_text()


def test_a_listed_domain_matches_the_tunnels_subdomains_in_one_alert(pcaps, tmp_path):
    listed = tmp_path / "tunnels.txt"
    listed.write_text("pirate.sea\nnot an indicator\n")
    proc = run_cli(
        "--read",
        str(pcaps / "dns-tunnel-iodine.pcap"),
        "--no-dashboard",
        "--no-progress",
        "--detectors",
        "intel_match",
        "--data-dir",
        str(tmp_path / "data"),
        "--log-file",
        str(tmp_path / "analysis.log"),
        "--intel",
        str(listed),
    )
    assert proc.returncode == 0, proc.stderr
    assert f"intel file {listed}: skipped 1 bad lines (first: line 2, 'not an indicator')" in proc.stderr
    assert f"[high] intel_match pirate.sea -> {IODINE_CLIENT}: {IODINE_CLIENT} looked up " in proc.stderr
    assert "under pirate.sea listed as Intel::DOMAIN in tunnels.txt" in proc.stderr


def test_an_unreadable_intel_file_ends_the_run_with_one_line(pcaps, tmp_path):
    missing = tmp_path / "missing.txt"
    proc = run_cli(
        "--read", str(pcaps / "benign-tls-firefox.pcap"), "--no-dashboard", "--data-dir", str(tmp_path / "data"),
        "--log-file", str(tmp_path / "analysis.log"), "--intel", str(missing),
    )  # fmt: skip
    assert proc.returncode == 1
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line == f"error: intel file {missing} cannot be read: No such file or directory"
