"""Renumber the delivery ids a client sends, so proton accepts what Azure Service Bus accepts.

azure-servicebus 7.15 (pyamqp) can give concurrent requests on one `$management` link the same
delivery id or send them out of order (many lock renewals at once). Azure tolerates that;
proton's engine treats it as a session sequencing error and closes the connection. The relay
in front of proton rewrites the delivery id of each new request on a `$management` or `$cbs`
link to the next one proton expects, and maps the broker's dispositions for those back to the
ids the client used (requests are matched to replies by message id, so the client does not
care). Transfers on entity links pass unchanged: there the client tracks each delivery by its
id, and renumbering would not repair its bookkeeping. Everything else passes byte for byte.

Only what is needed is decoded: the frame header, the performative's descriptor and the
leading fields of `begin`, `transfer` and `disposition` (AMQP 1.0, part 2.7 and 1.6).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

BEGIN, ATTACH, TRANSFER, DISPOSITION, DETACH, END, CLOSE = (
    0x11,
    0x12,
    0x14,
    0x15,
    0x16,
    0x17,
    0x18,
)
REQUEST_NODES = ("$management", "$cbs")
ERROR = 0x1D
# Where each closing performative carries its error.
_ERROR_FIELD = {DETACH: 2, END: 0, CLOSE: 0}
_UINT0, _SMALLUINT, _UINT, _NULL = 0x43, 0x52, 0x70, 0x40
_TRUE, _FALSE, _BOOLEAN = 0x41, 0x42, 0x56
_USHORT, _SMALLULONG, _ULONG0, _ULONG = 0x60, 0x53, 0x44, 0x80
_LIST0, _LIST8, _LIST32 = 0x45, 0xC0, 0xD0


class FrameError(ValueError):
    """A frame this module cannot read; the relay passes it on untouched."""


def _value_end(body: bytes, at: int) -> int:
    """Where the encoded value starting at `at` ends (only the types the fields here use)."""
    code = body[at]
    if code in (_UINT0, _NULL, _TRUE, _FALSE, _ULONG0, _LIST0):
        return at + 1
    if code in (_SMALLUINT, _BOOLEAN, _SMALLULONG, 0x50, 0x51, 0x54, 0x55):
        return at + 2
    if code == _USHORT:
        return at + 3
    if code in (_UINT, 0x71, 0x72):
        return at + 5
    if code in (_ULONG, 0x81, 0x82, 0x83):
        return at + 9
    if code in (0xA0, 0xA1, 0xA3, _LIST8, 0xC1, 0xE0):
        return at + 2 + body[at + 1]
    if code in (0xB0, 0xB1, 0xB3, _LIST32, 0xD1, 0xF0):
        return at + 5 + struct.unpack_from(">I", body, at + 1)[0]
    if code == 0x00:  # a described value: descriptor, then the value
        return _value_end(body, _value_end(body, at + 1))
    raise FrameError(f"unsupported AMQP type 0x{code:02x}")


def _uint(body: bytes, at: int) -> int | None:
    code = body[at]
    if code == _UINT0:
        return 0
    if code == _SMALLUINT:
        return body[at + 1]
    if code == _UINT:
        return int(struct.unpack_from(">I", body, at + 1)[0])
    if code == _USHORT:
        return int(struct.unpack_from(">H", body, at + 1)[0])
    return None


def _bool(field: bytes) -> bool:
    """An encoded boolean (true/false constructors, or 0x56 with a value byte)."""
    if not field:
        return False
    if field[0] == _BOOLEAN:
        return len(field) > 1 and field[1] != 0
    return field[0] == _TRUE


def _encode_uint(value: int) -> bytes:
    return bytes([_UINT]) + struct.pack(">I", value)


def _text(field: bytes) -> str | None:
    code = field[0]
    if code in (0xA1, 0xA3):
        return field[2 : 2 + field[1]].decode("utf-8", errors="replace")
    if code in (0xB1, 0xB3):
        size = struct.unpack_from(">I", field, 1)[0]
        return field[5 : 5 + size].decode("utf-8", errors="replace")
    return None


def _target_address(attach: Performative) -> str | None:
    """The address of an attach's target (field 6, a described `target` list)."""
    if len(attach.fields) <= 6 or attach.fields[6][:1] != b"\x00":
        return None
    target = parse_performative(attach.fields[6])
    if target is None or not target.fields:
        return None
    return _text(target.fields[0])


def _symbol(text: str) -> bytes:
    raw = text.encode()
    return bytes([0xA3, len(raw)]) + raw


def _string(text: str) -> bytes:
    raw = text.encode()
    return bytes([0xA1, len(raw)]) + raw


def _tracking_info() -> bytes:
    """An info map like Service Bus puts in every error: {com.microsoft:tracking-id: ...}."""
    items = _symbol("com.microsoft:tracking-id") + _string(str(uuid.uuid4()))
    return bytes([0xC1, 1 + len(items), 2]) + items


def with_error_info(error: bytes) -> bytes:
    """An encoded `error` that has condition, description and info (the client reads all 3)."""
    if error[:1] != b"\x00":
        return error
    parsed = parse_performative(error)
    if parsed is None or parsed.code != ERROR or len(parsed.fields) >= 3 or not parsed.fields:
        return error
    fields = list(parsed.fields)
    if len(fields) == 1:
        fields.append(bytes([_NULL]))
    fields.append(_tracking_info())
    return Performative(ERROR, fields, parsed.rest).encode()


@dataclass
class Performative:
    """A frame's performative split into fields (raw bytes each) and what follows it."""

    code: int
    fields: list[bytes]
    rest: bytes

    def encode(self) -> bytes:
        items = b"".join(self.fields)
        listed = bytes([_LIST32]) + struct.pack(">II", 4 + len(items), len(self.fields)) + items
        return bytes([0x00, _SMALLULONG, self.code]) + listed + self.rest


def parse_performative(body: bytes) -> Performative | None:
    """The performative of a frame body, or None for an empty (heartbeat) frame."""
    if not body:
        return None
    if body[0] != 0x00:
        raise FrameError("a performative starts with a descriptor")
    at = 1
    if body[at] == _SMALLULONG:
        code, at = body[at + 1], at + 2
    elif body[at] == _ULONG:
        code, at = int(struct.unpack_from(">Q", body, at + 1)[0]), at + 9
    else:
        raise FrameError("unsupported descriptor")
    kind = body[at]
    if kind == _LIST0:
        return Performative(code, [], body[at + 1 :])
    if kind == _LIST8:
        size, count, start = body[at + 1], body[at + 2], at + 3
        end = at + 2 + size
    elif kind == _LIST32:
        size, count = struct.unpack_from(">II", body, at + 1)
        start, end = at + 9, at + 5 + size
    else:
        raise FrameError("a performative's fields are a list")
    fields: list[bytes] = []
    cursor = start
    for _ in range(count):
        following = _value_end(body, cursor)
        fields.append(body[cursor:following])
        cursor = following
    if cursor != end:
        raise FrameError("list size does not match its fields")
    return Performative(code, fields, body[end:])


def split_frame(frame: bytes) -> tuple[bytes, bytes]:
    """Header (with any extended header) and body of one frame."""
    offset = frame[4] * 4
    return frame[:offset], frame[offset:]


def join_frame(header: bytes, body: bytes) -> bytes:
    size = len(header) + len(body)
    return struct.pack(">I", size) + header[4:] + body


def channel_of(header: bytes) -> int:
    return int(struct.unpack_from(">H", header, 6)[0])


@dataclass
class _Session:
    next_id: int | None = None
    # assigned id -> the id the client used
    originals: dict[int, int] = field(default_factory=dict)
    # handle -> assigned id of a delivery whose transfer frames are still coming
    open_deliveries: dict[int, int] = field(default_factory=dict)
    # handles of the client's links to request/response nodes ($management, $cbs)
    request_links: set[int] = field(default_factory=set)


@dataclass
class DeliveryRenumbering:
    """Per-connection state: sessions by the client's channel, broker channel -> client's."""

    sessions: dict[int, _Session] = field(default_factory=dict)
    broker_to_client: dict[int, int] = field(default_factory=dict)
    renumbered: int = 0

    # -- client -> broker --------------------------------------------------------------------

    def inbound_frames(self, frame: bytes) -> list[bytes]:
        return [self.inbound(frame)]

    def inbound(self, frame: bytes) -> bytes:
        header, body = split_frame(frame)
        if header[5] != 0x00:  # not an AMQP frame (SASL): untouched
            return frame
        performative = parse_performative(body)
        if performative is None:
            return frame
        channel = channel_of(header)
        if performative.code in (BEGIN, END):
            self.sessions[channel] = _Session()
            return frame
        session = self.sessions.setdefault(channel, _Session())
        if performative.code == ATTACH and len(performative.fields) > 2:
            handle = _uint(performative.fields[1], 0)
            address = (_target_address(performative) or "").lower()
            sending = not _bool(performative.fields[2])  # role false: the client sends
            if handle is not None and sending and any(n in address for n in REQUEST_NODES):
                session.request_links.add(handle)
            elif handle is not None:
                session.request_links.discard(handle)
            return frame
        if performative.code != TRANSFER or len(performative.fields) < 2:
            return frame
        handle = _uint(performative.fields[0], 0)
        sent_id = _uint(performative.fields[1], 0)
        more = len(performative.fields) > 5 and _bool(performative.fields[5])
        if handle is None:
            return frame
        if handle not in session.request_links:
            # An entity link: passed as sent; follow the client's own numbering.
            if sent_id is not None and handle not in session.open_deliveries:
                session.next_id = (sent_id + 1) & 0xFFFFFFFF
            if more:
                session.open_deliveries[handle] = sent_id if sent_id is not None else -1
            else:
                session.open_deliveries.pop(handle, None)
            return frame
        assigned = session.open_deliveries.get(handle)
        if assigned is None:
            if sent_id is None:
                return frame
            if session.next_id is None:
                session.next_id = sent_id
            assigned = session.next_id
            session.next_id = (assigned + 1) & 0xFFFFFFFF
            session.originals[assigned] = sent_id
            if len(session.originals) > 65536:  # settled long ago; keep the map bounded
                session.originals.pop(next(iter(session.originals)))
        if more:
            session.open_deliveries[handle] = assigned
        else:
            session.open_deliveries.pop(handle, None)
        if sent_id == assigned:
            return frame
        self.renumbered += 1
        performative.fields[1] = _encode_uint(assigned)
        return join_frame(header, performative.encode())

    # -- broker -> client --------------------------------------------------------------------

    def outbound(self, frame: bytes) -> list[bytes]:
        header, body = split_frame(frame)
        if header[5] != 0x00:
            return [frame]
        performative = parse_performative(body)
        if performative is None:
            return [frame]
        channel = channel_of(header)
        if performative.code == BEGIN and performative.fields:
            remote = _uint(performative.fields[0], 0)
            if remote is not None:
                self.broker_to_client[channel] = remote
            return [frame]
        index = _ERROR_FIELD.get(performative.code)
        if index is not None:
            if len(performative.fields) <= index or performative.fields[index][:1] != b"\x00":
                return [frame]
            completed = with_error_info(performative.fields[index])
            if completed == performative.fields[index]:
                return [frame]
            performative.fields[index] = completed
            return [join_frame(header, performative.encode())]
        if performative.code != DISPOSITION or len(performative.fields) < 2:
            return [frame]
        if not _bool(performative.fields[0]):  # role sender: about the broker's deliveries
            return [frame]
        session = self.sessions.get(self.broker_to_client.get(channel, -1))
        first = _uint(performative.fields[1], 0)
        last = _uint(performative.fields[2], 0) if len(performative.fields) > 2 else None
        if session is None or first is None:
            return [frame]
        last = first if last is None else last
        if last - first > 4096 or not any(
            session.originals.get(i, i) != i for i in range(first, last + 1)
        ):
            return [frame]
        frames = []
        for assigned in range(first, last + 1):
            original = session.originals.get(assigned, assigned)
            fields = list(performative.fields)
            fields[1] = _encode_uint(original)
            if len(fields) > 2:
                fields[2] = _encode_uint(original)
            else:
                fields.append(_encode_uint(original))
            one = Performative(performative.code, fields, performative.rest)
            frames.append(join_frame(header, one.encode()))
        return frames
