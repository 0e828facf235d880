#!/usr/bin/env python3
"""Writes the seed corpus of the play command decoder's fuzz target
(play_command_decoder_fuzz.h): backend messages as a link hands them over,
encoded by hand (protobuf wire format; the helpers of make_call_corpus.py)
so that the script needs nothing but Python. Run from the repository root:
python3 tests/fuzz/make_play_command_corpus.py"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_call_corpus import field  # noqa: E402  (number, bytes or int)

OUT = "tests/fuzz/corpus/play_command_decoder"


def play(pcm=b"", rate=None, response_id=None):
    """A PlayAudio's fields: pcm 1, sample_rate_hz 2, response_id 3."""
    out = field(1, pcm) if pcm else b""
    if rate is not None:
        out += field(2, rate)
    if response_id is not None:
        out += field(3, response_id)
    return out


def command(play_bytes, command_id=None):
    """A HandleCallResponse (or ClaimCallRequest): command 1 holding
    CallCommand{command_id 1, play 5}."""
    out = field(1, command_id) if command_id is not None else b""
    return field(1, out + field(5, play_bytes))


PCM = bytes(range(0, 256, 8)) * 10  # 320 bytes: one 8 kHz frame
SEEDS = {
    "play_frame": command(play(PCM)),
    "play_all_fields": command(play(PCM, 16000, b"r1"), b"c1"),
    "play_fields_reversed": field(1, field(5, field(3, b"r") + field(2, 8000) +
                                             field(1, b"\x01\x02")) + field(1, b"id")),
    "play_empty": command(b""),
    "play_long_pcm": command(play(bytes(200) * 100, 8000)),
    "play_max_rate": command(play(PCM[:4], 0xFFFFFFFF)),
    "play_rate_past_32_bits": command(play(PCM[:4]) + field(2, 1 << 33)),
    "play_rate_twice": command(play(PCM[:4], 8000) + field(2, 16000)),
    "play_pcm_twice": command(play(PCM[:4]) + field(1, b"\x05\x06")),
    "play_utf8_response_id": command(play(PCM[:4], None, "ré".encode())),
    "play_unknown_field": command(play(PCM[:4]) + field(4, b"x")),
    "command_twice": command(play(PCM[:4])) + command(play(PCM[4:8])),
    "mark": field(1, field(1, b"m1") + field(6, field(1, b"name"))),
    "accept": field(2, field(1, field(1, 16000))),
    "claim": field(2, field(1, b"call-id")),
    "truncated_play": command(play(PCM, 8000, b"r"))[:-3],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
