#!/usr/bin/env python3
"""Writes the seed corpus of the protocol fuzz targets into corpus/<target>/.

Run from anywhere: python3 tests/fuzz/make_seeds.py. The seeds are checked in; rerun only
when the message formats change.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def typed(t, body=b""):
    return t + struct.pack("!i", len(body) + 4) + body


def untyped(body):
    return struct.pack("!i", len(body) + 4) + body


def cstr(s):
    return s + b"\0"


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_decoder: streams of typed frames ----------------------------------------------
bind_rest = struct.pack("!hhh", 1, 0, 2) + struct.pack("!i", 2) + b"42" + struct.pack("!i", -1) \
    + struct.pack("!hh", 1, 0)
write("fuzz_decoder", "extended_query",
      typed(b"P", cstr(b"s1") + cstr(b"select $1, $2") + struct.pack("!hii", 2, 23, 25))
      + typed(b"B", cstr(b"") + cstr(b"s1") + bind_rest)
      + typed(b"D", b"P" + cstr(b""))
      + typed(b"E", cstr(b"") + struct.pack("!i", 0))
      + typed(b"C", b"S" + cstr(b"s1"))
      + typed(b"S"))
write("fuzz_decoder", "simple_query", typed(b"Q", cstr(b"select 1; select 2")) + typed(b"X"))
row_field = cstr(b"id") + struct.pack("!ihihih", 16384, 1, 20, 8, -1, 0)
write("fuzz_decoder", "backend_results",
      typed(b"1") + typed(b"2")
      + typed(b"T", struct.pack("!h", 2) + row_field + row_field)
      + typed(b"D", struct.pack("!hi", 2, 1) + b"7" + struct.pack("!i", -1))
      + typed(b"C", cstr(b"SELECT 1"))
      + typed(b"Z", b"I"))
write("fuzz_decoder", "backend_startup",
      typed(b"R", struct.pack("!i", 10) + cstr(b"SCRAM-SHA-256") + b"\0")
      + typed(b"R", struct.pack("!i", 11) + b"r=abc,s=c2FsdA==,i=4096")
      + typed(b"R", struct.pack("!i", 12) + b"v=abc")
      + typed(b"R", struct.pack("!i", 5) + b"\x01\x02\x03\x04")
      + typed(b"R", struct.pack("!i", 0))
      + typed(b"S", cstr(b"server_version") + cstr(b"15.6"))
      + typed(b"K", struct.pack("!ii", 1234, 5678))
      + typed(b"Z", b"T"))
write("fuzz_decoder", "error",
      typed(b"E", b"S" + cstr(b"ERROR") + b"V" + cstr(b"ERROR") + b"C" + cstr(b"42P01")
            + b"M" + cstr(b"relation does not exist") + b"\0"))
write("fuzz_decoder", "password",
      typed(b"p", cstr(b"SCRAM-SHA-256") + struct.pack("!i", 11) + b"n,,n=,r=abc")
      + typed(b"p", cstr(b"md5a80a6c0967e923f0e3eba985228a4417")))

# ---- fuzz_startup: startup frame, then a SCRAM exchange -----------------------------------
startup = untyped(struct.pack("!i", 196608) + cstr(b"user") + cstr(b"user")
                  + cstr(b"database") + cstr(b"db") + b"\0")
client_first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
client_final = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
write("fuzz_startup", "rfc7677_frames",
      startup + typed(b"p", cstr(b"SCRAM-SHA-256") + struct.pack("!i", len(client_first))
                      + client_first) + typed(b"p", client_final))
write("fuzz_startup", "rfc7677_split", startup + client_first + b"\n" + client_final)
write("fuzz_startup", "gs2_y", startup + b"y,,n=,r=abc\nc=eSws,r=abc,p=AAAA")
write("fuzz_startup", "channel_binding", startup + b"p=tls-server-end-point,,n=,r=abc\n")
write("fuzz_startup", "ssl_request", untyped(struct.pack("!i", 80877103)))
write("fuzz_startup", "gssenc_request", untyped(struct.pack("!i", 80877104)))
write("fuzz_startup", "cancel_request", untyped(struct.pack("!iii", 80877102, 4242, 99)))
write("fuzz_startup", "protocol_3_2",
      untyped(struct.pack("!i", (3 << 16) | 2) + cstr(b"user") + cstr(b"u")
              + cstr(b"_pq_.x") + cstr(b"1") + b"\0"))
