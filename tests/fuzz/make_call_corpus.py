#!/usr/bin/env python3
"""Writes the seed corpora of the call fuzz targets (call_session and
backend_commands; layouts in tests/fuzz/call_fuzz.h). Run from the
repository root: python3 tests/fuzz/make_call_corpus.py

HandleCallResponse messages (what a push backend sends) are encoded by hand (protobuf wire format) so that
the script needs nothing but Python."""
import os
import struct


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(number, value):
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def command(command_id, number, body):
    """A HandleCallResponse{command: CallCommand{command_id, <number>: body}}."""
    inner = (field(1, command_id.encode()) if command_id else b"") + field(number, body)
    return field(1, inner)


def accept(command_id, media):
    """A HandleCallResponse{accept: AcceptCall{media, command_id}}."""
    return field(2, field(1, media) + field(2, command_id.encode()))


def reject(body):
    """A HandleCallResponse{reject: RejectCall{...}}."""
    return field(3, body)


def pcm(samples, level=1000):
    return struct.pack("<%dh" % samples, *([level] * samples))


def uuid(seed):
    return bytes([0x01, 0x00, 0x10]) + bytes((seed * 31 + i * 17 + 1) & 0xFF for i in range(16))


def audio(kind=0x10, size=320, fill=0):
    return bytes([kind, size >> 8, size & 0xFF]) + bytes([fill]) * size


def chunks(stream, size=64):
    out = b""
    for i in range(0, len(stream), size):
        part = stream[i : i + size]
        out += bytes([len(part)]) + part
    return out


COMMANDS = {
    "accept": accept("a", b""),
    "accept_16k": accept("a16", field(1, 16000)),
    "accept_inband": accept("ai", field(2, 1)),
    "accept_absurd_rate": accept("ax", field(1, 4000000000)),
    "reject_busy": reject(field(1, 1) + field(2, b"busy")),
    "play": command("p", 5, field(1, pcm(800)) + field(3, b"resp")),
    "play_16k": command("p16", 5, field(1, pcm(640)) + field(2, 16000)),
    "play_odd": command("po", 5, field(1, b"\x01\x02\x03")),
    "play_absurd_rate": command("px", 5, field(1, pcm(160)) + field(2, 7)),
    "play_huge_rate": command("ph", 5, field(1, pcm(160)) + field(2, 4000000000)),
    "mark": command("m", 6, field(1, b"m1")),
    "clear": command("cl", 7, b""),
    "clear_response": command("clr", 7, field(1, b"resp")),
    "dtmf": command("d", 8, field(1, b"123#") + field(2, 80) + field(3, 40)),
    "dtmf_bad": command("db", 8, field(1, b"xyz")),
    "dtmf_long": command("dl", 8, field(1, b"1" * 64) + field(2, 1000000)),
    "control": command("k", 9, field(1, 4)),
    "control_raw": command("kr", 9, field(2, 255)),
    "hangup": command("h", 10, b""),
    "hangup_after_playout": command("ha", 10, field(1, 1)),
    "empty": b"",
    "empty_command": field(1, b""),
    "unknown_field": command("u", 99, b"future"),
    "unknown_response": field(99, b"future"),
}


def record(op, payload):
    return bytes([op, len(payload) >> 8, len(payload) & 0xFF]) + payload


def main():
    base = os.path.join("tests", "fuzz", "corpus")
    session = os.path.join(base, "call_session")
    backend = os.path.join(base, "backend_commands")
    os.makedirs(session, exist_ok=True)
    os.makedirs(backend, exist_ok=True)

    def write(directory, name, data):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)

    # call_session: options byte, flags byte, chunks.
    streams = {
        "audio_8k": uuid(1) + audio() * 5 + bytes([0x00, 0x00, 0x00]),
        "audio_16k": uuid(2) + audio(0x12, 640) * 3,
        "audio_48k": uuid(3) + audio(0x16, 1920) * 2,
        "dtmf_digit": uuid(4) + audio() + bytes([0x03, 0x00, 0x01, ord("5")]) + audio(),
        "error": uuid(5) + audio() + bytes([0xFF, 0x00, 0x01, 0x04]),
        "hangup": uuid(6) + audio() + bytes([0x00, 0x00, 0x00]),
        "rate_change": uuid(7) + audio() + audio(0x12, 640),
        "second_uuid": uuid(8) + audio() + uuid(9),
        "audio_first": audio() + uuid(10),
        "truncated": uuid(11) + audio()[:100],
        "odd_audio": uuid(12) + bytes([0x10, 0x01, 0x3F]) + bytes(319),
        "garbage": uuid(13) + bytes([0x7E]) + bytes(range(63)),
        "extended_dtmf": uuid(14) + bytes([0x02, 0x00, 0x06, 1, ord("7"), 0, 0, 0, 0]) + audio()
        + bytes([0x02, 0x00, 0x06, 0, ord("7"), 0, 0, 0, 100]),
        "extended_control": uuid(15) + audio() + bytes([0x03, 0x00, 0x01, 0x04]),
        "empty_audio": uuid(16) + bytes([0x10, 0x00, 0x00]),
    }
    for name, stream in streams.items():
        for options, flags, suffix in ((0, 0, ""), (1, 3, "_ext_accept"), (2, 7, "_ulaw_play")):
            write(session, name + suffix, bytes([options, flags]) + chunks(stream) + b"\x00")

    # backend_commands: options byte, flags byte, records.
    for name, body in COMMANDS.items():
        for options, flags, suffix in ((0, 1, ""), (1, 0, "_ext_waiting")):
            data = bytes([options, flags]) + record(0, body) + record(1, bytes([1, 2, 3]))
            data += record(3, bytes([40])) + record(0, COMMANDS["mark"])
            write(backend, name + suffix, data)
    sequence = b"".join(record(0, COMMANDS[n]) for n in ("play", "mark", "dtmf", "clear", "play_16k",
                                                          "hangup_after_playout"))
    write(backend, "sequence", bytes([0, 1]) + sequence + record(3, bytes([50])))
    write(backend, "sequence_ulaw_inband", bytes([2 | 8, 1]) + sequence)
    # The same handed over as bytes (flags bit 1), accepted and not.
    write(backend, "sequence_as_bytes", bytes([0, 1 | 2]) + sequence + record(3, bytes([50])))
    write(backend, "sequence_as_bytes_waiting", bytes([1, 2]) + sequence)
    write(backend, "caller_bytes_midcall", bytes([0, 1]) + record(0, COMMANDS["play"])
          + record(2, bytes([0x10, 0x00, 0x03, 1, 2, 3])))


if __name__ == "__main__":
    main()
