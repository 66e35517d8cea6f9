"""Running a scenario: behaviours asked window by window for their sessions, frames flushed in time order,
the pcap and its labels file written side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .behaviour import Behaviour
from .lab import Lab, Profile, named_rng
from .labels import Label, write_labels
from .network import Network
from .pcap_writer import PcapWriter
from .timeline import BUCKET_US, Timeline

WINDOW_US = 5 * BUCKET_US  # behaviours are asked for sessions this much time at a time


@dataclass(frozen=True)
class Summary:
    """What a run wrote."""

    path: Path
    labels_path: Path
    packets: int
    wire_bytes: int
    first_us: int | None
    last_us: int | None
    labels: list[Label]


Compose = Callable[[Lab], tuple[list[Behaviour], Callable[[], list[Label]]]]  # lab -> behaviours, label source


@dataclass(frozen=True)
class Plan:
    """When and how a scenario runs: the capture's span, the warm-up before it, the packet profile, the site."""

    seed: int
    start_us: int
    end_us: int
    warmup_us: int  # sessions start this long before the capture, so some are under way when it starts
    profile: Profile
    site: int  # the LAN is 10.<site>.0.0/16
    window_us: int = WINDOW_US


def run(plan: Plan, out: Path, compose: Compose) -> Summary:
    """Write ``out`` and ``out.labels.csv`` from the behaviours ``compose`` returns.

    Frames before the capture's start (sessions of the warm-up) are dropped, so flows already under way
    show up mid-flow, as in a real capture.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    labels_path = out.with_name(out.name + ".labels.csv")
    with PcapWriter(out) as writer:
        timeline = Timeline(writer, plan.start_us, plan.end_us)
        network = Network(plan.site, named_rng(plan.seed, "network"))
        lab = Lab(plan.seed, network, timeline, plan.profile, (plan.start_us, plan.end_us))
        behaviours, labels_of = compose(lab)
        t = plan.start_us - plan.warmup_us
        while t < plan.end_us:
            window_end = min(plan.end_us, t + plan.window_us)
            for behaviour in behaviours:
                behaviour.emit(t, window_end)
            timeline.flush(window_end)
            t = window_end
        timeline.close()
    labels = labels_of()
    write_labels(labels_path, out.name, labels)
    return Summary(out, labels_path, writer.packets, writer.bytes_on_wire, timeline.first_us, timeline.last_us, labels)
