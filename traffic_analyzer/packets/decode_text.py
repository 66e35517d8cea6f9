"""Text as tshark prints it in ``-T fields`` output, so decoded strings compare equal to the tshark path."""

from __future__ import annotations

import unicodedata

REPLACEMENT = "\ufffd"
_CSV_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_C_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}
_NOT_PRINTABLE = {"Cc", "Cf", "Cn", "Cs"}  # GLib's g_unichar_isprint() says no to these categories
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))  # what format_text() shows as it is


def field_text(value: str) -> str:
    """tshark's print_escaped_csv(): control characters escaped, the C string ends at a NUL."""
    cut = value.find("\0")
    if cut >= 0:
        value = value[:cut]
    if not value.isprintable() and any(c in value for c in _CSV_ESCAPES):
        value = "".join(_CSV_ESCAPES.get(c, c) for c in value)
    return value


def ascii_text(data: bytes) -> str:
    """tvb_get_string_enc(ENC_ASCII): every byte above 0x7F becomes U+FFFD."""
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        return "".join(chr(b) if b < 0x80 else REPLACEMENT for b in data)


def format_text(data: bytes) -> str:
    """epan/strutil.c format_text(): UTF-8 shown as such, the rest as C escapes or U+FFFD."""
    if not data.translate(None, _PRINTABLE_ASCII):
        return data.decode("ascii")
    out: list[str] = []
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        i += 1
        if 0x20 <= c < 0x7F:
            out.append(chr(c))
            continue
        if c < 0x80:
            out.append(_C_ESCAPES.get(c, f"\\{c:03o}"))
            continue
        if c & 0xE0 == 0xC0:
            more, uc = 1, c & 0x1F
        elif c & 0xF0 == 0xE0:
            more, uc = 2, c & 0x0F
        elif c & 0xF8 == 0xF0:
            more, uc = 3, c & 0x07
        elif c & 0xFC == 0xF8:
            more, uc = 4, c & 0x03
        elif c & 0xFE == 0xFC:
            more, uc = 5, c & 0x01
        else:
            more, uc = -1, 0xFFFD
        for _ in range(max(more, 0)):
            if i >= n or data[i] & 0xC0 != 0x80:
                uc = 0xFFFD
                break
            uc = (uc << 6) | (data[i] & 0x3F)
            i += 1
        if uc >= 0x110000 or 0xD800 <= uc <= 0xDFFF:
            uc = 0xFFFD
        char = chr(uc)
        if unicodedata.category(char) not in _NOT_PRINTABLE:
            out.append(char)
        elif uc <= 0xFFFF:
            out.append(f"\\u{uc:04X}")
        else:
            out.append(f"\\U{uc:08X}")
    return "".join(out)
