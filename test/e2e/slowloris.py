#!/usr/bin/env python3
"""Slow clients against a local HTTPS server, for the e2e tests.

Opens COUNT TLS connections to 127.0.0.1:PORT (a few threads do the
handshakes, so the server is not asked for thousands at once), then sends
on each a request head one byte every INTERVAL seconds, never finishing
it, for at most DURATION seconds, and notes when the server closes each.

--keepalive adds two connections that first complete a request: one then
stays silent (an idle kept-alive connection), the other sends the next
request line and trickles that request's headers. It ends early once the
server closed every connection but the idle one.

Prints one JSON object:
  opened, failed        connections opened (TLS handshake done) or not
  open_when_ready       of the slow ones, how many were open once all were
  closed, open_at_end   slow ones the server closed, or still open at the end
  closed_after          seconds from the start of connect to the close, sorted
  open_s                seconds it took to open them all
  idle_open_at_end      --keepalive: the idle one was still open at the end
  second_head_closed_after  --keepalive: seconds from the second request
                        line to the close, or null

Loopback only, bounded in count and time: a test tool, not a load tool.
"""
import argparse
import json
import selectors
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

HEAD = b"GET /apis HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\nX-Slow: " + b"a" * 4096


class Conn:
    def __init__(self, kind):
        self.kind = kind
        self.sock = None
        self.t0 = None          # connect started
        self.closed = None      # when the server closed it
        self.failed = None
        self.sent = 0
        self.mark = None        # --keepalive: when the second request line went out
        self.payload = HEAD


def open_one(c, port, ctx):
    c.t0 = time.monotonic()
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        c.sock = ctx.wrap_socket(raw)
    except Exception as e:  # noqa: BLE001 - any failure to open counts
        c.failed = repr(e)
    return c


def full_request(c):
    """Sends one whole request and reads its whole response (Content-Length)."""
    c.sock.sendall(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += c.sock.recv(4096)
    head, body = buf.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":", 1)[1])
    while len(body) < n:
        body += c.sock.recv(4096)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--keepalive", action="store_true")
    ap.add_argument("--ready-file", help="written once every connection is open")
    a = ap.parse_args()
    if a.count > 5000 or a.duration > 300:
        raise SystemExit("slowloris.py: at most 5000 connections for 300 s")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    start = time.monotonic()
    deadline = start + a.duration

    conns = [Conn("slow") for _ in range(a.count)]
    extra = [Conn("idle"), Conn("second")] if a.keepalive else []
    with ThreadPoolExecutor(a.threads) as ex:
        list(ex.map(lambda c: open_one(c, a.port, ctx), conns + extra))
    open_s = time.monotonic() - start
    sel = selectors.DefaultSelector()
    live = [c for c in conns + extra if c.sock]
    for c in extra:
        if c.sock:
            full_request(c)
    for c in live:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)
    second = [c for c in extra if c.kind == "second" and c.sock]
    for c in second:
        # The next request's line at once, then its headers a byte at a time.
        c.sock.send(b"GET /apis HTTP/1.1\r\n")
        c.mark = time.monotonic()
        c.payload = b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 4096

    def close(c, now):
        if c.closed is None:
            c.closed = now
            sel.unregister(c.sock)
            c.sock.close()

    open_when_ready = None
    next_send = time.monotonic()
    waiting = [c for c in live if c.kind != "idle"]
    while time.monotonic() < deadline and any(c.closed is None for c in waiting):
        now = time.monotonic()
        if open_when_ready is None:
            open_when_ready = sum(1 for c in conns if c.sock and c.closed is None)
            if a.ready_file:
                with open(a.ready_file, "w") as f:
                    f.write("%.2f %d\n" % (open_s, open_when_ready))
        if now >= next_send:
            next_send = now + a.interval
            for c in live:
                if c.closed is not None or c.kind == "idle":
                    continue
                try:
                    c.sock.send(c.payload[c.sent % len(c.payload):][:1])
                    c.sent += 1
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    pass
                except OSError:
                    close(c, now)
        for key, _ in sel.select(timeout=max(0.0, min(next_send, deadline) - time.monotonic())):
            c = key.data
            try:
                while True:
                    data = c.sock.recv(4096)
                    if not data:
                        close(c, time.monotonic())
                        break
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except OSError:
                close(c, time.monotonic())
    slow = [c for c in conns if c.sock]
    closed = sorted(c.closed - c.t0 for c in slow if c.closed is not None)
    out = {
        "opened": len(slow),
        "failed": sum(1 for c in conns if c.failed),
        "open_when_ready": open_when_ready,
        "closed": len(closed),
        "open_at_end": len(slow) - len(closed),
        "closed_after": [round(x, 2) for x in closed],
        "open_s": round(open_s, 2),
    }
    if a.keepalive:
        idle = [c for c in extra if c.kind == "idle"]
        out["idle_open_at_end"] = bool(idle and idle[0].sock and idle[0].closed is None)
        out["second_head_closed_after"] = (
            round(second[0].closed - second[0].mark, 2)
            if second and second[0].closed is not None else None)
    for c in live:
        if c.closed is None:
            c.sock.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
