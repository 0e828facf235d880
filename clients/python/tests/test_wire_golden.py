"""The SDK's wire codec against every golden vector in tests/testdata/wire/,
decode (whole and in small chunks) and encode, as //lib/wire:golden_test does."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from audiosocket_bridge import wire

from support import WIRE_VECTORS


@dataclass
class Vector:
    name: str
    where: str
    dialect: str = ""
    peer: str = ""
    policy: str = "reject"
    max_payload: int = wire.MAX_PAYLOAD
    bytes_per_sample: int = 2
    data: bytearray = field(default_factory=bytearray)
    messages: list[dict[str, str]] = field(default_factory=list)
    error: str = ""
    error_offset: int = 0
    encode: str = ""


def strip_comment(line: str) -> str:
    # "#" starts a comment at the start of a line or after a space or tab.
    for i, c in enumerate(line):
        if c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def parse_fields(text: str) -> dict[str, str]:
    out = {}
    for pair in text.split():
        key, _, value = pair.partition("=")
        out[key] = value
    return out


def load_vectors() -> list[Vector]:
    vectors: list[Vector] = []
    for path in sorted(WIRE_VECTORS.glob("*.txt")):
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            line = strip_comment(raw).strip()
            if not line:
                continue
            key, _, value = line.partition(":")
            value = value.strip()
            if key == "vector":
                vectors.append(Vector(value, f"{path.name}:{number}"))
                continue
            v = vectors[-1]
            if key == "hex":
                v.data += bytes.fromhex(value)
            elif key == "message":
                v.messages.append(parse_fields(value))
            elif key == "error":
                code, offset = value.split()
                v.error, v.error_offset = code, int(offset.removeprefix("offset="))
            elif key in ("max_payload", "bytes_per_sample"):
                setattr(v, key, int(value))
            elif key in ("dialect", "peer", "policy", "encode"):
                setattr(v, key, value)
            else:
                raise ValueError(f"{path.name}:{number}: unknown key {key!r}")
    return vectors


VECTORS = load_vectors()
ENCODE_VECTORS = [v for v in VECTORS if v.encode]


def test_vector_files_parse_with_unique_names():
    assert len(VECTORS) >= 60
    names = [v.name for v in VECTORS]
    assert len(names) == len(set(names))
    for v in VECTORS:
        assert v.data, v.where
        assert v.dialect in wire.DIALECTS and v.peer in ("server", "asterisk"), v.where


def decode_in_chunks(v: Vector, chunk: int):
    dec = wire.Decoder(v.dialect, unknown=v.policy, max_payload=v.max_payload, bytes_per_sample=v.bytes_per_sample)
    got, error = [], None
    for i in range(0, len(v.data), chunk):
        dec.feed(bytes(v.data[i : i + chunk]))
        try:
            while (message := dec.next()) is not None:
                got.append(wire.describe(message, v.dialect, v.bytes_per_sample))
        except wire.WireError as e:
            error = e
            break
    return got, error, dec


@pytest.mark.parametrize("chunk", [0, 1, 2, 5], ids=["whole", "1", "2", "5"])
@pytest.mark.parametrize("v", VECTORS, ids=[v.name for v in VECTORS])
def test_decode(v: Vector, chunk: int):
    got, error, dec = decode_in_chunks(v, chunk or len(v.data))
    assert got == v.messages, v.where
    if not v.error:
        assert error is None, f"{v.where}: {error}"
        assert dec.buffered == 0 and dec.consumed == len(v.data)
    elif v.error == "truncated":
        assert error is None
        assert dec.consumed == v.error_offset
        assert dec.buffered == len(v.data) - v.error_offset
        with pytest.raises(wire.WireError) as info:
            wire.decode_all(bytes(v.data), v.dialect, unknown=v.policy,
                            max_payload=v.max_payload, bytes_per_sample=v.bytes_per_sample)
        assert (info.value.code, info.value.offset) == ("truncated", v.error_offset)
    else:
        assert error is not None, v.where
        assert (error.code, error.offset) == (v.error, v.error_offset), f"{v.where}: {error}"
        assert f" at offset {v.error_offset}:" in str(error)
        assert dec.consumed == v.error_offset


def build_message(expected: dict[str, str], dialect: str, frame: bytes) -> wire.Message:
    """The typed message the table describes (samples come from the frame's payload)."""
    kind, payload = int(expected["type"], 16), frame[wire.HEADER_SIZE :]
    name = expected["kind"]
    if name == "hangup":
        return wire.Hangup()
    if name == "uuid":
        return wire.Uuid(expected["uuid"])
    if name == "dtmf":
        return wire.Dtmf(expected["state"] == "start", expected["digit"], int(expected["duration_ms"]))
    if name == "dtmf_digit":
        return wire.DtmfDigit(expected["digit"])
    if name == "control":
        return wire.Control(int(expected["code"]))
    if name == "audio":
        return wire.Audio(int(expected["rate"]), payload)
    if name == "error":
        return wire.Error(bytes.fromhex(expected["payload"]))
    assert name.startswith("unknown(")
    return wire.Unknown(kind, bytes.fromhex(expected["payload"]))


@pytest.mark.parametrize("v", ENCODE_VECTORS, ids=[v.name for v in ENCODE_VECTORS])
def test_encode(v: Vector):
    out, offset = b"", 0
    for expected in v.messages:
        length = (v.data[offset + 1] << 8) | v.data[offset + 2]
        frame = bytes(v.data[offset : offset + wire.HEADER_SIZE + length])
        message = build_message(expected, v.dialect, frame)
        if v.encode == "refused":
            with pytest.raises(wire.EncodeRefused):
                wire.encode(message, v.dialect, v.peer)
            return
        assert v.encode == "same"
        encoded = wire.encode(message, v.dialect, v.peer)
        assert encoded == frame, v.where
        # Decoding the frame alone agrees with the table.
        dec = wire.Decoder(v.dialect, unknown=v.policy, bytes_per_sample=v.bytes_per_sample)
        dec.feed(frame)
        assert wire.describe(dec.next(), v.dialect, v.bytes_per_sample) == expected
        out += encoded
        offset += len(frame)
    assert out == bytes(v.data)


def test_encode_refuses_malformed():
    with pytest.raises(ValueError):
        wire.encode(wire.Audio(8000, b"\x00\x00\x00"))
    with pytest.raises(ValueError):
        wire.encode(wire.Audio(8000, b""))
    with pytest.raises(ValueError):
        wire.encode(wire.Dtmf(True, "E"), wire.EXTENDED)
    assert wire.control_name(4) == "answer" and wire.control_name(38) == "unknown(38)"
