#!/usr/bin/env python3
"""Writes the seed corpora into fuzz/corpus/<target>/.

Run from anywhere: python3 fuzz/seeds/make_seeds.py
Seeds: every raw request of ../shared/conformance/gunicorn-requests.json
(if present) plus hand-written smuggling-style cases. Each target has its
own input layout (see the `//!` docs of fuzz_targets/*.rs), so the same
request is written with the prefix bytes that target expects.
"""

import base64
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.dirname(HERE)
CONFORMANCE = os.path.join(FUZZ, "..", "..", "shared", "conformance", "gunicorn-requests.json")

requests = [
    # valid
    b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"GET /a/b?c=d&e=%20f HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
    b"GET http://example.com:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\n\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b'POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6 ; a="b"\r\n world\r\n0\r\nX-T: v\r\n\r\n',
    b"POST /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /two HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nbb",
    # smuggling: CL + TE, TE obfuscations
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
    # bad chunk sizes, huge sizes
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\nx",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x00b\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n:v\r\n\r\n",
    # obs-fold, bare CR, NUL, bad lines
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\rHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    b"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    b"GET a HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /#frag HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\r\n" * 10 + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 600 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X%d: v\r\n" % i for i in range(140)) + b"\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n",
    b"GET / HT",
]

bodies = [
    b"0\r\n\r\n",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5;ext=val\r\nhello\r\n0\r\n\r\n",
    b"5 ;a=b;c\r\nhello\r\n0\r\n\r\n",
    b"a\r\n0123456789\r\n1\r\nx\r\n0\r\nTrailer: v\r\nX-Two: w\r\n\r\n",
    b"A\r\n0123456789\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
    b"fffffffffffffff\r\nabc",
    b"ffffffffffffffff\r\nabc",
    b"00000000000000000001\r\nx\r\n0\r\n\r\n",
    b"-1\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhelloXX",
    b"5\nhello\n0\n\n",
    b"5\rhello",
    b" 5\r\nhello\r\n0\r\n\r\n",
    b"5;\x00\r\nhello\r\n",
    b"5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
    b"0\r\nbad trailer\r\n\r\n",
    b"0\r\n:v\r\n\r\n",
    b"0\r\nX: a\rb\r\n\r\n",
    b"0\r\nX: " + b"t" * 9000 + b"\r\n\r\n",
    b"0\r\n\r",
    b"0\r\n\rX",
    b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n",
    b"",
]


def conformance():
    try:
        with open(CONFORMANCE) as f:
            cases = json.load(f)
    except OSError as e:
        print(f"no conformance file ({e}); hand-written seeds only", file=sys.stderr)
        return []
    return [base64.b64decode(c["raw_b64"]) for c in cases if c.get("raw_b64")]


def write(target, data):
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    reqs = requests + conformance()
    for i, r in enumerate(reqs):
        # head_parser: limits selector, parameter, split seed, buffer.
        write("head_parser", bytes([0, 0, i % 256]) + r)
        # request_stream: limits selector, parameter, connection rules
        # (bit 0 PROXY, 1 h2c, 2 uwsgi, 3 health path), then the bytes.
        write("request_stream", bytes([0, 0, 0]) + r)
        if i % 4 == 0:
            write("head_parser", bytes([1 + i % 3, i % 256, 7]) + r)
            write("request_stream", bytes([1 + i % 3, (i * 13) % 256, 0]) + r)
        if i % 5 == 0:
            write("request_stream", bytes([0, 0, 0b1010]) + r)
        # Pipelined pairs.
        if i + 1 < len(reqs) and i % 3 == 0:
            write("request_stream", bytes([0, 0, 0]) + r + reqs[i + 1])
        # chunked bodies inside requests go to chunked_decoder too
        sep = r.find(b"\r\n\r\n")
        if b"chunked" in r.lower() and sep >= 0:
            write("chunked_decoder", bytes([0, i % 256]) + r[sep + 4 :])
    for i, b in enumerate(bodies):
        write("chunked_decoder", bytes([0, (i * 37) % 256]) + b)
        write("chunked_decoder", bytes([2 + 4 * (i % 8), 0x80 | i]) + b)
    for t in ("head_parser", "chunked_decoder", "request_stream"):
        n = len(os.listdir(os.path.join(FUZZ, "corpus", t)))
        print(f"{t}: {n} seeds")


main()
