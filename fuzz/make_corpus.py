#!/usr/bin/env python3
"""Writes the seed corpus of frame_fuzz into fuzz/corpus/.

Each input is a 7-byte header, then the stream (see frame_fuzz.c):
  [0] max_line - 1   [1] max_frame: 0 = default, else 1 + 8 * value
  [2..5] chunk sizes - 1 (255 = 4096)   [6] bit 0: space + commit path
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def header(max_line=64, max_frame=0, chunks=(0, 1, 6, 254), direct=0):
    return bytes([max_line - 1, max_frame] + list(chunks) + [direct])


def pack(v):
    """A minimal msgpack packer (canonical encodings)."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7F:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v <= 0xFF:
            return b"\xcc" + struct.pack(">B", v)
        if 0 <= v <= 0xFFFF:
            return b"\xcd" + struct.pack(">H", v)
        if 0 <= v <= 0xFFFFFFFF:
            return b"\xce" + struct.pack(">I", v)
        if v > 0:
            return b"\xcf" + struct.pack(">Q", v)
        if v >= -128:
            return b"\xd0" + struct.pack(">b", v)
        if v >= -32768:
            return b"\xd1" + struct.pack(">h", v)
        if v >= -(2 ** 31):
            return b"\xd2" + struct.pack(">i", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        n = len(b)
        if n < 32:
            return bytes([0xA0 | n]) + b
        if n < 256:
            return b"\xd9" + bytes([n]) + b
        return b"\xda" + struct.pack(">H", n) + b
    if isinstance(v, bytes):
        n = len(v)
        if n < 256:
            return b"\xc4" + bytes([n]) + v
        return b"\xc5" + struct.pack(">H", n) + v
    if isinstance(v, list):
        n = len(v)
        h = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return h + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        h = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return h + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)


SAMPLES = {
    "lines-basic": header(16) + b"hello\nworld\r\n\n\r\na\rb\nlast",
    "lines-limit": header(8, chunks=(0, 2, 0, 7)) + b"1234567\n12345678\nnext\n" + b"x" * 40 + b"\nok\n",
    "lines-garbage": header(32, chunks=(255, 254, 3, 0)) + bytes(range(256)) * 4 + b"\nend\n",
    "lines-crlf": header(200, chunks=(9, 9, 9, 9), direct=1) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 5,
    "mp-scalars": header(64) + b"".join(pack(v) for v in
                                         [None, True, False, 0, 127, 128, 65535, 2 ** 40, -1, -33,
                                          -200, -40000, -(2 ** 40), 1.5, "", "hi", "x" * 40, b"\0\1"]),
    "mp-nested": header(64, chunks=(0, 0, 0, 0)) + pack({"a": 1, "b": [1, 2, [3, {"c": None}]],
                                                         "d": {"e": b"bin", "f": "s" * 300}}),
    "mp-ext": header(64, chunks=(1, 3, 5, 254))
    + b"\xd4\x01\xaa" + b"\xd5\x02\xaa\xbb" + b"\xd6\x03" + b"\x00" * 4 + b"\xd7\x04" + b"\x00" * 8
    + b"\xd8\x05" + b"\x00" * 16 + b"\xc7\x03\x06abc" + b"\xca\x3f\x80\x00\x00",
    "mp-malformed": header(64) + pack([1, 2]) + b"\xc1" + pack(3),
    "mp-max-frame": header(64, max_frame=1, chunks=(0, 4, 254, 1)) + pack("y" * 8) + pack("z" * 20) + pack(1),
    "mp-big-headers": header(64, max_frame=3) + b"\xdb\x00\x00\x10\x00" + b"q" * 100,
    "mp-deep": header(64, chunks=(0, 0, 0, 0)) + b"\x91" * 40 + b"\x01",
    "mixed": header(20, chunks=(3, 0, 17, 1)) + b"line one\n" + pack({"k": "v\n"}) + b"\n\n",
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SAMPLES.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
