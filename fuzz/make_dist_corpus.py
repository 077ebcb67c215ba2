#!/usr/bin/env python3
"""Writes the seed corpus of dist_fuzz into fuzz/dist-corpus/.

Each input is a role byte (0 acceptor, 1 initiator, 2 control frames,
3 EPMD replies), then what the peer sends (see dist_fuzz.c)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dist-corpus")
FLAGS = 0x1000000 | 0x7FFFF | (1 << 34) | 0x2000000


def f2(b):
    return struct.pack(">H", len(b)) + b


def f4(b):
    return struct.pack(">I", len(b)) + b


def atom(s):
    return bytes([119, len(s)]) + s


def pid(node, num, serial, creation):
    return bytes([88]) + atom(node) + struct.pack(">III", num, serial, creation)


def tup(*xs):
    return bytes([104, len(xs)]) + b"".join(xs)


def small(i):
    return bytes([97, i])


def binary(b):
    return bytes([109]) + struct.pack(">I", len(b)) + b


def ref(node):
    return bytes([90]) + struct.pack(">H", 3) + atom(node) + struct.pack(">IIII", 1, 2, 3, 4)


def name_msg(name, challenge=None):
    m = b"N" + struct.pack(">Q", FLAGS)
    if challenge is not None:
        m += struct.pack(">I", challenge)
    return m + struct.pack(">IH", 9, len(name)) + name


def main():
    os.makedirs(OUT, exist_ok=True)
    a, b = pid(b"a@h", 1, 2, 3), pid(b"fuzz@localhost", 4, 5, 7)
    send = f4(b"p\x83" + tup(small(22), a, b) + b"\x83" + tup(small(42), binary(b"hi")))
    reg = f4(b"p\x83" + tup(small(6), a, atom(b""), atom(b"echo")) + b"\x83" + atom(b"x"))
    mon = f4(b"p\x83" + tup(small(19), a, atom(b"echo"), ref(b"a@h")))
    unlink = f4(b"p\x83" + tup(small(35), small(7), a, b))
    # The send again, with a distribution header (131, 68, no cache refs),
    # and in three fragments of two interleaved sequences (131, 69 / 70).
    ctl, msg = tup(small(22), a, b), tup(small(42), binary(b"hello, fragments"))
    hdr = f4(b"\x83\x44\x00" + ctl + msg)

    def frag(first, seq, fid, body):
        return f4(bytes([131, 69 if first else 70]) + struct.pack(">QQ", seq, fid)
                  + (b"\x00" if first else b"") + body)

    whole = ctl + msg
    frags = (frag(True, 1, 3, whole[:len(ctl) + 4]) + frag(True, 2, 2, whole[:len(ctl) + 9])
             + frag(False, 1, 2, whole[len(ctl) + 4:len(ctl) + 12])
             + frag(False, 2, 1, whole[len(ctl) + 9:]) + frag(False, 1, 1, whole[len(ctl) + 12:]))
    # An EXIT whose reason runs past its first fragment (and a deep term
    # in it): the control message is whole only with the last fragment.
    reason = b"h\x02" + b"h\x01" * 40 + b"j" + binary(b"r" * 40)
    exit_whole = b"h\x04" + small(3) + a + b + reason
    long_ctl = (frag(True, 5, 3, exit_whole[:30]) + frag(False, 5, 2, exit_whole[30:90])
                + frag(False, 5, 1, exit_whole[90:]))
    seeds = {
        "control-long-ctl": b"\x02" + long_ctl,
        "control-dist-header": b"\x02" + hdr,
        "control-fragments": b"\x02" + frags,
        "acceptor-name": b"\x00" + f2(name_msg(b"peer@h")) + f2(b"r" + bytes(20)) + send,
        "acceptor-cut": b"\x00" + f2(name_msg(b"peer@h"))[:9],
        "initiator-ok": b"\x01" + f2(b"sok") + f2(name_msg(b"peer@h", 99)) + f2(b"a" + bytes(16)),
        "initiator-nok": b"\x01" + f2(b"snok"),
        "control": b"\x02" + send + f4(b"") + reg + mon + unlink,
        "control-atom-cache": b"\x02" + f4(b"\x83\x44\x00"),
        "epmd": b"\x03" + bytes([119, 0, 0x9C, 0x40, 77, 0, 0, 6, 0, 6, 0, 1]) + b"n" + bytes(2),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
