#!/usr/bin/env python3
"""Writes the wire decoder's seed corpus from the golden vectors.

Usage: tests/fuzz/make_corpus.py  (from the repository root)

Each vector becomes corpus/wire_decoder/<name>: one config byte (see
wire_decoder_fuzz.h: dialect, unknown-kind policy, G.711, max payload) and
the vector's bytes. Also shows how little it takes to read the vector files.
"""
import os
import re

VECTORS = "tests/testdata/wire"
OUT = "tests/fuzz/corpus/wire_decoder"
POLICY = {"reject": 0, "skip": 1, "keep": 2}
MAX_PAYLOAD = {"65535": 0, "320": 1, "16": 2, "0": 3}


def vectors(path):
    v = None
    for raw in open(path):
        line = re.sub(r"(^|[ \t])#.*", "", raw).strip()
        if not line:
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "vector":
            if v:
                yield v
            v = {"name": value, "hex": [], "dialect": "asterisk", "policy": "reject",
                 "max_payload": "65535", "bytes_per_sample": "2"}
        elif key == "hex":
            v["hex"] += value.split()
        elif key in ("dialect", "policy", "max_payload", "bytes_per_sample"):
            v[key] = value
    if v:
        yield v


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in sorted(os.listdir(VECTORS)):
        if not name.endswith(".txt"):
            continue
        for v in vectors(os.path.join(VECTORS, name)):
            config = (1 if v["dialect"] == "extended" else 0) | (POLICY[v["policy"]] << 1)
            config |= 8 if v["bytes_per_sample"] == "1" else 0
            config |= MAX_PAYLOAD.get(v["max_payload"], 0) << 4
            data = bytes([config]) + bytes(int(h, 16) for h in v["hex"])
            with open(os.path.join(OUT, v["name"]), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
