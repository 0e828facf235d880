"""The AudioSocket wire protocol: frames, kinds, dialect rules (docs/PROTOCOL.md).

A small codec for tools and tests that speak AudioSocket directly (for
example a scripted Asterisk in front of the bridge). Backends talking to the
bridge over gRPC never need it.

    dec = Decoder("asterisk")
    dec.feed(data)
    while (msg := dec.next()) is not None:
        ...
    sock.sendall(encode(Audio(8000, pcm), "asterisk", peer="asterisk"))

Every message is a 1-byte kind, a 2-byte big-endian length and the payload;
numbers inside payloads are little-endian.
"""

from __future__ import annotations

import struct
import uuid as _uuid
from dataclasses import dataclass
from typing import Optional, Union

ASTERISK = "asterisk"
EXTENDED = "extended"
DIALECTS = (ASTERISK, EXTENDED)

# Who receives the bytes being encoded.
PEER_ASTERISK = "asterisk"  # we are the server (the bridge's side)
PEER_SERVER = "server"  # we play Asterisk's part

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x02  # extended only
KIND_DIGIT_OR_CONTROL = 0x03  # asterisk: DTMF digit; extended: control
KIND_ERROR = 0xFF

HEADER_SIZE = 3
MAX_PAYLOAD = 65535

AUDIO_RATES = {
    0x10: 8000,
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
    0x17: 96000,
    0x18: 192000,
}
AUDIO_KINDS = {rate: kind for kind, rate in AUDIO_RATES.items()}

DTMF_DIGITS = "0123456789*#ABCD"

# AST_CONTROL_* names by value (index); 0 is not a control value.
CONTROL_NAMES = (
    "", "hangup", "ring", "ringing", "answer", "busy", "take_off_hook", "off_hook",
    "congestion", "flash", "wink", "option", "radio_key", "radio_unkey", "progress",
    "proceeding", "hold", "unhold", "video_update", "t38", "source_update", "transfer",
    "connected_line", "redirecting", "t38_parameters", "call_completion", "source_change",
    "read_action", "advice_of_charge", "end_of_queue", "incomplete", "malicious_call_id",
    "update_rtp_peer", "private_cause_code", "masquerade_notify",
    "stream_topology_request_change", "stream_topology_changed",
    "stream_topology_source_changed",
)  # fmt: skip

ERROR_FLAG_NAMES = {0x01: "caller_hangup", 0x02: "frame_forwarding", 0x04: "memory"}


def control_name(code: int) -> str:
    """snake_case name of an AST_CONTROL_* value, or "unknown(N)"."""
    if 0 < code < len(CONTROL_NAMES):
        return CONTROL_NAMES[code]
    return f"unknown({code})"


def error_flag_names(flags: int) -> list[str]:
    """Names of the bits of an error's flags byte (others as 0xNN)."""
    out = []
    for bit in range(8):
        value = 1 << bit
        if flags & value:
            out.append(ERROR_FLAG_NAMES.get(value, f"0x{value:02x}"))
    return out


def is_dtmf_digit(digit: str) -> bool:
    return len(digit) == 1 and digit in DTMF_DIGITS


def is_known_kind(kind: int, dialect: str) -> bool:
    if kind in (KIND_HANGUP, KIND_UUID, KIND_DIGIT_OR_CONTROL, KIND_ERROR) or kind in AUDIO_RATES:
        return True
    return kind == KIND_DTMF and dialect == EXTENDED


def kind_name(kind: int, dialect: str) -> str:
    if not is_known_kind(kind, dialect):
        return f"unknown(0x{kind:02x})"
    if kind in AUDIO_RATES:
        return "audio"
    if kind == KIND_DIGIT_OR_CONTROL:
        return "control" if dialect == EXTENDED else "dtmf_digit"
    return {KIND_HANGUP: "hangup", KIND_UUID: "uuid", KIND_DTMF: "dtmf", KIND_ERROR: "error"}[kind]


# ------------------------------------------------------------------ messages


@dataclass(frozen=True)
class Hangup:
    kind = KIND_HANGUP


@dataclass(frozen=True)
class Uuid:
    """The call's UUID, canonical 8-4-4-4-12 lower-case hex."""

    uuid: str
    kind = KIND_UUID


@dataclass(frozen=True)
class Dtmf:
    """Extended dialect 0x02: a DTMF start (duration 0) or stop."""

    start: bool
    digit: str
    duration_ms: int = 0
    kind = KIND_DTMF


@dataclass(frozen=True)
class DtmfDigit:
    """Asterisk dialect 0x03: one digit, sent when it ends."""

    digit: str
    kind = KIND_DIGIT_OR_CONTROL


@dataclass(frozen=True)
class Control:
    """Extended dialect 0x03: an AST_CONTROL_* value."""

    code: int
    kind = KIND_DIGIT_OR_CONTROL

    @property
    def name(self) -> str:
        return control_name(self.code)


@dataclass(frozen=True)
class Audio:
    """Audio at one of AUDIO_RATES; payload is 16-bit LE PCM (or G.711 bytes)."""

    rate: int
    payload: bytes

    @property
    def kind(self) -> int:
        return AUDIO_KINDS[self.rate]


@dataclass(frozen=True)
class Error:
    """0xff: the first payload byte is a set of flags."""

    payload: bytes = b""
    kind = KIND_ERROR

    @property
    def flags(self) -> int:
        return self.payload[0] if self.payload else 0


@dataclass(frozen=True)
class Unknown:
    """A kind the dialect does not define (kept under the "keep" policy)."""

    kind: int
    payload: bytes = b""


Message = Union[Hangup, Uuid, Dtmf, DtmfDigit, Control, Audio, Error, Unknown]


def payload_of(message: Message) -> bytes:
    if isinstance(message, Hangup):
        return b""
    if isinstance(message, Uuid):
        return _uuid.UUID(message.uuid).bytes
    if isinstance(message, Dtmf):
        return struct.pack("<Bc", 1 if message.start else 0, message.digit.encode("latin-1")) + struct.pack(
            "<I", message.duration_ms
        )
    if isinstance(message, DtmfDigit):
        return message.digit.encode("latin-1")
    if isinstance(message, Control):
        return bytes([message.code])
    return bytes(message.payload)  # Audio, Error, Unknown


# ------------------------------------------------------------------ errors


class WireError(Exception):
    """Malformed input. code is one of too_large, unknown_kind, bad_length,
    empty_audio, odd_audio, bad_dtmf_state, bad_dtmf_digit; offset is the stream
    offset of the failing message's first byte."""

    def __init__(self, code: str, offset: int, kind: int, dialect: str, detail: str):
        self.code = code
        self.offset = offset
        self.kind = kind
        what = (
            f"{kind_name(kind, dialect)} (0x{kind:02x})"
            if is_known_kind(kind, dialect)
            else f"unknown kind 0x{kind:02x}"
        )
        super().__init__(f"{what} at offset {offset}: {detail}")


class EncodeRefused(Exception):
    """The dialect and peer do not allow this kind (the far end would hang up)."""


# ------------------------------------------------------------------ decoding


class Decoder:
    """Incremental decoder: feed() bytes as they arrive, next() until None.

    unknown: what to do with kinds the dialect does not define: "reject"
    (WireError), "skip" (drop them) or "keep" (return Unknown).
    bytes_per_sample: 2 for signed linear, 1 for G.711 (odd lengths allowed).
    After a WireError the decoder stays failed.
    """

    def __init__(
        self,
        dialect: str = ASTERISK,
        unknown: str = "reject",
        max_payload: int = MAX_PAYLOAD,
        bytes_per_sample: int = 2,
    ):
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")
        if unknown not in ("reject", "skip", "keep"):
            raise ValueError(f"unknown must be reject, skip or keep, not {unknown!r}")
        self.dialect = dialect
        self.unknown = unknown
        self.max_payload = min(max_payload, MAX_PAYLOAD)
        self.bytes_per_sample = 1 if bytes_per_sample == 1 else 2
        self._buf = bytearray()
        self.consumed = 0  # stream offset of the first byte not yet decoded
        self._failed: Optional[WireError] = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> Optional[Message]:
        """The next whole message, or None when more bytes are needed."""
        if self._failed is not None:
            raise self._failed
        while True:
            if len(self._buf) < HEADER_SIZE:
                return None
            kind = self._buf[0]
            length = (self._buf[1] << 8) | self._buf[2]
            try:
                self._check_header(kind, length)
                if len(self._buf) < HEADER_SIZE + length:
                    return None
                payload = bytes(self._buf[HEADER_SIZE : HEADER_SIZE + length])
                message = self._parse(kind, payload)
            except WireError as e:
                self._failed = e
                raise
            del self._buf[: HEADER_SIZE + length]
            self.consumed += HEADER_SIZE + length
            if message is not None:
                return message

    def _fail(self, code: str, kind: int, detail: str) -> WireError:
        return WireError(code, self.consumed, kind, self.dialect, detail)

    def _check_header(self, kind: int, length: int) -> None:
        if length > self.max_payload:
            raise self._fail(
                "too_large", kind, f"payload is {length} bytes, which exceeds the maximum of {self.max_payload}"
            )
        if not is_known_kind(kind, self.dialect):
            if self.unknown == "reject":
                raise self._fail("unknown_kind", kind, f"kind is not defined in the {self.dialect} dialect")
            return
        want = {KIND_HANGUP: 0, KIND_UUID: 16, KIND_DTMF: 6, KIND_DIGIT_OR_CONTROL: 1}.get(kind)
        if want is not None and length != want:
            raise self._fail("bad_length", kind, f"payload is {length} bytes, expected {want}")
        if kind in AUDIO_RATES:
            if length == 0:
                raise self._fail("empty_audio", kind, "audio payload is empty")
            if length % self.bytes_per_sample:
                raise self._fail("odd_audio", kind, f"audio payload is {length} bytes, an odd length for 16-bit samples")

    def _parse(self, kind: int, payload: bytes) -> Optional[Message]:
        if not is_known_kind(kind, self.dialect):
            return Unknown(kind, payload) if self.unknown == "keep" else None
        if kind == KIND_HANGUP:
            return Hangup()
        if kind == KIND_UUID:
            return Uuid(str(_uuid.UUID(bytes=payload)))
        if kind == KIND_DTMF:
            state, digit = payload[0], chr(payload[1])
            if state > 1:
                raise self._fail("bad_dtmf_state", kind, f"DTMF state is {state}, expected 1 (start) or 0 (stop)")
            if not is_dtmf_digit(digit):
                raise self._fail("bad_dtmf_digit", kind, f"DTMF digit is byte 0x{payload[1]:02x}")
            return Dtmf(state == 1, digit, struct.unpack("<I", payload[2:6])[0])
        if kind == KIND_DIGIT_OR_CONTROL:
            if self.dialect == EXTENDED:
                return Control(payload[0])
            if not is_dtmf_digit(chr(payload[0])):
                raise self._fail("bad_dtmf_digit", kind, f"DTMF digit is byte 0x{payload[0]:02x}")
            return DtmfDigit(chr(payload[0]))
        if kind == KIND_ERROR:
            return Error(payload)
        return Audio(AUDIO_RATES[kind], payload)


def decode_all(data: bytes, dialect: str = ASTERISK, **options) -> list[Message]:
    """Every message in data; raises WireError on malformed or truncated input."""
    dec = Decoder(dialect, **options)
    dec.feed(data)
    out = []
    while (message := dec.next()) is not None:
        out.append(message)
    if dec.buffered:
        raise WireError("truncated", dec.consumed, data[dec.consumed], dialect, "the input ends inside a message")
    return out


# ------------------------------------------------------------------ encoding


def check_allowed(message: Message, dialect: str, peer: str) -> None:
    """Raises EncodeRefused when `peer` must not receive `message` in `dialect`:
    stock Asterisk takes only audio and hangup; 0x02 and control exist only in
    the extended dialect; unknown kinds go only to a server."""
    if isinstance(message, (Hangup, Audio)):
        return
    if isinstance(message, Unknown):
        if is_known_kind(message.kind, dialect):
            raise EncodeRefused(f"kind 0x{message.kind:02x} is defined in the {dialect} dialect: send the typed message")
        if peer == PEER_ASTERISK:
            raise EncodeRefused(f"the {dialect} dialect cannot send unknown kind 0x{message.kind:02x} to Asterisk")
        return
    if dialect == ASTERISK:
        if isinstance(message, (Dtmf, Control)):
            raise EncodeRefused(f"the asterisk dialect has no {type(message).__name__.lower()} messages")
        if peer == PEER_ASTERISK:
            hint = "; send DTMF as in-band tones inside the audio" if isinstance(message, DtmfDigit) else ""
            raise EncodeRefused(
                f"the asterisk dialect cannot send {kind_name(message.kind, dialect)} (0x{message.kind:02x}) "
                f"to Asterisk: stock Asterisk hangs up on any kind but audio and hangup{hint}"
            )
        return
    if isinstance(message, DtmfDigit):
        raise EncodeRefused("the extended dialect sends DTMF as 0x02 start/stop (Dtmf), not 0x03 digits")


def encode(message: Message, dialect: str = ASTERISK, peer: str = PEER_ASTERISK) -> bytes:
    """Header and payload of `message`. Raises EncodeRefused (dialect/peer
    rules) or ValueError (malformed: odd or empty audio, bad digit, too long)."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}")
    if peer not in (PEER_ASTERISK, PEER_SERVER):
        raise ValueError("peer must be 'asterisk' or 'server'")
    if isinstance(message, Audio):
        if message.rate not in AUDIO_KINDS:
            raise ValueError(f"no AudioSocket kind for {message.rate} Hz")
        if not message.payload:
            raise ValueError("cannot encode empty audio: Asterisk hangs up on it")
        if len(message.payload) % 2:
            raise ValueError("16-bit audio needs an even length (use encode_raw for G.711)")
    if isinstance(message, (Dtmf, DtmfDigit)) and not is_dtmf_digit(message.digit):
        raise ValueError(f"{message.digit!r} is not a DTMF digit (0-9 * # A-D)")
    if isinstance(message, Control) and not 0 <= message.code <= 255:
        raise ValueError("a control code is one byte")
    payload = payload_of(message)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is more than a header can carry")
    check_allowed(message, dialect, peer)
    return encode_raw(message.kind, payload)


def encode_raw(kind: int, payload: bytes = b"") -> bytes:
    """Header and payload without any check (for deliberately malformed input)."""
    return bytes([kind, (len(payload) >> 8) & 0xFF, len(payload) & 0xFF]) + bytes(payload)


# ------------------------------------------------------------------ describing


def describe(message: Message, dialect: str = ASTERISK, bytes_per_sample: int = 2) -> dict[str, str]:
    """The message's fields as text, in the golden vectors' notation
    (tests/testdata/wire/README.md): type, kind, length, then by kind."""
    payload = payload_of(message)
    fields = {
        "type": f"0x{message.kind:02x}",
        "kind": kind_name(message.kind, dialect),
        "length": str(len(payload)),
    }
    if isinstance(message, Uuid):
        fields["uuid"] = message.uuid
    elif isinstance(message, Dtmf):
        fields.update(state="start" if message.start else "stop", digit=message.digit, duration_ms=str(message.duration_ms))
    elif isinstance(message, DtmfDigit):
        fields["digit"] = message.digit
    elif isinstance(message, Control):
        fields.update(code=str(message.code), control=control_name(message.code))
    elif isinstance(message, Audio):
        fields.update(rate=str(message.rate), samples=str(len(payload) // (1 if bytes_per_sample == 1 else 2)))
    elif isinstance(message, Error):
        fields.update(payload=payload.hex(), flags="|".join(error_flag_names(message.flags)))
    elif isinstance(message, Unknown):
        fields["payload"] = payload.hex()
    return fields


def describe_text(message: Message, dialect: str = ASTERISK, bytes_per_sample: int = 2) -> str:
    return " ".join(f"{k}={v}" for k, v in describe(message, dialect, bytes_per_sample).items())
