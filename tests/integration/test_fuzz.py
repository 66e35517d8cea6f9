"""Hostile capture files: a few hundred fuzz cases, the regression captures the fuzzer found, and the harness.

Every case goes through the fast reader (and a share through tshark) and the whole analysis in a
worker process (scripts/fuzz_captures.py); the only accepted outcomes are a result or one of our
one-line errors. The full run (10,000 cases) is the documented command in the README.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, ROOT, run_cli

sys.path.insert(0, str(ROOT / "scripts"))

import fuzz_captures  # noqa: E402
import fuzz_cases  # noqa: E402

from traffic_analyzer.capture.fast_pcap import FastPcapSource  # noqa: E402
from traffic_analyzer.capture.pcap_file import PcapFileSource  # noqa: E402
from traffic_analyzer.packets.decode_batch import FrameDecoder  # noqa: E402
from traffic_analyzer.packets.decode_frames import HEADER_BYTES, Frames  # noqa: E402
from traffic_analyzer.records.packets import (  # noqa: E402
    PACKET_SCHEMA,
    TSHARK_FIELDS,
    empty_packets,
    fit_integers,
    packets_from_fields,
)

REGRESSIONS = DATA / "fuzz_regressions"
REGRESSION_NAMES = sorted(p.name for p in REGRESSIONS.glob("*.pcap*"))
FUZZ_SEED = 2024  # fixed: the suite runs the same cases every time
SUITE_CASES = 300


def read_all(source) -> pd.DataFrame:
    return pd.concat(list(source.batches()), ignore_index=True)


# --------------------------------------------------------------------------- numbers that do not fit a column


def test_out_of_range_numbers_become_nulls_never_wrap():
    values = pd.Series([-129, -128, 127, 128, 65281, 2.5, 1e30])
    got = fit_integers(values.to_numpy(dtype=float), values.notna().to_numpy(), "Int8")
    assert got.tolist() == [pd.NA, -128, 127, pd.NA, pd.NA, pd.NA, pd.NA]
    big = fit_integers(pd.Series([2**63 - 1, 0]).to_numpy(), [True, False], "Int64")
    assert big.tolist() == [2**63 - 1, pd.NA]


def test_text_path_batch_of_only_out_of_range_values_does_not_raise():
    """pandas' astype raised TypeError on a batch whose values were all out of range (no nulls to mask)."""
    fields = pd.DataFrame({name: [""] * 2 for name in TSHARK_FIELDS})
    fields["frame.time_epoch"] = ["1700000000.0", "1700000001.0"]
    fields["frame.len"] = ["60", "60"]
    fields["arp.opcode"] = ["65281", "300"]
    fields["http.content_length"] = ["99999999999999999999999", "18446744073709551615"]
    fields["http.response.code"] = ["99999", "200"]
    table = packets_from_fields(fields)
    assert dict(table.dtypes) == PACKET_SCHEMA
    assert table["arp_op"].isna().all() and table["http_content_length"].isna().all()
    assert table["http_status"].tolist() == [pd.NA, 200]


def test_both_readers_null_an_out_of_range_arp_opcode_and_http_numbers(tmp_path):
    frames = dict(fuzz_cases.crafted_frames())
    names = ["arp-opcode-ff01", "http-content-length-huge", "http-status-huge"]
    path = tmp_path / "numbers.pcap"
    path.write_bytes(fuzz_cases.pcap_file([frames[name] for name in names]))
    ref, got = read_all(PcapFileSource(path, progress=False)), read_all(FastPcapSource(path, progress=False))
    pd.testing.assert_frame_equal(got, ref)
    assert got.loc[0, "transport"] == "arp" and pd.isna(got.loc[0, "arp_op"])
    assert got["http_content_length"].isna().all() and got["http_status"].isna().all()


def test_decoder_given_no_frames_gives_the_empty_table():
    """Found by scripts/fuzz_atheris.py: zero frames failed in the concatenation of slices."""
    none = np.zeros(0, dtype=np.int64)
    frames = Frames(buf=np.zeros(HEADER_BYTES + 8, dtype=np.uint8), start=none, caplen=none, length=none, linktype=none)
    pd.testing.assert_frame_equal(FrameDecoder().table(frames, np.zeros(0)), empty_packets())


# --------------------------------------------------------------------------- the fuzz cases


def test_cases_are_deterministic_and_small():
    seeds = fuzz_cases.load_seeds()
    first = [fuzz_cases.make_case(seeds, FUZZ_SEED, n) for n in range(50)]
    again = [fuzz_cases.make_case(seeds, FUZZ_SEED, n) for n in range(50)]
    assert [c.data for c in first] == [c.data for c in again]
    assert len({c.data for c in first}) > 45 and max(len(c.data) for c in first) < 2**20


def test_fuzz_cases_never_crash_hang_or_exhaust_memory(tmp_path):
    run = fuzz_captures.run_cases(FUZZ_SEED, list(range(SUITE_CASES)), jobs=2, workdir=tmp_path)
    counts = run.count()
    assert len(run.results) == SUITE_CASES
    saved = fuzz_captures.save_reproducers(run, tmp_path / "reproducers")
    assert not saved, f"{fuzz_captures.summary(run)}\nreproducers: {saved}"
    assert counts["ok"] > SUITE_CASES / 4 and counts["error"] > SUITE_CASES / 10, counts  # the cases reach both
    readers = [name for r in run.results.values() for name in r["readers"]]
    assert readers.count("fast") == SUITE_CASES and readers.count("tshark") > 10


def test_protocol_flips_hit_headers_and_payloads_of_every_public_capture(pcaps):
    """The protocol-flips campaign takes each public capture in turn and flips bits only inside IP
    headers, TCP/UDP headers and DNS/TCP payloads (where iodine-bitflips.pcap's flips were)."""
    seeds = fuzz_cases.load_seeds()
    public = {s.name: s for s in seeds if not s.crafted and not s.name.startswith("tiny-")}
    here = {p.name for p in pcaps.iterdir() if p.suffix in (".pcap", ".pcapng", ".cap")} - set(pcaps.missing())
    assert set(public) == here  # the public captures, not the stand-ins a clone makes
    cases = [fuzz_cases.make_flip_case(seeds, FUZZ_SEED, n) for n in range(2 * len(public))]
    assert {c.seed for c in cases} == set(public)
    hit = Counter()
    for case in cases:
        seed = public[case.seed]
        linktype = fuzz_cases.linktype_of(seed.data, seed.pcapng)
        assert len(case.data) == len(seed.data) and case.data != seed.data
        changed = {i for i, (a, b) in enumerate(zip(seed.data, case.data, strict=True)) if a != b}
        for _, frame, caplen in seed.records:
            regions = fuzz_cases.protocol_regions(seed.data[frame : frame + caplen], linktype)
            for name, (start, end) in regions.items():
                inside = {i for i in changed if frame + start <= i < frame + end}
                hit[name] += len(inside)
                changed -= inside
        assert not changed, f"{case.seed}: bytes changed outside IP/TCP/UDP headers and payloads: {sorted(changed)}"
    assert min(hit[name] for name in fuzz_cases.PROTOCOL_REGIONS) > 10, hit


def test_protocol_flip_cases_through_the_read_code_never_crash(tmp_path):
    """A few cases of the campaign through the whole --read run (the read harness), tshark for some."""
    numbers = list(range(12))
    run = fuzz_captures.run_cases(
        FUZZ_SEED, numbers, jobs=2, tshark_share=0.25, workdir=tmp_path, campaign="protocol-flips", harness="read"
    )
    saved = fuzz_captures.save_reproducers(run, tmp_path / "reproducers")
    assert not saved, f"{fuzz_captures.summary(run)}\nreproducers: {saved}"
    readers = [name for r in run.results.values() for name in r["readers"]]
    assert readers.count("auto") == len(numbers) and "tshark" in readers


@pytest.mark.parametrize("name", REGRESSION_NAMES)
def test_regression_capture_is_read_up_to_its_damage_by_both_readers(name):
    """What the fuzzer found (tests/data/fuzz_regressions/README.md): no crash, and the fast reader
    stops where tshark does (same outcome, same message, same packets analysed)."""
    result = fuzz_captures.run_case(REGRESSIONS / name, tshark=True, model=None)
    assert result["outcome"] in ("ok", "error"), result["message"]
    fast, tshark = result["readers"]["fast"], result["readers"]["tshark"]
    assert (fast["outcome"], fast["message"], fast["packets"]) == (
        tshark["outcome"],
        tshark["message"],
        tshark["packets"],
    )


@pytest.mark.parametrize("name", REGRESSION_NAMES)
def test_regression_capture_ends_cleanly_through_the_command_line(name, tmp_path):
    """The same captures through ``--read`` as a user runs it: a summary, or exit 2 with one error line."""
    proc = run_cli(
        "--read", str(REGRESSIONS / name), "--no-dashboard", "--json", "--no-progress",
        "--data-dir", str(tmp_path / "data"), "--log-file", str(tmp_path / "analysis.log"),
    )  # fmt: skip
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 2), proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == (proc.returncode == 2), proc.stderr
    assert json.loads(proc.stdout)["source"]  # the summary of what was read before any damage


# --------------------------------------------------------------------------- the harness finds what it should


def test_harness_reports_a_hang_and_recovers(tmp_path):
    fifo = tmp_path / "never-written.pcap"
    os.mkfifo(fifo)  # opening it for reading blocks forever: the worker must be given up on
    good = DATA / "tiny-ethernet.pcap"
    worker = fuzz_captures.Worker(fuzz_captures.MEMORY_MB, tmp_path / "worker.log")
    try:
        assert worker.run(fifo, tshark=False, timeout_s=3)["outcome"] == "hang"
        assert worker.run(good, tshark=False, timeout_s=120)["outcome"] == "ok"
    finally:
        worker.close()


def test_harness_reports_a_crash_with_its_traceback(tmp_path):
    class BrokenModel:
        """Stands in for an anomaly model that fails: any exception outside our errors is a crash."""

    result = fuzz_captures.run_case(DATA / "tiny-ethernet.pcap", tshark=False, model=BrokenModel())
    assert result["outcome"] == "crash" and "Traceback" in result["message"]


def test_harness_reports_a_cut_file_as_a_clean_error_with_its_packets(tmp_path):
    data = (DATA / "tiny-ethernet.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: len(data) - 10])
    result = fuzz_captures.run_case(path, tshark=True, model=None)
    fast, tshark = result["readers"]["fast"], result["readers"]["tshark"]
    assert result["outcome"] == "error" and fast["message"] == tshark["message"]
    assert "is cut short" in fast["message"] and fast["packets"] == tshark["packets"] > 0
