#!/usr/bin/env python3
"""Writes the seed corpus of the play command decoder's fuzz target
(play_command_decoder_fuzz.h): backend messages as a link hands them over,
encoded by hand (protobuf wire format) so that the script needs nothing but
Python. Run from the repository root:
python3 tests/fuzz/make_play_command_corpus.py"""
import os

OUT = "tests/fuzz/corpus/play_command_decoder"


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(tag, payload):
    return bytes([tag]) + varint(len(payload)) + payload


def play(pcm=b"", rate=None, response_id=None):
    out = field(0x0A, pcm) if pcm else b""
    if rate is not None:
        out += bytes([0x10]) + varint(rate)
    if response_id is not None:
        out += field(0x1A, response_id)
    return out


def command(play_bytes, command_id=None):
    out = field(0x0A, command_id) if command_id is not None else b""
    return field(0x0A, out + field(0x2A, play_bytes))


PCM = bytes(range(0, 256, 8)) * 10  # 320 bytes: one 8 kHz frame
SEEDS = {
    "play_frame": command(play(PCM)),
    "play_all_fields": command(play(PCM, 16000, b"r1"), b"c1"),
    "play_fields_reversed": field(0x0A, field(0x2A, field(0x1A, b"r") + bytes([0x10]) +
                                                   varint(8000) + field(0x0A, b"\x01\x02")) +
                                  field(0x0A, b"id")),
    "play_empty": command(b""),
    "play_long_pcm": command(play(bytes(200) * 100, 8000)),
    "play_max_rate": command(play(PCM[:4], 0xFFFFFFFF)),
    "play_rate_past_32_bits": command(play(PCM[:4]) + bytes([0x10]) + varint(1 << 33)),
    "play_rate_twice": command(play(PCM[:4], 8000) + bytes([0x10]) + varint(16000)),
    "play_pcm_twice": command(play(PCM[:4]) + field(0x0A, b"\x05\x06")),
    "play_utf8_response_id": command(play(PCM[:4], None, "ré".encode())),
    "play_unknown_field": command(play(PCM[:4]) + field(0x22, b"x")),
    "command_twice": command(play(PCM[:4])) + command(play(PCM[4:8])),
    "mark": field(0x0A, field(0x0A, b"m1") + field(0x32, field(0x0A, b"name"))),
    "accept": field(0x12, field(0x0A, field(0x08, b"")[:0] + bytes([0x08]) + varint(16000))),
    "claim": field(0x12, field(0x0A, b"call-id")),
    "truncated_play": command(play(PCM, 8000, b"r"))[:-3],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
