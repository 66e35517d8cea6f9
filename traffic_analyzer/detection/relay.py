"""Resolvers that forward their clients' lookups: the relay of a DNS attack, not a second attacker.

A tunnel or DGA client asks the local resolver, which asks upstream the very same names; seen from
the wire, the resolver repeats the client's pattern. It is told apart by its names: most of what it
asked were asked of it by its clients first.
"""

from __future__ import annotations

import pandas as pd

RELAY_MIN_SHARE = 0.5  # share of a host's names asked of it by others first that makes it their relay


def relayed_clients(rows: pd.DataFrame, host: str, names: pd.Series, name: str, client: str, server: str) -> list[str]:
    """Clients whose lookups ``host`` forwarded, when at least RELAY_MIN_SHARE of its ``names`` are theirs.

    ``rows`` hold the lookups remembered (one per row: ``client`` asked ``server`` for ``name``),
    ``names`` the ones ``host`` asked that make it look like an attacker. No clients: not a relay.
    """
    asked = rows[(rows[server] == host) & (rows[client] != host)]
    if asked.empty or names.empty:
        return []
    mine = pd.unique(names)
    theirs = asked[asked[name].isin(mine)]
    if theirs[name].nunique() < RELAY_MIN_SHARE * len(mine):
        return []
    return sorted(theirs[client].astype(str).unique())
