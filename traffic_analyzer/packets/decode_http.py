"""HTTP messages as tshark 4.0's packet-http.c shows them: request line, a few headers, body type.

One message at a time from a byte buffer; when the message is not complete and the TCP stream may
be reassembled, the answer says how many bytes are needed (as tshark's req_resp_hdrs_do_reassembly
asks TCP for them) instead of a message.
"""

from __future__ import annotations

import json

from .decode_fields import AppMessage, Pdu
from .decode_text import ascii_text, field_text

HTTP_METHODS = frozenset(
    "GET PUT COPY HEAD LOCK MOVE POLL POST BCOPY BMOVE MKCOL TRACE PATCH LABEL MERGE DELETE SEARCH UNLOCK "
    "REPORT UPDATE NOTIFY BDELETE CONNECT OPTIONS CHECKIN PROPFIND CHECKOUT CCM_POST SUBSCRIBE PROPPATCH "
    "BPROPFIND BPROPPATCH UNCHECKOUT MKACTIVITY MKWORKSPACE RPC_CONNECT RPC_IN_DATA UNSUBSCRIBE RPC_OUT_DATA "
    "VERSION-CONTROL BASELINE-CONTROL SSTP_DUPLEX_POST".split()
)
HTTP_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
NO_BODY_STATUS = (204, 304)
UNTIL_FIN = -1  # an MSP that ends with the connection (an HTTP response without a length)
CHUNKED = -2  # an MSP that ends with the last chunk of a chunked HTTP body
ONE_MORE = 0  # an MSP that is dissected again with each next segment
MAX_KEPT_BYTES = 256 * 1024  # bytes of a pending PDU kept to dissect it again; the rest is only counted

# Content type (lower case, no parameters) -> the media dissector tshark hands an HTTP body to
# (the "media_type" registrations of tshark 4.0 that ordinary web traffic meets).
MEDIA_NAMES: dict[str, str] = {
    **dict.fromkeys(
        (
            "text/html",
            "text/plain",
            "text/css",
            "text/javascript",
            "text/enriched",
            "text/richtext",
            "text/parameters",
            "application/x-javascript",
            "application/x-ns-proxy-autoconfig",
            "application/vnd.drm.message",
            "application/xml-external-parsed-entity",
        ),
        "DATA-TEXT-LINES",
    ),
    **dict.fromkeys(("text/xml", "application/xml", "application/xml-dtd", "image/svg+xml", "application/smil"), "XML"),
    **dict.fromkeys(
        (
            "application/json",
            "application/json-rpc",
            "application/jsonrequest",
            "application/problem+json",
            "application/x-ndjson",
            "application/merge-patch+json",
            "application/json-patch+json",
        ),
        "JSON",
    ),
    "application/x-www-form-urlencoded": "URLENCODED-FORM",
    "application/octet-stream": "DATA",
    "image/gif": "IMAGE-GIF",
    "image/jpeg": "IMAGE-JFIF",
    "image/jpg": "IMAGE-JFIF",
    "image/jfif": "IMAGE-JFIF",
    "image/png": "PNG",
    "image/tiff": "TIFF",
    "application/ocsp-request": "OCSP",
    "application/ocsp-response": "OCSP",
    "application/dns-message": "DNS",
    "application/sdp": "SDP",
    "video/mp4": "MP4",
    "audio/mp4": "MP4",
    "video/mp2t": "MP2T",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def media_name(content_type: str, body: bytes) -> str:
    """Highest protocol of an HTTP body: its media dissector, a body heuristic, or the default media one."""
    name = MEDIA_NAMES.get(content_type)
    if name is None and content_type.endswith("+xml"):
        name = "XML"
    if name == "JSON" and not _is_json(body):
        return "DATA-TEXT-LINES"  # packet-json.c hands what it cannot parse to data-text-lines
    if name is not None:
        return name
    if body.startswith(PNG_MAGIC):
        return "PNG"
    return "MEDIA"


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True


def line_end(buffer: bytes, offset: int) -> tuple[int, int]:
    """tvb_findline_end(): (end of the line, start of the next); a line ends at CR, LF or CRLF.

    (-1, -1) when there is no line end.
    """
    cr = buffer.find(b"\r", offset)
    lf = buffer.find(b"\n", offset)
    if cr < 0 and lf < 0:
        return -1, -1
    if cr < 0 or (0 <= lf < cr):
        return lf, lf + 1
    if cr + 1 < len(buffer) and buffer[cr + 1] == 0x0A:
        return cr, cr + 2
    return cr, cr + 1


def _lines(buffer: bytes, offset: int):
    """Lines from offset: (line without its terminator, offset after it, terminated)."""
    n = len(buffer)
    while offset < n:
        end, nxt = line_end(buffer, offset)
        if end < 0:
            yield buffer[offset:], n, False
            return
        yield buffer[offset:end], nxt, True
        offset = nxt


def _request_or_reply(line: bytes) -> tuple[str, str] | None:
    """is_http_request_or_reply(): ('request', method) / ('response', '') or None."""
    data = line[2:] if line.startswith(b"M-") else line
    if data.startswith(b"HTTP/") or data.startswith(b"ICY"):
        return "response", ""
    token = data.split(b" ", 1)[0]
    method = token.decode("latin-1")
    if method in HTTP_METHODS:
        return "request", method
    return None


def _token(line: bytes, pos: int) -> tuple[bytes, int]:
    """get_token_len(): the token at pos and where the next one starts (after blanks)."""
    end = line.find(b" ", pos)
    if end < 0:
        return line[pos:], len(line)
    nxt = end
    while nxt < len(line) and line[nxt] == 0x20:
        nxt += 1
    return line[pos:end], nxt


class HttpConversation:
    """What tshark remembers of an HTTP connection: whether a request was seen, and its last method."""

    __slots__ = ("seen", "request_method")

    def __init__(self) -> None:
        self.seen = False
        self.request_method = ""


def http_message(buffer: bytes, offset: int, can_desegment: bool, fin: bool, conv: HttpConversation) -> Pdu:
    """One HTTP message at offset, or what it waits for: bytes, the last chunk, the connection's end or
    (headers not complete) one more segment."""
    seen = conv.seen
    n = len(buffer)
    start = offset
    if n - offset > 3 and buffer[offset : offset + 2] == b"\r\n":
        offset += 2
    first_byte = buffer[offset] if offset < n else 0
    if not 0x20 <= first_byte < 0x7F:
        return Pdu(AppMessage("DATA" if seen else "HTTP"), n - start)
    first_end, _ = line_end(buffer, offset)
    first_line = buffer[offset:first_end] if first_end >= 0 else buffer[offset:]
    kind = _request_or_reply(first_line)
    headers_done = None
    for line, nxt, terminated in _lines(buffer, offset):
        if not terminated:
            break
        if line == b"":
            headers_done = nxt
            break
    if kind is not None and headers_done is None and can_desegment:
        return Pdu(None, need=ONE_MORE)
    msg = AppMessage("HTTP")
    content_length: int | None = None
    content_type = ""
    chunked = False
    status = 0
    pos = offset
    for line, nxt, _ in _lines(buffer, offset):
        pos = nxt
        if line == b"":
            break
        reqresp = _request_or_reply(line)
        if reqresp is not None:
            if reqresp[0] == "request":
                _http_request_fields(line, msg)
                conv.request_method = reqresp[1]
                conv.seen = True
            else:
                status = _http_response_fields(line, msg)
            continue
        colon = line.find(b":")
        if colon < 0:
            break
        _http_header(line, colon, msg)
        name = line[:colon].lower()
        value = line[colon + 1 :].lstrip(b" \t")
        if name == b"content-length":
            content_length = _content_length(value)
        elif name == b"content-type":
            content_type = value.split(b";", 1)[0].split(None, 1)[0].lower().decode("latin-1") if value else ""
        elif name == b"transfer-encoding" and value.lower().startswith(b"chunked"):
            chunked = True
    body_start = headers_done if headers_done is not None else pos
    if kind is None or headers_done is None:
        return Pdu(msg, pos - start)
    response = kind[0] == "response"
    no_body = response and (conv.request_method == "HEAD" or status // 100 == 1 or status in NO_BODY_STATUS)
    available = n - body_start
    if no_body:
        media = "HTTP"
    elif content_type:
        media = media_name(content_type, buffer[body_start : body_start + (content_length or available)])
    else:
        media = "DATA"
    if chunked and not no_body:
        parser = Chunks()
        done = parser.feed(buffer, body_start)
        if done < 0:
            if can_desegment:
                msg.name = media
                return Pdu(msg, need=parser)
            body_end = n
        else:
            body_end = done
    elif content_length is not None and not no_body:
        if available < content_length:
            if can_desegment:
                if content_length > 0:
                    msg.name = media
                return Pdu(msg, need=body_start - start + content_length)
            body_end = n
        else:
            body_end = body_start + content_length
    elif response and not no_body and can_desegment and not fin:
        msg.name = media
        return Pdu(msg, need=UNTIL_FIN)  # read until the connection ends
    elif response and not no_body:
        body_end = n
    else:
        body_end = body_start
    if body_end > body_start:
        msg.name = media
    return Pdu(msg, body_end - start)


def http_datagram(data: bytes) -> AppMessage:
    """SSDP and other HTTP-over-UDP: one message, no reassembly."""
    return http_message(data, 0, False, True, HttpConversation()).message


def _http_request_fields(line: bytes, msg: AppMessage) -> None:
    method, nxt = _token(line, 0)
    if not method:
        return
    msg.values["http.request.method"] = field_text(ascii_text(method))
    if nxt - len(method) > 2 and line[nxt - 1 : nxt] == b" " and line[nxt - 2 : nxt - 1] == b" ":
        nxt -= 1
    uri, _ = _token(line, nxt)
    msg.values["http.request.uri"] = field_text(ascii_text(uri))


def _http_response_fields(line: bytes, msg: AppMessage) -> int:
    version, nxt = _token(line, 0)
    if not version:
        return 0
    code, _ = _token(line, nxt)
    if len(code) < 3:
        return 0
    digits = code[:3]
    value = 0
    for b in digits:
        if not 0x30 <= b <= 0x39:
            break
        value = value * 10 + b - 0x30
    msg.values["http.response.code"] = value
    return value


_HTTP_STRING_HEADERS = {
    b"host": "http.host",
    b"user-agent": "http.user_agent",
    b"content-type": "http.content_type",
}


def _http_header(line: bytes, colon: int, msg: AppMessage) -> None:
    name = line[:colon]
    if not name or any(c not in HTTP_TOKEN_CHARS for c in name):
        return
    field = _HTTP_STRING_HEADERS.get(name.lower())
    value = line[colon + 1 :].lstrip(b" \t")
    if field is not None:
        msg.values.setdefault(field, field_text(ascii_text(value)))
    elif name.lower() == b"content-length":
        length = _content_length(value)
        if length is not None:
            msg.values.setdefault("http.content_length", length)


def _content_length(value: bytes) -> int | None:
    """g_ascii_strtoll() with packet-http.c's checks."""
    text = value.lstrip(b" \t\n\v\f\r")
    sign = 1
    pos = 0
    if text[:1] in (b"+", b"-"):
        sign = -1 if text[:1] == b"-" else 1
        pos = 1
    digits = pos
    while digits < len(text) and 0x30 <= text[digits] <= 0x39:
        digits += 1
    if digits == pos:
        return None
    number = sign * int(text[pos:digits])
    if number < 0 or number >= 2**63:
        return None
    if digits < len(text) and text[digits] not in b" \t\n\v\f\r":
        return None
    return number


class Chunks:
    """Incremental parser of a chunked HTTP body, so a long body is never parsed twice."""

    __slots__ = ("line", "left", "state")

    def __init__(self) -> None:
        self.line = b""  # partial size or trailer line
        self.left = 0  # data bytes (plus CRLF) still to skip
        self.state = "size"

    def feed(self, data: bytes, offset: int = 0) -> int:
        """Consume data from offset; the offset just past the body's end, or -1 if it goes on."""
        n = len(data)
        while offset < n:
            if self.state == "data":
                step = min(self.left, n - offset)
                self.left -= step
                offset += step
                if self.left == 0:
                    self.state = "size"
                continue
            end = data.find(b"\n", offset)
            if end < 0:
                self.line += data[offset:]
                return -1
            line = self.line + data[offset:end]
            self.line = b""
            offset = end + 1
            if self.state == "trailer":
                return offset
            text = line.split(b";", 1)[0].strip()
            try:
                size = int(text, 16)
            except ValueError:
                return n  # tshark stops dechunking on a bad size line
            if size == 0:
                self.state = "trailer"
            elif size > 1 << 31:
                return n
            else:
                self.left = size + 2
                self.state = "data"
        return -1
