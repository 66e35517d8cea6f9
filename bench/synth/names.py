"""The Internet the site talks to: web sites with their asset and CDN names, and what DNS answers for each.

Names look like the ones a real office resolves (popular sites, font and script CDNs, analytics,
cloudfront/akamai edge names with random-looking labels); every one resolves to an address in the
198.18.0.0/15 benchmarking range, derived from the name so that it is stable across runs.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

from . import dns
from .network import external_address, stable_hash

IPV6_DOC_PREFIX = bytes.fromhex("20010db8")  # 2001:db8::/32, the IPv6 documentation prefix
COMMON_ASSETS = (  # script, font and analytics hosts most pages pull in
    "fonts.googleapis.com",
    "fonts.gstatic.com",
    "ajax.googleapis.com",
    "www.googletagmanager.com",
    "www.google-analytics.com",
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "connect.facebook.net",
    "static.cloudflareinsights.com",
    "use.typekit.net",
)
SITES = (  # (site, https, own asset hosts)
    ("www.wikipedia.org", True, ("upload.wikimedia.org", "meta.wikimedia.org")),
    ("github.com", True, ("github.githubassets.com", "avatars.githubusercontent.com", "api.github.com")),
    ("stackoverflow.com", True, ("cdn.sstatic.net", "i.sstatic.net")),
    ("docs.python.org", True, ()),
    ("news.ycombinator.com", True, ()),
    ("www.bbc.co.uk", True, ("ichef.bbci.co.uk", "static.files.bbci.co.uk", "nav.files.bbci.co.uk")),
    ("www.nytimes.com", True, ("static01.nyt.com", "a.et.nytimes.com")),
    ("www.amazon.com", True, ("m.media-amazon.com", "images-na.ssl-images-amazon.com", "fls-na.amazon.com")),
    ("www.linkedin.com", True, ("static.licdn.com", "media.licdn.com")),
    ("www.reddit.com", True, ("www.redditstatic.com", "i.redd.it", "styles.redditmedia.com")),
    ("outlook.office365.com", True, ("res.cdn.office.net", "outlook.office.com")),
    ("login.microsoftonline.com", True, ("aadcdn.msftauth.net",)),
    ("teams.microsoft.com", True, ("statics.teams.cdn.office.net",)),
    ("mail.google.com", True, ("ssl.gstatic.com", "www.gstatic.com")),
    ("www.youtube.com", True, ("i.ytimg.com", "yt3.ggpht.com", "rr3---sn-uxax4vopj5qx-cxge.googlevideo.com")),
    ("app.slack.com", True, ("a.slack-edge.com", "edgeapi.slack.com")),
    ("www.atlassian.com", True, ("wac-cdn.atlassian.com",)),
    ("jira.example-corp.com", True, ("jira-frontend-static.prod.public.atl-paas.net",)),
    ("www.theguardian.com", True, ("assets.guim.co.uk", "i.guim.co.uk")),
    ("weather.com", True, ("s.w-x.co",)),
    ("www.ebay.com", True, ("ir.ebaystatic.com", "i.ebayimg.com")),
    ("www.cnn.com", True, ("media.cnn.com", "registry.api.cnn.io")),
    ("neverssl.com", False, ()),
    ("www.speedtest.net", True, ("b.cdnst.net",)),
    ("pypi.org", True, ("files.pythonhosted.org",)),
    ("www.npmjs.com", True, ("static-production.npmjs.com",)),
    ("duckduckgo.com", True, ("improving.duckduckgo.com", "external-content.duckduckgo.com")),
    ("www.google.com", True, ("www.gstatic.com", "apis.google.com", "lh3.googleusercontent.com")),
    ("old-intranet-wiki.example-corp.com", False, ()),
    ("www.zdnet.com", True, ("www.zdnet.com", "cdn.cookielaw.org")),
)
EDGE_SUFFIXES = ("cloudfront.net", "akamaiedge.net", "fastly.net", "azureedge.net", "edgekey.net")


@dataclass(frozen=True)
class Site:
    """A web site: its name, scheme and the hosts a page load fetches from."""

    name: str
    https: bool
    assets: tuple[str, ...]


def _edge_name(rng: np.random.Generator, suffix: str) -> str:
    """A CDN edge name such as d1x2y3z4a5b6c7.cloudfront.net or e1234.a.akamaiedge.net."""
    alnum = np.array(list(string.ascii_lowercase + string.digits))
    if suffix == "cloudfront.net":
        return "d" + "".join(rng.choice(alnum, 13)) + "." + suffix
    if suffix == "akamaiedge.net":
        return f"e{int(rng.integers(1000, 99999))}.{'abcdg'[int(rng.integers(5))]}.{suffix}"
    if suffix == "fastly.net":
        return f"{''.join(rng.choice(alnum[:26], 6))}.map.{suffix}"
    return f"{''.join(rng.choice(alnum, 10))}.{suffix}"


class Catalogue:
    """Sites with popularity weights, CDN names and the DNS zone that answers for all of them."""

    def __init__(self, rng: np.random.Generator, extra_sites: int) -> None:
        sites = [Site(n, h, a) for n, h, a in SITES]
        edges = [_edge_name(rng, EDGE_SUFFIXES[i % len(EDGE_SUFFIXES)]) for i in range(4 * extra_sites + 40)]
        self.cname = {a: edges[i] for i, a in enumerate(sorted({a for s in sites for a in s.assets})) if i % 3 == 0}
        for i in range(extra_sites):
            word = "".join(rng.choice(list(string.ascii_lowercase), int(rng.integers(5, 11))))
            tld = ("com", "net", "org", "io", "co.uk", "de")[int(rng.integers(6))]
            own = tuple(edges[40 + 4 * i : 40 + 4 * i + int(rng.integers(1, 5))])
            sites.append(Site(f"www.{word}.{tld}", bool(rng.random() < 0.9), (f"static.{word}.{tld}", *own)))
        self.sites = sites
        weights = 1.0 / np.arange(1, len(sites) + 1) ** 0.9  # Zipf-like popularity
        self.weights = weights / weights.sum()
        self.no_aaaa = {name for name in self._all_names() if stable_hash(name + "v6") % 2}

    def _all_names(self) -> set[str]:
        return {s.name for s in self.sites} | {a for s in self.sites for a in s.assets} | set(COMMON_ASSETS)

    def pick(self, rng: np.random.Generator) -> Site:
        return self.sites[int(rng.choice(len(self.sites), p=self.weights))]

    def zone(self, name: str, qtype: int) -> tuple[list[dns.Record], int]:
        """What the Internet answers for (name, qtype): CNAME chains to CDN edges, A, AAAA or an empty answer."""
        ttl = (60, 300, 300, 600, 3600)[stable_hash(name) % 5]
        chain: list[dns.Record] = []
        target = name
        if name in self.cname:
            target = self.cname[name]
            chain.append((name, dns.TYPE_CNAME, ttl, target))
        if qtype == dns.TYPE_A:
            return [*chain, (target, dns.TYPE_A, min(ttl, 60) if chain else ttl, external_address(target))], 0
        if qtype == dns.TYPE_AAAA and name not in self.no_aaaa:
            return [*chain, (target, dns.TYPE_AAAA, ttl, ipv6_of(target))], 0
        if qtype == dns.TYPE_PTR and name.endswith(".in-addr.arpa"):
            if stable_hash(name) % 5 < 2:  # many addresses have no reverse name
                return [], dns.RCODE_NXDOMAIN
            octets = name.split(".")[3::-1]
            return [(name, dns.TYPE_PTR, 3600, f"host-{'-'.join(octets)}.static.example-isp.net")], 0
        return chain, 0


def ipv6_of(name: str) -> bytes:
    return IPV6_DOC_PREFIX + stable_hash(name + "/6").to_bytes(4, "big") + bytes(7) + b"\x01"
