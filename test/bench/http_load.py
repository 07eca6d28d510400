"""Loader for test/bench/bench_http.sh: creates an exact number of objects
on edge-apiserver (HTTPS) or keys in etcd (its v3 JSON gateway), over a
few keep-alive connections, within a time limit. Standard library only.

  http_load.py edge PORT TOKEN KIND PREFIX COUNT [CONNS] [DEADLINE_S]
  http_load.py etcd PORT KEYPREFIX COUNT [CONNS] [DEADLINE_S]
  http_load.py size KIND          (prints the size of one body, for the table)

KIND is nodegroup or iamrolebinding. Prints one line:
  LOADED ok=N bad=M secs=S [first errors]
and exits 1 if any create failed or the deadline passed.
"""
import base64
import http.client
import json
import ssl
import sys
import threading
import time

BODY_SIZE = 1024
PATHS = {
    "nodegroup": "/apis/scope.theriseunion.io/v1alpha1/nodegroups",
    "iamrolebinding": "/apis/iam.theriseunion.io/v1alpha1/iamrolebindings",
}


def body(kind, name, n, pad=None):
    """A ~1 KB object of KIND named NAME; an annotation pads it to size."""
    meta = {"name": name,
            "labels": {"app.kubernetes.io/part-of": "edge-bench",
                       "bench.theriseunion.io/tier": "standard"},
            "annotations": {"bench.theriseunion.io/note": pad or ""}}
    if kind == "nodegroup":
        obj = {"apiVersion": "scope.theriseunion.io/v1alpha1", "kind": "NodeGroup",
               "metadata": meta,
               "spec": {"displayName": "Node group %d" % n, "cluster": "host",
                        "nodes": ["edge-node-%d-%d" % (n, i) for i in range(4)]}}
    else:
        obj = {"apiVersion": "iam.theriseunion.io/v1alpha1", "kind": "IAMRoleBinding",
               "metadata": meta,
               "spec": {"roleRef": {"name": "viewer"},
                        "subjects": [{"kind": "User", "name": "user-%d" % n}],
                        "scope": {"level": "Workspace", "name": "ws-%d" % n}}}
    s = json.dumps(obj, separators=(",", ":"))
    if pad is None:  # first pass: measure, then pad to BODY_SIZE
        return body(kind, name, n, "x" * max(0, BODY_SIZE - len(s)))
    return s


def run(conns, count, deadline, connect, send):
    """Runs COUNT numbered sends over CONNS connections until DEADLINE s.
    SEND(conn, i) returns (success, status, body)."""
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "bad": 0, "errors": []}
    end = time.monotonic() + deadline

    def worker():
        conn = connect()
        while time.monotonic() < end:
            with lock:
                i = state["next"]
                if i >= count:
                    break
                state["next"] = i + 1
            try:
                good, status, text = send(conn, i)
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = connect()
                good, status, text = False, 0, repr(e)
            with lock:
                if good:
                    state["ok"] += 1
                else:
                    state["bad"] += 1
                    if len(state["errors"]) < 3:
                        state["errors"].append("[%d %s]" % (status, text[:160]))
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    print("LOADED ok=%d bad=%d secs=%.2f %s" % (state["ok"], state["bad"], secs,
                                                " ".join(state["errors"])))
    return 0 if state["ok"] == count else 1


def main(argv):
    if argv[1] == "size":
        print(len(body(argv[2], "name-000000", 100000)))
        return 0
    if argv[1] == "edge":
        port, token, kind, prefix, count = int(argv[2]), argv[3], argv[4], argv[5], int(argv[6])
        conns = int(argv[7]) if len(argv) > 7 else 8
        deadline = float(argv[8]) if len(argv) > 8 else 300
        ctx = ssl._create_unverified_context()  # self-signed serving cert
        headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

        def connect():
            return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)

        def send(conn, i):
            conn.request("POST", PATHS[kind], body(kind, "%s%06d" % (prefix, i), i), headers)
            r = conn.getresponse()
            data = r.read()
            return r.status == 201, r.status, data.decode(errors="replace")

        return run(conns, count, deadline, connect, send)
    if argv[1] == "etcd":
        port, keyprefix, count = int(argv[2]), argv[3], int(argv[4])
        conns = int(argv[5]) if len(argv) > 5 else 8
        deadline = float(argv[6]) if len(argv) > 6 else 300
        # Same-size values as the edge-apiserver nodegroups.
        value = base64.b64encode(body("nodegroup", "name-000000", 100000).encode()).decode()

        def connect():
            return http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def send(conn, i):
            key = base64.b64encode(("%s%06d" % (keyprefix, i)).encode()).decode()
            conn.request("POST", "/v3/kv/put", '{"key":"%s","value":"%s"}' % (key, value),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status == 200, r.status, r.read().decode(errors="replace")

        return run(conns, count, deadline, connect, send)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
