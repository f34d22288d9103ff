"""AMQP 1.0 messages as a list of sections, re-encoded only where the broker changes them.

The broker rewrites the header (delivery count), the message annotations (sequence number, times)
and, on dead-lettering, the application properties. Everything else (properties, every body
section, the footer) is passed through byte for byte, so nothing a sender wrote is lost or
re-typed. Section boundaries are found with a small skipper over the encoding; proton's codec
decodes and encodes the sections that are actually read or rewritten.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

from proton import Array, Data, Described, ubyte, uint, ulong

HEADER = 0x70
DELIVERY_ANNOTATIONS = 0x71
MESSAGE_ANNOTATIONS = 0x72
PROPERTIES = 0x73
APPLICATION_PROPERTIES = 0x74
DATA = 0x75
AMQP_SEQUENCE = 0x76
AMQP_VALUE = 0x77
FOOTER = 0x78

_SYMBOLIC_CODES = {
    "amqp:header:list": HEADER,
    "amqp:delivery-annotations:map": DELIVERY_ANNOTATIONS,
    "amqp:message-annotations:map": MESSAGE_ANNOTATIONS,
    "amqp:properties:list": PROPERTIES,
    "amqp:application-properties:map": APPLICATION_PROPERTIES,
    "amqp:data:binary": DATA,
    "amqp:amqp-sequence:list": AMQP_SEQUENCE,
    "amqp:amqp-value:*": AMQP_VALUE,
    "amqp:footer:map": FOOTER,
}
_BODY_CODES = (DATA, AMQP_SEQUENCE, AMQP_VALUE)
_FIXED_WIDTHS = {0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16}


class MalformedMessage(ValueError):
    """The bytes are not a sequence of AMQP message sections."""


@dataclass
class MessageParts:
    """One message split into the sections the broker reads and the bytes it passes through."""

    header: list[Any] | None = None
    annotations: dict[Any, Any] = field(default_factory=dict)
    properties: list[Any] | None = None
    properties_raw: bytes = b""
    application_properties: dict[Any, Any] | None = None
    application_properties_raw: bytes = b""
    body_raw: bytes = b""  # body sections and footer, without delivery annotations
    data_payloads: list[bytes] = field(default_factory=list)
    has_non_data_body: bool = False

    def property_field(self, index: int) -> Any:
        if self.properties is None or index >= len(self.properties):
            return None
        return self.properties[index]

    @property
    def message_id(self) -> Any:
        return self.property_field(0)

    @property
    def session_id(self) -> Any:
        return self.property_field(10)

    @property
    def ttl_ms(self) -> int | None:
        if self.header is None or len(self.header) < 3 or self.header[2] is None:
            return None
        return int(self.header[2])


def _skip_value(buf: bytes, pos: int) -> int:
    """Return the offset just after the encoded value that starts at ``pos``."""
    if pos >= len(buf):
        raise MalformedMessage("truncated value")
    code = buf[pos]
    pos += 1
    if code == 0x00:
        return _skip_value(buf, _skip_value(buf, pos))
    high = code >> 4
    if high in _FIXED_WIDTHS:
        end = pos + _FIXED_WIDTHS[high]
    elif high in (0xA, 0xC, 0xE):
        if pos >= len(buf):
            raise MalformedMessage("truncated size")
        end = pos + 1 + buf[pos]
    elif high in (0xB, 0xD, 0xF):
        if pos + 4 > len(buf):
            raise MalformedMessage("truncated size")
        end = pos + 4 + int.from_bytes(buf[pos : pos + 4], "big")
    else:
        raise MalformedMessage(f"unknown format code 0x{code:02x}")
    if end > len(buf):
        raise MalformedMessage("value runs past the end of the message")
    return end


def _section_code(buf: bytes, pos: int) -> tuple[int, int]:
    """Read a section's descriptor; return (section code, offset of the described value)."""
    if buf[pos] != 0x00:
        raise MalformedMessage("a message section must be a described value")
    code = buf[pos + 1] if pos + 1 < len(buf) else -1
    if code == 0x53 and pos + 2 < len(buf):
        return buf[pos + 2], pos + 3
    if code == 0x80 and pos + 9 < len(buf):
        return int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
    if code == 0x44:
        return 0, pos + 2
    if code in (0xA3, 0xB3):
        value_start = _skip_value(buf, pos + 1)
        size_len = 1 if code == 0xA3 else 4
        name = bytes(buf[pos + 2 + size_len : value_start]).decode("ascii", "replace")
        if name not in _SYMBOLIC_CODES:
            raise MalformedMessage(f"unknown section {name}")
        return _SYMBOLIC_CODES[name], value_start
    raise MalformedMessage("unsupported section descriptor")


def _binary_payload(buf: bytes, value_start: int, end: int) -> bytes:
    code = buf[value_start]
    if code == 0xA0:
        return bytes(buf[value_start + 2 : end])
    if code == 0xB0:
        return bytes(buf[value_start + 5 : end])
    if code == 0x40:  # null data section
        return b""
    raise MalformedMessage("a data section must hold binary")


def plain(value: Any) -> Any:
    """Detach a decoded value from proton's buffers (binary comes back as a memoryview)."""
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Described):
        return Described(plain(value.descriptor), plain(value.value))
    if isinstance(value, Array):
        return Array(value.descriptor, value.type, *[plain(v) for v in value.elements])
    return value


def decode_value(encoded: bytes) -> Any:
    """Decode one AMQP value (described values come back as ``proton.Described``)."""
    data = Data()
    data.decode(encoded)
    data.rewind()
    data.next()
    return plain(data.get_object())


def encode_value(value: Any) -> bytes:
    data = Data()
    data.put_object(value)
    return bytes(data.encode())


def _section_value(buf: bytes, start: int, end: int) -> Any:
    decoded = decode_value(bytes(buf[start:end]))
    return decoded.value if isinstance(decoded, Described) else decoded


def split_message(raw: bytes) -> MessageParts:
    """Split an encoded message into its sections; raise MalformedMessage if it is not one."""
    buf = bytes(raw)
    parts = MessageParts()
    body_chunks: list[bytes] = []
    pos = 0
    while pos < len(buf):
        code, value_start = _section_code(buf, pos)
        end = _skip_value(buf, value_start)
        # The spec puts delivery annotations second, but the Python client (pyamqp) writes them
        # last, after the body and footer; both orders are accepted.
        if body_chunks and code not in _BODY_CODES and code not in (FOOTER, DELIVERY_ANNOTATIONS):
            raise MalformedMessage(
                f"section 0x{code:02x} after the body; only body sections, a footer and "
                "delivery annotations may follow it"
            )
        if code == HEADER:
            header = _section_value(buf, pos, end)
            parts.header = list(header) if isinstance(header, list) else None
        elif code == MESSAGE_ANNOTATIONS:
            annotations = _section_value(buf, pos, end)
            parts.annotations = dict(annotations) if isinstance(annotations, dict) else {}
        elif code == PROPERTIES:
            props = _section_value(buf, pos, end)
            parts.properties = list(props) if isinstance(props, list) else None
            parts.properties_raw = buf[pos:end]
        elif code == APPLICATION_PROPERTIES:
            app = _section_value(buf, pos, end)
            parts.application_properties = dict(app) if isinstance(app, dict) else {}
            parts.application_properties_raw = buf[pos:end]
        elif code in _BODY_CODES or code == FOOTER:
            body_chunks.append(buf[pos:end])
            if code == DATA:
                parts.data_payloads.append(_binary_payload(buf, value_start, end))
            elif code != FOOTER:
                parts.has_non_data_body = True
        elif code != DELIVERY_ANNOTATIONS:
            # Delivery annotations belong to one hop and are dropped, as a broker does.
            raise MalformedMessage(f"unknown section code 0x{code:02x}")
        pos = end
    parts.body_raw = b"".join(body_chunks)
    return parts


def _is_encoded_message(payload: bytes) -> bool:
    if not payload or payload[0] != 0x00:
        return False
    has_body = False
    pos = 0
    try:
        while pos < len(payload):
            code, value_start = _section_code(payload, pos)
            if code < HEADER or code > FOOTER:
                return False
            has_body = has_body or code in _BODY_CODES
            pos = _skip_value(payload, value_start)
    except (MalformedMessage, IndexError):
        return False
    return has_body and pos == len(payload)


def unpack_batch(parts: MessageParts) -> list[bytes] | None:
    """The inner messages if ``parts`` is a batch envelope, else None.

    A batch travels as one transfer with message format 0x80013700 whose data sections each hold
    one encoded message. proton's Python binding does not expose the transfer's message format,
    so a batch is recognised by its content: data sections only, each a complete encoded message.
    """
    if parts.has_non_data_body or not parts.data_payloads:
        return None
    if all(_is_encoded_message(payload) for payload in parts.data_payloads):
        return list(parts.data_payloads)
    return None


def _header_fields(header: list[Any]) -> list[Any]:
    """Coerce the header to its AMQP types (durable, priority ubyte, ttl uint, ..., count uint)."""
    fields = (list(header) + [None] * 5)[:5]
    converters = (bool, ubyte, uint, bool, uint)
    return [
        None if value is None else kind(value)
        for kind, value in zip(converters, fields, strict=True)
    ]


def _described(code: int, value: Any) -> Described:
    return Described(ulong(code), value)


def build_message(
    parts: MessageParts,
    *,
    header: list[Any],
    annotations: dict[Any, Any],
    delivery_annotations: dict[Any, Any] | None = None,
    extra_application_properties: dict[str, Any] | None = None,
) -> bytes:
    """Encode a message for delivery: new header and annotations, the rest as it arrived."""
    chunks = [encode_value(_described(HEADER, _header_fields(header)))]
    if delivery_annotations:
        chunks.append(encode_value(_described(DELIVERY_ANNOTATIONS, delivery_annotations)))
    if annotations:
        chunks.append(encode_value(_described(MESSAGE_ANNOTATIONS, annotations)))
    chunks.append(parts.properties_raw)
    if extra_application_properties:
        merged = dict(parts.application_properties or {})
        merged.update(extra_application_properties)
        chunks.append(encode_value(_described(APPLICATION_PROPERTIES, merged)))
    else:
        chunks.append(parts.application_properties_raw)
    chunks.append(parts.body_raw)
    return b"".join(chunks)


def with_application_properties(parts: MessageParts, extra: dict[str, Any]) -> MessageParts:
    """The same message with ``extra`` set among its application properties."""
    if not extra:
        return parts
    merged = dict(parts.application_properties or {})
    merged.update(extra)
    return dataclasses.replace(
        parts,
        application_properties=merged,
        application_properties_raw=encode_value(_described(APPLICATION_PROPERTIES, merged)),
    )


def encode_parts(parts: MessageParts) -> bytes:
    """The message as stored: its sections as received (or as a rule action left them).

    ``split_message`` reads it back into equal parts; delivery annotations are not kept (they
    belong to one hop).
    """
    chunks = []
    if parts.header is not None:
        chunks.append(encode_value(_described(HEADER, list(parts.header))))
    if parts.annotations:
        chunks.append(encode_value(_described(MESSAGE_ANNOTATIONS, dict(parts.annotations))))
    chunks += [parts.properties_raw, parts.application_properties_raw, parts.body_raw]
    return b"".join(chunks)


def message_id_key(value: Any) -> str | None:
    """A hashable, type-aware key for duplicate detection (``"1"`` and ``1`` are different ids)."""
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return f"uuid:{value}"
    if isinstance(value, bytes):
        return f"binary:{value.hex()}"
    if isinstance(value, int):
        return f"ulong:{int(value)}"
    return f"string:{value}"
