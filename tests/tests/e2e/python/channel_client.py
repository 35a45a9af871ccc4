"""A third-party WebSocket client (the `websockets` library) in one plugin channel room reached
through two servers that share a PostgreSQL database: each side gets the host's welcome, the
first learns of the second's arrival, and text and binary messages cross in both directions.

Usage: channel_client.py URL_A CERT_A URL_B CERT_B (wss:// URLs, each server's certificate).
Prints the two member ids as JSON; exits non-zero on any mismatch.
"""

import json
import ssl
import sys

from websockets.sync.client import connect


def tls(cafile):
    return ssl.create_default_context(cafile=cafile)


def host_frame(ws):
    frame = json.loads(ws.recv(timeout=10))
    assert isinstance(frame, dict) and "megalis" in frame, frame
    return frame


def main():
    url_a, cert_a, url_b, cert_b = sys.argv[1:5]
    with connect(url_a, ssl=tls(cert_a), server_hostname="localhost") as a, connect(
        url_b, ssl=tls(cert_b), server_hostname="localhost"
    ) as b:
        welcome_a = host_frame(a)
        welcome_b = host_frame(b)
        assert welcome_a["megalis"] == welcome_b["megalis"] == "welcome", (welcome_a, welcome_b)
        joined = host_frame(a)
        assert joined == {"megalis": "joined", "member": welcome_b["member"]}, joined

        offer = {"type": "offer", "sdp": "v=0 from python"}
        a.send(json.dumps(offer))
        got = json.loads(b.recv(timeout=10))
        assert got == offer, got

        b.send(b"\x00\x01binary")
        got = a.recv(timeout=10)
        assert got == b"\x00\x01binary", got
    print(json.dumps({"a": welcome_a["member"], "b": welcome_b["member"]}))


if __name__ == "__main__":
    main()
