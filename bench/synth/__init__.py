"""A seeded traffic synthesizer that writes realistic, labelled pcap files (it never sends a packet).

The pipeline, one module per stage:

    packets, dns, web, ssh, lan      bytes on the wire: frames with real checksums, protocol messages
    network, office, names           the simulated site: hosts, address plan, resolver, web catalogue
    tcp, sessions, resolver          conversations: TCP with consistent seq/ack, HTTP(S), DNS via the resolver
    behaviour                        when sessions start: a Poisson process, a period with jitter, once
    benign, background, periodic,    what hosts do on an ordinary day
    bulk
    attacks, probes, intrusions      the injected attacks, each labelling itself
    mixed, corpus                    the two scenarios: a labelled lab capture and a benign office day
    scenario, timeline, pcap_writer  running a scenario window by window and writing frames in time order
    labels                           the labels.csv rows written beside each capture

Everything random comes from numpy Generators seeded by (seed, purpose), so a seed gives a
byte-identical capture. Commands: ``bench/make_mixed_capture.py`` and ``bench/make_benign_corpus.py``.
"""
