#!/usr/bin/env python3
"""A stand-in for a member cluster's kube-apiserver, on loopback, for the
ApplicationDeployment tests: /version for anyone, everything else only with
the bearer token; server-side apply (PATCH with application/apply-patch+yaml
and a fieldManager) of Namespaces, Deployments and Services, GET and DELETE
of them, and a GET of a collection (with a labelSelector of k=v terms). A Deployment reports every replica ready, as a healthy cluster's
would. Each request is logged as a JSON line for the test to read.

    fake_member.py PORT TOKEN LOG
"""
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, TOKEN, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
objects = {}
lock = threading.Lock()


def log(entry):
    with lock, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized(self):
        if self.headers.get("Authorization") == "Bearer " + TOKEN:
            return True
        self.send(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
        return False

    def route(self):
        url = urllib.parse.urlparse(self.path)
        return url.path, urllib.parse.parse_qs(url.query)

    def do_GET(self):
        path, query = self.route()
        if path == "/version":
            return self.send(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.2-member"})
        if not self.authorized():
            return
        if path == "/apis":
            return self.send(200, {"kind": "APIGroupList", "groups": []})
        with lock:
            obj = objects.get(path)
            if obj is None and path.count("/") in (5, 6) and path.split("/")[-1] in ("deployments", "services"):
                want = dict(t.split("=", 1) for t in query.get("labelSelector", [""])[0].split(",") if "=" in t)
                items = [o for k, o in objects.items() if k.startswith(path + "/")
                         and all(o.get("metadata", {}).get("labels", {}).get(a) == b for a, b in want.items())]
                obj = {"kind": "List", "items": items}
        log({"method": "GET", "path": path})
        if obj is None:
            return self.send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
        self.send(200, obj)

    def do_PATCH(self):
        path, query = self.route()
        if not self.authorized():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        ctype = self.headers.get("Content-Type")
        log({"method": "PATCH", "path": path, "contentType": ctype,
             "fieldManager": query.get("fieldManager", [""])[0],
             "force": query.get("force", [""])[0], "body": body})
        if ctype != "application/apply-patch+yaml" or "fieldManager" not in query:
            return self.send(415, {"kind": "Status", "code": 415})
        if body.get("kind") == "Deployment":
            body["status"] = {"replicas": body["spec"].get("replicas", 1),
                              "readyReplicas": body["spec"].get("replicas", 1)}
        with lock:
            objects[path] = body
        self.send(200, body)

    def do_DELETE(self):
        path, _ = self.route()
        if not self.authorized():
            return
        with lock:
            gone = objects.pop(path, None)
        log({"method": "DELETE", "path": path, "found": gone is not None})
        self.send(200 if gone else 404, {"kind": "Status", "code": 200 if gone else 404})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
