"""The stand-in's delivery-id renumbering on hand-made AMQP frames (pure byte logic)."""

from __future__ import annotations

import struct

from devtools.servicebus.frames import (
    BEGIN,
    DISPOSITION,
    TRANSFER,
    DeliveryRenumbering,
    Performative,
    join_frame,
    parse_performative,
    split_frame,
)

HEADER = bytes([0, 0, 0, 0, 2, 0, 0, 1])  # size (filled in), doff 2, AMQP, channel 1


def _uint(value: int) -> bytes:
    return b"\x70" + struct.pack(">I", value)


def _frame(code: int, fields: list[bytes], rest: bytes = b"") -> bytes:
    return join_frame(HEADER, Performative(code, fields, rest).encode())


def _transfer(delivery_id: int, more: bool = False) -> bytes:
    fields = [
        _uint(0),
        _uint(delivery_id),
        b"\xa0\x01t",
        _uint(0),
        b"\x42",
        b"\x41" if more else b"\x42",
    ]
    return _frame(TRANSFER, fields, rest=b"payload")


def _fields(frame: bytes) -> Performative:
    _, body = split_frame(frame)
    parsed = parse_performative(body)
    assert parsed is not None
    return parsed


def _id(field: bytes) -> int:
    return int(struct.unpack(">I", field[1:5])[0])


def _attach(handle: int, address: str) -> bytes:
    raw = address.encode()
    target = Performative(0x29, [bytes([0xA1, len(raw)]) + raw], b"").encode()
    name = b"\xa1\x04link"
    return _frame(0x12, [name, _uint(handle), b"\x42", b"\x40", b"\x40", b"\x40", target])


def test_clashing_delivery_ids_become_a_sequence_and_dispositions_map_back() -> None:
    # Requests to $management/$cbs: Service Bus's AMQP stack takes a transfer's delivery-id as
    # given, without checking the sequence (Azure/azure-amqp, src/AmqpSession.cs,
    # SessionChannel.OnReceiveDelivery), so the 7.15 client's concurrent lock renewals with
    # clashing ids work there; proton requires the next id, hence the renumbering. Requests are
    # answered by correlation-id, so the client's clashing ids lose it nothing.
    state = DeliveryRenumbering()
    state.inbound(_frame(BEGIN, [b"\x40"]))
    state.inbound(_attach(0, "amqp://127.0.0.1:5672/orders/$management"))
    state.outbound(_frame(BEGIN, [b"\x60\x00\x01"]))  # the broker's begin names channel 1
    sent = [state.inbound(_transfer(1)) for _ in range(3)]
    assert [_id(_fields(f).fields[1]) for f in sent] == [1, 2, 3]
    assert all(_fields(f).rest == b"payload" for f in sent)
    # The broker settles its deliveries 2..3 in one range: the client hears of id 1 twice.
    back = state.outbound(_frame(DISPOSITION, [b"\x41", _uint(2), _uint(3), b"\x41"]))
    assert [(_id(_fields(f).fields[1]), _id(_fields(f).fields[2])) for f in back] == [(1, 1)] * 2


def test_entity_links_pass_unchanged_even_when_ids_clash() -> None:
    # Messages on entity links are not renumbered: the AMQP 1.0 spec has the sender assign
    # "each Message a unique delivery-id from a Session scoped sequence" (part 2, 2.6 Links),
    # and a clash there is the 7.15 client sending one pending delivery from several asyncio
    # tasks (same delivery-id and delivery-tag, seen with PN_TRACE_FRM=1). Renumbering would
    # store every copy as a new message; on Azure the same code fails instead
    # (https://github.com/Azure/azure-sdk-for-python/issues/36334), and so does the stand-in.
    state = DeliveryRenumbering()
    state.inbound(_attach(0, "amqp://127.0.0.1:5672/orders"))
    frames = [_transfer(1), _transfer(1)]
    assert [state.inbound(f) for f in frames] == frames


def test_in_order_ids_and_continuation_frames_pass_unchanged() -> None:
    state = DeliveryRenumbering()
    frames = [_transfer(5), _transfer(6, more=True), _transfer(6), _transfer(7)]
    assert [state.inbound(f) for f in frames] == frames
    disposition = _frame(DISPOSITION, [b"\x41", _uint(5), _uint(7)])
    assert state.outbound(disposition) == [disposition]


def test_a_closing_error_without_info_gets_one_so_clients_can_read_it() -> None:
    error = Performative(0x1D, [b"\xa3\x13amqp:internal-error"], b"").encode()
    state = DeliveryRenumbering()
    (closed,) = state.outbound(_frame(0x18, [error]))
    (error_fields,) = [parse_performative(_fields(closed).fields[0])]
    assert error_fields is not None and len(error_fields.fields) == 3
    assert b"com.microsoft:tracking-id" in error_fields.fields[2]


def test_a_message_split_over_frames_keeps_one_id_whatever_bool_encoding_is_used() -> None:
    state = DeliveryRenumbering()
    state.inbound(_attach(0, "$management"))
    first = _transfer(4)
    parts = _fields(first)
    parts.fields[5] = b"\x56\x01"  # more=true spelled as boolean 0x56 0x01
    split = join_frame(HEADER, parts.encode())
    assert [state.inbound(f) for f in (split, _transfer(4), _transfer(5))] == [
        split,
        _transfer(4),
        _transfer(5),
    ]
