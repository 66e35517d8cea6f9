"""DNS names as detectors read them: where the registered domain starts, and how random a label looks.

Shared by the DNS tunnel and DGA detectors: both ask whether a program, not a person, made a name.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

MULTICAST_DNS_PORTS = (5353, 5355)  # mDNS and LLMNR: link-local name discovery, not queries to a server

# Second-level labels under which country-code registries sell names (co.uk, com.br, ac.jp, ...).
CC_SECOND_LEVELS = frozenset(
    "co com net org gov edu ac or ne go gob mil nic ltd plc sch gen biz info nom web firm".split()
)
VALID_TLD = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")  # letters only, or an IDN's punycode
NOT_HOSTNAME_CHAR = re.compile(r"[^A-Za-z0-9_-]")  # raw bytes or base128 in a label: no real hostname has them
ALNUM_RUN = re.compile(r"[a-z0-9]+")

# Letter pairs common in English words and in brand and host names. In random letters about 45% of the pairs
# are in this set, in word-like names about 90%, so the share of *other* pairs measures how generated a
# label looks; a pair that mixes a letter and a digit always counts as rare.
COMMON_BIGRAMS = frozenset(
    """ab ac ad af ag ai ak al am an ap ar as at au av aw ay ba be bi bl bo br bu by bs ca ce ch ci ck cl co
    cr ct cu cy cc da de di do dr ds du dy dd dg ea eb ec ed ee ef eg ei el em en eo ep eq er es et eu ev ew
    ex ey fa fe ff fi fl fo fr fu ft fy ga ge gg gh gi gl gn go gr gs gu gy ha he hi ho hu hy ht ia ib ic id
    ie if ig ik il im in io ip ir is it iv iz ix ja je jo ju ka ke ki kn ko ks ku ky la ld le lf li lk ll lm
    lo lp ls lt lu lv ly ma mb me mi mm mo mp ms mu my na nc nd ne nf ng ni nk nn no ns nt nu nv ny oa ob oc
    od oe of og oi ok ol om on oo op or os ot ou ov ow ox oy pa pe ph pi pl po pp pr ps pt pu py qu ra rb rc
    rd re rf rg ri rk rl rm rn ro rp rr rs rt ru rv ry sa sc se sh si sk sl sm sn so sp ss st su sw sy ta te
    th ti to tr ts tt tu tw ty tc ua ub uc ud ue uf ug ui ul um un up ur us ut va ve vi vo vy wa we wh wi wn
    wo wr ws ww xa xe xi xp xt xc ya ye yo yp ys yl ym yn za ze zi zo zz""".split()
)
VOWELS = frozenset("aeiouy")
LONG_CONSONANT_RUN = 5  # five consonants in a row is rare in words ("ftstr" in microsoftstream is about the limit)
CONSONANT_RUN_BONUS = 0.1  # added to the rare-pair share of a label with such a run


def split_name(name: str) -> tuple[str, str]:
    """(registered domain, subdomain part) of a query name.

    The registered domain is the last two labels, or three under a country-code second level
    (``bbc.co.uk``). A name whose last label is no valid top-level domain (dnscat2's direct mode
    sends ``dnscat.<hex>``) has no registered domain: ``("", name)``.
    """
    labels = name.rstrip(".").split(".")
    tld = labels[-1].lower()
    if len(labels) < 2 or not VALID_TLD.fullmatch(tld):
        return "", ".".join(labels)
    n = 3 if len(labels) >= 3 and len(tld) == 2 and labels[-2].lower() in CC_SECOND_LEVELS else 2
    return ".".join(labels[-n:]).lower(), ".".join(labels[:-n])


def shannon_entropy(text: str) -> float:
    """Bits per character of the text's own character distribution."""
    if not text:
        return 0.0
    p = np.fromiter(Counter(text).values(), dtype=float) / len(text)
    return float(-(p * np.log2(p)).sum())


def max_consonant_run(text: str) -> int:
    """Longest run of consecutive consonant letters (y counts as a vowel)."""
    best = run = 0
    for ch in text.lower():
        run = run + 1 if ("a" <= ch <= "z" and ch not in VOWELS) else 0
        best = max(best, run)
    return best


def randomness(text: str) -> float:
    """How generated a label looks, 0-1: the share of adjacent character pairs that are rare in words.

    Pairs of two digits say nothing either way and are skipped; a long consonant run adds
    CONSONANT_RUN_BONUS. Random letters score about 0.55, hex and letter-digit mixes more, words under 0.2.
    """
    parts = ALNUM_RUN.findall(text.lower())
    pairs = [part[i : i + 2] for part in parts for i in range(len(part) - 1)]
    informative = [pair for pair in pairs if not pair.isdigit()]
    if not informative:
        return 0.0
    share = sum(pair not in COMMON_BIGRAMS for pair in informative) / len(informative)
    if max_consonant_run(text) >= LONG_CONSONANT_RUN:
        share += CONSONANT_RUN_BONUS
    return min(1.0, share)
