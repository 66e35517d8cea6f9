"""Reading indicator files (the ``intel_files`` setting): Zeek Intel framework TSV files and plain lists.

A Zeek file starts with a ``#fields`` header naming at least ``indicator`` and ``indicator_type``
(``meta.source``, ``meta.desc``... optional), one tab-separated item a line; ``Intel::ADDR``,
``Intel::SUBNET``, ``Intel::DOMAIN`` and ``Intel::URL`` items are kept, other types are counted and
ignored. A plain list holds one IP address, CIDR range, domain (or ``http://`` URL) a line; ``#``
comments, ``;`` remarks after the item (Spamhaus DROP style) and blank lines are skipped. Its source is
the file's name.

A file that cannot be read, or holds no indicator at all, is a one-line error naming it (and its
first bad line); bad lines in a good file are skipped and counted in one warning per file.

Parsing a million indicators takes seconds; the parsed set is kept in ``cache_dir`` (the analyzer's
data folder, beside its model, which is a pickle too), named by a digest of the files' paths and bytes,
so the next start or reload with the same files unpickles it in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import AnalyzerError
from .intel import (
    ADDR,
    DOMAIN,
    DOMAIN_NAME,
    SUBNET,
    URL,
    IndicatorSet,
    ParsedAddresses,
    build_names,
    build_nets,
    host_names,
    parse_addresses,
    url_keys,
)

INFER, AS_ADDR, AS_SUBNET, AS_DOMAIN, AS_URL = 0, 1, 2, 3, 4  # how a line's item is read
ZEEK_KINDS = {ADDR: AS_ADDR, SUBNET: AS_SUBNET, DOMAIN: AS_DOMAIN, URL: AS_URL}
ZEEK_UNSET = "-"  # Zeek's text for an unset field
COMMENT = r"(^|\s)[#;].*$"  # a plain list's comment or remark, to the end of the line
CACHE_PREFIX = "intel-cache-"  # + the files' digest + .pickle, in cache_dir


@dataclass
class FileReport:
    """What one indicator file gave: indicators kept, bad lines skipped, Zeek types ignored."""

    path: str
    indicators: int = 0
    bad_lines: int = 0
    first_bad: tuple[int, str] | None = None  # (line number, text)
    ignored: dict[str, int] = field(default_factory=dict)  # Zeek indicator type -> items

    def warning(self) -> str | None:
        """One line for the log when the file was not read whole, else None."""
        parts = []
        if self.bad_lines:
            line, text = self.first_bad or (0, "")
            parts.append(f"skipped {self.bad_lines} bad lines (first: line {line}, {text[:80]!r})")
        if self.ignored:
            kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.ignored.items()))
            parts.append(f"ignored {sum(self.ignored.values())} indicators of other types ({kinds})")
        if not self.indicators and not parts:
            parts.append("holds no indicators")
        return f"intel file {self.path}: {'; '.join(parts)}" if parts else None


@dataclass
class _Items:
    """The items of one file before they are classified: text, how to read it, source and line number."""

    text: pa.Array
    kind: np.ndarray
    source: list[str]  # per item
    line: np.ndarray
    bad_lines: list[int] = field(default_factory=list)  # lines already known bad (too few fields)
    bad_text: list[str] = field(default_factory=list)


def load_intel(paths: Sequence[str], cache_dir: str | Path | None = None) -> tuple[IndicatorSet, list[FileReport]]:
    """Every indicator of these files in one set, and a report per file; raises AnalyzerError for a file
    that cannot be read or holds nothing usable. With ``cache_dir``, files parsed before are not parsed again."""
    if not paths:
        return IndicatorSet(), []
    digest = hashlib.blake2b(digest_size=16)
    contents = []
    for path in paths:
        data = _read(path)
        digest.update(os.fsencode(path) + b"\0" + data + b"\0")
        contents.append(data)
    key = digest.hexdigest()
    cache = Path(cache_dir) / f"{CACHE_PREFIX}{key}.pickle" if cache_dir is not None else None
    if cache is not None and (cached := _cached(cache)) is not None:
        return cached
    items, reports = [], []
    for path, data in zip(paths, contents, strict=True):
        lines = data.decode("utf-8", errors="replace").split("\n")
        report = FileReport(str(path))
        items.append(_zeek_items(path, lines, report) if _is_zeek(lines) else _plain_items(path, lines))
        reports.append(report)
    loaded = _build(items, reports, key), reports
    if cache is not None:
        _keep(cache, loaded)
    return loaded


def _cached(cache: Path) -> tuple[IndicatorSet, list[FileReport]] | None:
    """The set parsed earlier from the very same files, or None (no cache, or one that cannot be read)."""
    try:
        with cache.open("rb") as f:
            intel, reports = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, TypeError):
        return None
    return (intel, reports) if isinstance(intel, IndicatorSet) else None


def _keep(cache: Path, loaded: tuple[IndicatorSet, list[FileReport]]) -> None:
    """Write the parsed set for the next start (atomically), dropping the caches of older files; a folder
    that cannot be written only costs the next start its parse."""
    partial = cache.with_suffix(f".{os.getpid()}.partial")
    try:
        with partial.open("wb") as f:
            pickle.dump(loaded, f, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(cache)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
        return
    for old in cache.parent.glob(f"{CACHE_PREFIX}*.pickle"):
        if old != cache:
            with contextlib.suppress(OSError):
                old.unlink()


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise AnalyzerError(f"intel file {path} cannot be read: {exc.strerror or exc}") from None


def _is_zeek(lines: list[str]) -> bool:
    """A Zeek intel file: its first line that is not blank starts with #fields or #separator."""
    for line in lines:
        if line.strip():
            return line.startswith(("#fields", "#separator"))
    return False


def _plain_items(path: str, lines: list[str]) -> _Items:
    raw = pa.array(lines, type=pa.string())
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(raw, COMMENT, ""))
    keep = pc.greater(pc.utf8_length(text), 0)
    line = np.flatnonzero(keep.to_numpy(zero_copy_only=False)) + 1
    text = pc.filter(text, keep)
    return _Items(text, np.full(len(text), INFER, dtype=np.int8), [os.path.basename(path)] * len(text), line)


def _zeek_items(path: str, lines: list[str], report: FileReport) -> _Items:
    separator, names, header_line = "\t", None, 0
    for number, line in enumerate(lines, 1):
        if line.startswith("#separator"):
            separator = line[len("#separator") :].strip().encode().decode("unicode_escape") or "\t"
        elif line.startswith("#fields"):
            names, header_line = line.rstrip("\r").split(separator)[1:], number
            break
    if names is None or "indicator" not in names or "indicator_type" not in names:
        raise AnalyzerError(
            f"intel file {path} line {header_line or 1}: a Zeek intel header must be "
            f"'#fields<TAB>indicator<TAB>indicator_type<TAB>meta.source...'"
        )
    columns = [names.index("indicator"), names.index("indicator_type")]
    columns.append(names.index("meta.source") if "meta.source" in names else -1)
    raw = pa.array([line.rstrip("\r") for line in lines[header_line:]], type=pa.string())
    is_data = pc.and_(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(raw)), 0), pc.invert(pc.starts_with(raw, "#")))
    line = np.flatnonzero(is_data.to_numpy(zero_copy_only=False)) + header_line + 1
    data = pc.filter(raw, is_data)
    parts = pc.split_pattern(data, separator)
    whole = pc.greater_equal(pc.list_value_length(parts), max(columns) + 1).to_numpy(zero_copy_only=False)
    bad_lines, bad_text = line[~whole].tolist(), pc.filter(data, pa.array(~whole)).to_pylist()
    parts, line = pc.filter(parts, pa.array(whole)), line[whole]
    indicator = pc.list_element(parts, columns[0])
    kind_text = pc.list_element(parts, columns[1]).to_numpy(zero_copy_only=False)
    name = os.path.basename(path)
    if columns[2] >= 0:
        given = pc.list_element(parts, columns[2]).to_numpy(zero_copy_only=False)
        source = np.where((given == ZEEK_UNSET) | (given == ""), name, given).tolist()
    else:
        source = [name] * len(line)
    kind = pd.Series(kind_text, dtype=object).map(ZEEK_KINDS)
    other = kind.isna().to_numpy() & (kind_text != ZEEK_UNSET) & pd.Series(kind_text).str.startswith("Intel::")
    report.ignored = {str(k): int(n) for k, n in pd.Series(kind_text[other]).value_counts().items()}
    keep = ~other  # an unknown or unset type is a bad line, counted as one
    kind = kind.fillna(-1).to_numpy(dtype=np.int8)
    return _Items(
        pc.filter(indicator, pa.array(keep)),
        kind[keep],
        [s for s, k in zip(source, keep, strict=True) if k],
        line[keep],
        bad_lines,
        bad_text,
    )


def _build(items: list[_Items], reports: list[FileReport], fingerprint: str) -> IndicatorSet:
    """Classify every file's items at once, report bad lines per file, and index the good ones."""
    text = pa.concat_arrays([i.text for i in items]) if items else pa.array([], type=pa.string())
    kind = np.concatenate([i.kind for i in items])
    file_of = np.concatenate([np.full(len(i.kind), n) for n, i in enumerate(items)]).astype(np.int64)
    line = np.concatenate([i.line for i in items])
    codes, sources = pd.factorize(pd.Series([s for i in items for s in i.source], dtype=object))
    sources = list(sources)

    addresses = parse_addresses(text)
    version = addresses.version
    is_net = (version > 0) & ((kind == INFER) | (kind == AS_SUBNET) | ((kind == AS_ADDR) & ~addresses.explicit))
    names = host_names(pc.replace_substring_regex(text, r"^\*\.", ""))
    domain_like = pc.fill_null(pc.match_substring_regex(names, DOMAIN_NAME), False).to_numpy(zero_copy_only=False)
    dotted = pc.fill_null(pc.match_substring(names, "."), False).to_numpy(zero_copy_only=False)
    is_domain = domain_like & (version == 0) & ((kind == AS_DOMAIN) | ((kind == INFER) & dotted))
    schemed = pc.fill_null(pc.match_substring(text, "://"), False).to_numpy(zero_copy_only=False)
    spaced = pc.fill_null(pc.match_substring_regex(text, r"\s"), True).to_numpy(zero_copy_only=False)
    is_url = ~spaced & ((kind == AS_URL) | ((kind == INFER) & schemed))
    bad = ~(is_net | is_domain | is_url)

    for n, report in enumerate(reports):
        mine = file_of == n
        bad_rows = np.flatnonzero(mine & bad)
        report.indicators = int((mine & ~bad).sum())
        report.bad_lines = len(bad_rows) + len(items[n].bad_lines)
        firsts = [(int(line[bad_rows[0]]), str(text[int(bad_rows[0])].as_py()))] if len(bad_rows) else []
        firsts += [(ln, t) for ln, t in zip(items[n].bad_lines[:1], items[n].bad_text[:1], strict=True)]
        report.first_bad = min(firsts) if firsts else None
        if report.indicators == 0 and report.first_bad is not None and not report.ignored:
            number, example = report.first_bad
            raise AnalyzerError(
                f"intel file {report.path} line {number}: {example[:80]!r} is not an indicator, nor is any other "
                "line (a plain list holds one IP address, CIDR range or domain a line; a Zeek intel file starts "
                "with a #fields header)"
            )

    nets = build_nets(_subset(addresses, is_net), codes[is_net], sources)
    domains = build_names(_strings(names, is_domain), codes[is_domain], sources)
    urls = build_names(_strings(url_keys(text), is_url), codes[is_url], sources)
    return IndicatorSet(tuple(sources), nets, domains, urls, fingerprint)


def _subset(parsed: ParsedAddresses, rows: np.ndarray) -> ParsedAddresses:
    return ParsedAddresses(*(getattr(parsed, f.name)[rows] for f in fields(ParsedAddresses)))


def _strings(text: pa.Array, rows: np.ndarray) -> np.ndarray:
    return pc.filter(text, pa.array(rows)).to_numpy(zero_copy_only=False).astype(object)
