# Strict input, as kube-apiserver: what it refuses is refused here with
# the same code and a Status, and nothing is changed by it.
#   - a patch or PUT that removes metadata or the name: 400 kube's checkName
#     message, labels, annotations and spec untouched (merge null, JSON
#     patch remove, strategic $patch replace and $patch delete);
#   - bodies that are neither JSON nor YAML: 415 with the accepted types;
#   - metadata.resourceVersion on create: 400, nothing created;
#   - integers read as Go's ParseInt (limit, timeoutSeconds) and
#     resourceVersion as ParseUint: out of range or unreadable is a 400;
#   - booleans as kube converts them: ?watch, ?watch= and ?watch=yes watch;
#     ?watch=0 and ?watch=false list;
#   - timeoutSeconds=-5 ends a watch at once;
#   - bad dryRun, fieldValidation and DeleteOptions: kube's 422 Invalid on
#     CreateOptions/DeleteOptions, or 400 for a field of the wrong type;
#   - request heads up to 256 KiB (--max-request-header-bytes) are served;
#     over it a 431 (headers) or 414 (URI) Status, past the connection's
#     buffer libmicrohttpd's own 431.
source "$(dirname "$0")/lib.sh"
set +o pipefail
start_server

S=https://127.0.0.1:$PORT
G=$S/apis/scope.theriseunion.io/v1alpha1
JSON='Content-Type: application/json'
AUTH=(-H "Authorization: Bearer $ADMIN_TOKEN")

WS='{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"name":"keep","labels":{"team":"red"},"annotations":{"note":"n"}},"spec":{"manager":"alice","namespaces":[{"name":"shop"}]}}'
req POST "$G/workspaces" -H "$JSON" -d "$WS"
[ "$CODE" = 201 ] || die "create: $(shown)"
req GET "$G/workspaces/keep"
cp "$WORK/body" "$WORK/before.json"
unchanged() { # unchanged WHAT: the workspace is byte for byte what it was
  req GET "$G/workspaces/keep"
  cmp -s "$WORK/body" "$WORK/before.json" || fail "$1 changed the object: $(cat "$WORK/body")"
}

###########################################################################
# Patches and PUTs that would remove the name.
NAMELESS="'the name of the object (keep based on URL) was undeterminable: name must be provided' == o['message']"
for p in 'application/merge-patch+json|{"metadata":null}' \
         'application/merge-patch+json|{"metadata":{"name":null}}' \
         'application/json-patch+json|[{"op":"remove","path":"/metadata"}]' \
         'application/json-patch+json|[{"op":"remove","path":"/metadata/name"}]' \
         'application/strategic-merge-patch+json|{"$patch":"replace"}' \
         'application/strategic-merge-patch+json|{"metadata":{"$patch":"delete"}}'; do
  req PATCH "$G/workspaces/keep" -H "Content-Type: ${p%%|*}" -d "${p#*|}"
  status "patch ${p#*|}" 400 BadRequest "$NAMELESS"
  unchanged "patch ${p#*|}"
done
req PUT "$G/workspaces/keep" -H "$JSON" -d '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"labels":{}},"spec":{"manager":"bob"}}'
status "PUT without a name" 400 BadRequest "$NAMELESS"
unchanged "PUT without a name"
req PUT "$G/workspaces/keep/status" -H "$JSON" -d '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{},"status":{}}'
status "PUT /status without a name" 400 BadRequest "$NAMELESS"
req PATCH "$G/workspaces/keep" -H "Content-Type: application/merge-patch+json" -d '{"metadata":{"name":"other"}}'
status "patch renaming" 400 BadRequest "o['message'] == 'the name of the object (other) does not match the name on the URL (keep)'"
unchanged "patch renaming"
# A patch that keeps the name still works.
req PATCH "$G/workspaces/keep" -H "Content-Type: application/merge-patch+json" -d '{"metadata":{"labels":{"extra":"1"}}}'
[ "$CODE" = 200 ] || fail "a plain merge patch: $(shown)"
req PATCH "$G/workspaces/keep" -H "Content-Type: application/json-patch+json" -d '[{"op":"remove","path":"/metadata/labels/extra"}]'
[ "$CODE" = 200 ] || fail "a plain JSON patch: $(shown)"
req GET "$G/workspaces/keep"
cp "$WORK/body" "$WORK/before.json"

###########################################################################
# Body media types.
TYPES="o['message'] == 'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml'"
for ct in text/plain application/xml application/x-www-form-urlencoded application/jsonx; do
  req POST "$G/workspaces" -H "Content-Type: $ct" -d '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"name":"by-'"${ct#*/}"'"},"spec":{"manager":"m"}}'
  status "POST as $ct" 415 UnsupportedMediaType "$TYPES"
  req PUT "$G/workspaces/keep" -H "Content-Type: $ct" -d "$WS"
  status "PUT as $ct" 415 UnsupportedMediaType "$TYPES"
  req DELETE "$G/workspaces/keep" -H "Content-Type: $ct" -d '{}'
  status "DELETE with a body as $ct" 415 UnsupportedMediaType "$TYPES"
done
unchanged "bodies of other types"
req GET "$G/workspaces"
python3 -c 'import json,sys; n=[i["metadata"]["name"] for i in json.load(open(sys.argv[1]))["items"]]; assert n == ["keep"], n' "$WORK/body" ||
  fail "a body of another type created something: $(shown)"
# JSON with a charset, and YAML, are bodies.
req POST "$G/workspaces?dryRun=All" -H "Content-Type: application/json; charset=utf-8" -d '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"name":"cs"},"spec":{"manager":"m"}}'
[ "$CODE" = 201 ] || fail "JSON with a charset: $(shown)"
req POST "$G/workspaces?dryRun=All" -H "Content-Type: application/yaml" --data-binary $'apiVersion: scope.theriseunion.io/v1alpha1\nkind: Workspace\nmetadata: {name: y}\nspec: {manager: m}\n'
[ "$CODE" = 201 ] || fail "YAML: $(shown)"

###########################################################################
# resourceVersion on create.
req POST "$G/workspaces" -H "$JSON" -d '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"name":"rv","resourceVersion":"7"},"spec":{"manager":"m"}}'
status "resourceVersion on create" 400 BadRequest "o['message'] == 'resourceVersion should not be set on objects to be created'"
req GET "$G/workspaces/rv"
[ "$CODE" = 404 ] || fail "the create with a resourceVersion stored it: $(shown)"

###########################################################################
# Integers and resource versions.
for q in limit=99999999999999999999 limit=abc limit=1e3 limit=+-1 timeoutSeconds=abc \
         timeoutSeconds=99999999999999999999; do
  req GET "$G/workspaces?$q"
  status "list ?$q" 400 BadRequest "o['message'].startswith('strconv.ParseInt: parsing ')"
  req GET "$G/workspaces?watch=1&$q"
  status "watch ?$q" 400 BadRequest "o['message'].startswith('strconv.ParseInt: parsing ')"
done
for rv in 99999999999999999999 18446744073709551616 -1 0x10 abc 1.5; do
  req GET "$G/workspaces?resourceVersion=$rv"
  status "list ?resourceVersion=$rv" 400 BadRequest "o['message'] == 'invalid resource version \"$rv\"'"
  req GET "$G/workspaces?watch=1&resourceVersion=$rv"
  status "watch ?resourceVersion=$rv" 400 BadRequest "o['message'] == 'invalid resource version \"$rv\"'"
done
# A negative or zero limit lists everything, as kube's.
req GET "$G/workspaces?limit=-3"
[ "$CODE" = 200 ] && grep -q '"name":"keep"' "$WORK/body" || fail "limit=-3: $(shown)"

###########################################################################
# Booleans.
for w in watch 'watch=' watch=yes watch=true watch=1 watch=TRUE; do
  out=$(timeout 10 curl -sk "${AUTH[@]}" "$G/workspaces?$w&timeoutSeconds=1")
  echo "$out" | head -1 | grep -q '^{"type":"ADDED"' || fail "?$w is not a watch: $(echo "$out" | head -c 200)"
done
for w in watch=0 watch=false watch=False; do
  out=$(timeout 10 curl -sk "${AUTH[@]}" "$G/workspaces?$w&timeoutSeconds=1")
  echo "$out" | grep -q '"kind":"WorkspaceList"' || fail "?$w is not a list: $(echo "$out" | head -c 200)"
done

###########################################################################
# A negative timeout ends the watch at once.
t0=$(date +%s.%N)
out=$(timeout 10 curl -sk "${AUTH[@]}" -w '\n%{http_code}' "$G/workspaces?watch=1&resourceVersion=1&timeoutSeconds=-5")
took=$(python3 -c "import time; print(time.time() - $t0)")
[ "$(echo "$out" | tail -1)" = 200 ] || fail "timeoutSeconds=-5: $out"
python3 -c "import sys; sys.exit(0 if $took < 3 else 1)" || fail "timeoutSeconds=-5 kept the watch open for ${took}s"

###########################################################################
# Options.
req POST "$G/workspaces?dryRun=Maybe" -H "$JSON" -d "$WS"
status "dryRun=Maybe" 422 Invalid "o['details'] == {'group': 'meta.k8s.io', 'kind': 'CreateOptions', 'causes': [{'reason': 'FieldValueNotSupported', 'field': 'dryRun', 'message': 'Unsupported value: []string{\"Maybe\"}: supported values: \"All\"'}]}"
req PUT "$G/workspaces/keep?dryRun=Maybe" -H "$JSON" -d "$WS"
status "PUT dryRun=Maybe" 422 Invalid "o['details']['kind'] == 'UpdateOptions'"
req PATCH "$G/workspaces/keep?fieldValidation=strict" -H "Content-Type: application/merge-patch+json" -d '{}'
status "PATCH fieldValidation=strict" 422 Invalid "o['details']['kind'] == 'PatchOptions'"
req DELETE "$G/workspaces/keep?dryRun=Maybe"
status "DELETE dryRun=Maybe" 422 Invalid "o['details']['kind'] == 'DeleteOptions'"
req DELETE "$G/workspaces/keep" -H "$JSON" -d '{"dryRun":["Maybe"]}'
status "DeleteOptions dryRun Maybe" 422 Invalid "o['details']['kind'] == 'DeleteOptions'"
req DELETE "$G/workspaces/keep" -H "$JSON" -d '{"propagationPolicy":"Sometimes"}'
status "propagationPolicy" 422 Invalid "o['details']['causes'][0]['field'] == 'propagationPolicy'"
for body in '{"gracePeriodSeconds":"5"}|number|string|gracePeriodSeconds|int64' \
            '{"preconditions":"x"}|object|string|preconditions|v1.Preconditions' \
            '{"preconditions":{"uid":5}}|string|number|preconditions.uid|types.UID' \
            '{"dryRun":"All"}|array|string|dryRun|[]string' \
            '{"orphanDependents":"yes"}|bool|string|orphanDependents|bool'; do
  IFS='|' read -r b _ jt field gotype <<<"$body"
  req DELETE "$G/workspaces/keep" -H "$JSON" -d "$b"
  status "DeleteOptions $b" 400 BadRequest "o['message'] == 'json: cannot unmarshal $jt into Go struct field DeleteOptions.$field of type $gotype'"
done
req DELETE "$G/workspaces/keep" -H "$JSON" -d '[1]'
status "DeleteOptions not an object" 400 BadRequest
unchanged "bad options"
# DeleteOptions' dryRun in the body is honoured.
req DELETE "$G/workspaces/keep" -H "$JSON" -d '{"dryRun":["All"]}'
[ "$CODE" = 200 ] || fail "DeleteOptions dryRun All: $(shown)"
unchanged "a dry-run delete"

###########################################################################
# Request heads.
cat > "$WORK/heads.py" <<'PY'
import json, re, socket, ssl, sys
port, token, limit = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
path = "/apis/scope.theriseunion.io/v1alpha1/workspaces/keep"

def send(path, extra):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20))
    head = ("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n" % (path, token)).encode()
    head += extra + b"\r\n"
    try:
        s.sendall(head)
    except OSError:
        pass
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
            h, sep, body = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: *(\d+)", h)
            if sep and m and len(body) >= int(m.group(1)):
                break
    except OSError:
        pass
    h, _, body = data.partition(b"\r\n\r\n")
    code = int(h.split(b" ")[1]) if h.startswith(b"HTTP/1.1 ") else 0
    return code, body

def big(n):
    return b"X-Big: " + b"a" * n + b"\r\n"

# Just under the limit is served, in one header or in many.
code, body = send(path, big(limit - 1024))
assert code == 200 and json.loads(body)["metadata"]["name"] == "keep", (code, body[:200])
n = (limit - 2048) // 2010
code, body = send(path, b"".join(b"X-H%04d: %s\r\n" % (i, b"v" * 2000) for i in range(n)))
assert code == 200, ("%d headers of 2 KB" % n, code, body[:200])
over = limit + limit // 20
for what, p, extra, want, reason in [
        ("headers just over the limit", path, big(over), 431, "RequestHeaderFieldsTooLarge"),
        ("a URI just over the limit", path + "?x=" + "a" * over, b"", 414, "RequestURITooLong")]:
    code, body = send(p, extra)
    o = json.loads(body)
    assert code == want and o["kind"] == "Status" and o["code"] == want and \
        o["reason"] == reason and "limit is %d bytes" % limit in o["message"], (what, code, body[:300])
# Past the connection's buffer: libmicrohttpd's own refusal, still a 431.
code, body = send(path, big(2 * limit))
assert code == 431, ("twice the limit", code, body[:200])
print("heads: ok")
PY
python3 "$WORK/heads.py" "$PORT" "$ADMIN_TOKEN" 262144 > "$WORK/heads.out" 2>&1 ||
  fail "request heads, default limit: $(tail -3 "$WORK/heads.out")"
curl -sfk "$S/healthz" >/dev/null || fail "the server is not healthy after the bad input"
kill -0 "$SERVER_PID" || die "the server died"
unchanged "everything above"

# --max-request-header-bytes moves the limit either way, within bounds.
for lim in 16384 1048576; do
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  start_server --max-request-header-bytes "$lim"
  python3 "$WORK/heads.py" "$PORT" "$ADMIN_TOKEN" "$lim" > "$WORK/heads.out" 2>&1 ||
    fail "request heads, limit $lim: $(tail -3 "$WORK/heads.out")"
done
for lim in 100 2000000 abc; do
  set +e
  timeout 10 "$BIN" --max-request-header-bytes "$lim" --data-dir "$WORK/x" --cert-dir "$WORK/certs" \
    > "$WORK/flag.out" 2>&1
  rc=$?
  set -e
  [ "$rc" = 2 ] && grep -q "max-request-header-bytes" "$WORK/flag.out" ||
    fail "--max-request-header-bytes $lim: exit $rc: $(cat "$WORK/flag.out")"
done

[ "$FAILS" -eq 0 ] || die "$FAILS check(s) failed"
echo ok
