"""The root keeper starts captures for the unprivileged analyzer: only the one configured capture, once at a time,
and it hands over the pcap stream; requests for another program, interface, filter or option are refused."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import psutil
import pytest

from traffic_analyzer.capture.dumpcap_live import DumpcapLiveSource
from traffic_analyzer.capture.processes import start_keeper, start_kept_capture, stop_keeper
from traffic_analyzer.errors import CaptureError
from traffic_analyzer.privileges import drop_to, target_account

PCAP_HEADER_BYTES = 24
START_TIMEOUT_S = 15
pytestmark = [pytest.mark.process, pytest.mark.root]  # a root keeper process and the root captures it starts


@pytest.fixture
def configured() -> Iterator[list[str]]:
    """A keeper allowed to start dumpcap on loopback with one filter, and the command it allows."""
    if os.geteuid() != 0:
        pytest.skip("the keeper runs captures as root")
    if shutil.which("dumpcap") is None:
        pytest.skip("dumpcap is not installed (./setup.sh installs it)")
    command = DumpcapLiveSource("lo", "udp port 9").command()
    start_keeper(command)
    try:
        yield command
    finally:
        stop_keeper()


def _keeper() -> psutil.Process:
    found = [p for p in psutil.Process().children() if "traffic_analyzer.capture.processes" in p.cmdline()]
    assert len(found) == 1
    return found[0]


def _other_requests(allowed: list[str]) -> list[list[str]]:
    i = allowed.index("-i")
    return [
        ["/bin/sh", "-c", "id"],  # another program
        [shutil.which("tcpdump") or "/usr/sbin/tcpdump", *allowed[1:]],  # another capture program, same options
        [*allowed[: i + 1], "any", *allowed[i + 2 :]],  # another interface
        [*allowed[:-1], "tcp"],  # another filter
        allowed[:-2],  # no filter
        [*allowed, "-w", "/etc/shadow"],  # one option more
        [],
    ]


def test_the_keeper_refuses_anything_but_the_configured_capture(configured):
    for request in _other_requests(configured):
        with pytest.raises(CaptureError, match="refused.*only the configured capture"):
            start_kept_capture(request)
    assert not _keeper().children(), "a refused request started a process"


def test_an_analyzer_that_dropped_root_gets_only_the_configured_capture(configured):
    """The requests come from a process that became nobody, as the analyzer does (fork keeps its keeper socket)."""
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through its exit status)
        refused = 0
        try:
            drop_to(target_account("nobody"))
            for request in _other_requests(configured):
                try:
                    start_kept_capture(request)
                except CaptureError:
                    refused += 1
            capture = start_kept_capture(configured)
            ok = refused == len(_other_requests(configured)) and os.read(capture.stdout.fileno(), PCAP_HEADER_BYTES)
            capture.terminate()
            capture.wait(timeout=START_TIMEOUT_S)
        except BaseException:
            os._exit(2)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged process got another capture, or not this one"


def test_the_keeper_starts_the_configured_capture_once_and_hands_over_its_stream(configured):
    capture = start_kept_capture(configured)
    try:
        process = psutil.Process(capture.pid)
        assert process.ppid() == _keeper().pid and process.uids().effective == 0
        assert process.cmdline() == configured
        header = os.read(capture.stdout.fileno(), PCAP_HEADER_BYTES)  # dumpcap writes it once the interface is open
        assert len(header) == PCAP_HEADER_BYTES
        with pytest.raises(CaptureError, match="still running"):
            start_kept_capture(configured)  # one at a time: an analyzer cannot pile up root captures
        assert capture.poll() is None
        drops = capture.drop_counter()
        assert drops is not None and drops.read() == 0
        drops.close()
        capture.terminate()
        assert capture.wait(timeout=START_TIMEOUT_S) in (0, -15)
        assert capture.stdout.read() == b""  # dumpcap ended: the stream ends
    finally:
        if capture.poll() is None:
            capture.terminate()
    again = psutil.Process(start_kept_capture(configured).pid)  # the capture ended: it may be started again
    assert again.is_running()
    stop_keeper()  # the keeper ends what it started
    _, alive = psutil.wait_procs([again], timeout=START_TIMEOUT_S)
    assert not alive, "the keeper left its capture running"
