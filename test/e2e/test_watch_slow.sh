# A watcher that falls behind: a client that stops reading its watch while
# thousands of objects are written has its stream closed (the chunked
# response ends) with no ERROR event, as kube-apiserver's watch cache
# closes a watcher that cannot keep up; the writes never wait for it, the
# events it did get are in order with no gap, and a new watch from the
# last resourceVersion it saw brings the rest, as client-go's reflector
# does.
source "$(dirname "$0")/lib.sh"
# Only ADDED events are expected: the controllers' status writes are kept out.
start_server --controllers=*,-workspace,-nodegroup,-iamrole,-application,-applicationdeployment

cat > "$WORK/slow_watch.py" <<'PY'
import http.client, json, socket, ssl, sys, threading, time

port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
G = "/apis/scope.theriseunion.io/v1alpha1/workspaces"
AUTH = {"Authorization": "Bearer " + token}


def conn():
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)


def start_watch(rv, rcvbuf=None):
    raw = socket.socket()
    if rcvbuf:
        # A small window: what the server cannot send waits in its queue.
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(raw)
    s.sendall(("GET %s?watch=1&resourceVersion=%s&timeoutSeconds=120 HTTP/1.1\r\nHost: x\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (G, rv, token)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"chunked" in head.lower(), head
    return s, rest


class Chunks:
    """Reads a chunked body: events, and whether the terminating chunk came."""
    def __init__(self, s, buf):
        self.s, self.buf, self.ended, self.lines = s, buf, False, b""

    def more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed without the last chunk")
        self.buf += d

    def events(self, want=None, timeout=60):
        self.s.settimeout(timeout)
        out = []
        while not self.ended and (want is None or len(out) < want):
            while b"\r\n" not in self.buf:
                self.more()
            i = self.buf.index(b"\r\n")
            size = int(self.buf[:i].split(b";")[0], 16)
            while len(self.buf) < i + 2 + size + 2:
                self.more()
            data, self.buf = self.buf[i + 2:i + 2 + size], self.buf[i + 2 + size + 2:]
            if size == 0:
                self.ended = True
                break
            self.lines += data
            while b"\n" in self.lines:
                line, self.lines = self.lines.split(b"\n", 1)
                if line.strip():
                    out.append(json.loads(line))
        return out


c = conn()
c.request("GET", G, headers=AUTH)
rv0 = json.loads(c.getresponse().read())["metadata"]["resourceVersion"]
s, rest = start_watch(rv0, rcvbuf=4096)

# Write n objects of 8 KB from 8 connections while the watcher reads nothing.
pad = "x" * 8000
errors = []
def writer(k):
    c = conn()
    for i in range(k, n, 8):
        body = json.dumps({"apiVersion": "scope.theriseunion.io/v1alpha1", "kind": "Workspace",
                           "metadata": {"name": "w%05d" % i, "annotations": {"pad": pad}},
                           "spec": {"manager": "m"}})
        c.request("POST", G, body=body, headers=dict(AUTH, **{"Content-Type": "application/json"}))
        r = c.getresponse()
        r.read()
        if r.status != 201:
            errors.append(r.status)
t0 = time.time()
th = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
for t in th:
    t.start()
for t in th:
    t.join()
assert not errors, errors
print("%d writes in %.1f s with a stalled watcher" % (n, time.time() - t0))

# Now read: what was queued, then the end of the stream.
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
ch = Chunks(s, rest)
evs = ch.events()
assert ch.ended, "the stream did not end"
types = sorted(set(e["type"] for e in evs))
assert types == ["ADDED"], "events other than ADDED (an ERROR?): %s" % types
names = [e["object"]["metadata"]["name"] for e in evs]
rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs), "out of order"
assert rvs[0] == int(rv0) + 1 and rvs[-1] - rvs[0] == len(rvs) - 1, "a gap in the events"
assert len(evs) < n, "the watcher never fell behind (%d events)" % len(evs)
print("the stalled watch got %d of %d events, then its stream ended with no ERROR event"
      % (len(evs), n))

# A new watch from the last resourceVersion seen brings the rest.
s2, rest2 = start_watch(rvs[-1])
ch2 = Chunks(s2, rest2)
more = ch2.events(want=n - len(evs))
got = rvs + [int(e["object"]["metadata"]["resourceVersion"]) for e in more]
assert [e["type"] for e in more] == ["ADDED"] * len(more), "rewatch types"
assert got == list(range(int(rv0) + 1, int(rv0) + 1 + n)), "the rewatch missed or repeated events"
print("rewatching from %d brought the other %d" % (rvs[-1], len(more)))
PY

python3 "$WORK/slow_watch.py" "$PORT" "$ADMIN_TOKEN" 2500 || die "slow watcher"
n=$(curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$PORT/metrics" |
  awk '$1 == "edge_storage_watchers_overflowed_total" {print $2}')
[ "$n" = 1 ] || die "edge_storage_watchers_overflowed_total is '$n', want 1"
echo ok
