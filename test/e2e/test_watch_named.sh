# A watch of one object (GET .../workspaces/NAME?watch=1) is the
# collection's watch filtered by that name, and the name is a value, never
# selector text: a name holding ',' '=' '!' or '\' (none can be created,
# but a URL can name one) matches only an object of exactly that name, so
# it delivers nothing, with or without a fieldSelector beside it, as
# kube-apiserver's fields.OneTermEqualSelector escapes it. A plain name
# still gets its object's events.
# Every check runs; the failures are listed at the end.
source "$(dirname "$0")/lib.sh"
set +o pipefail
start_server

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
G=https://127.0.0.1:$PORT/apis/scope.theriseunion.io/v1alpha1
auth=(-H "Authorization: Bearer $ADMIN_TOKEN")

for n in a b; do
  code=$(curl -sk "${auth[@]}" -X POST -H 'Content-Type: application/json' -o /dev/null -w '%{http_code}' \
    -d "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\",\"kind\":\"Workspace\",\"metadata\":{\"name\":\"$n\"},\"spec\":{\"manager\":\"m\"}}" \
    "$G/workspaces")
  [ "$code" = 201 ] || die "create workspace $n: HTTP $code"
done

# watch PATH-AND-QUERY: a watch from resourceVersion 0 (a synthetic ADDED
# for every object it matches) that ends after a second; prints the HTTP
# status, then "TYPE name" per event.
watch() {
  local code
  code=$(timeout 10 curl -sNk "${auth[@]}" -o "$WORK/w" -w '%{http_code}' \
    "$G/workspaces/$1&resourceVersion=0&timeoutSeconds=1") || true
  echo "$code"
  python3 - "$WORK/w" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.strip():
        e = json.loads(line)
        if "type" in e:
            print(e["type"], e["object"].get("metadata", {}).get("name"))
        else:
            print(e.get("kind"), e.get("code"), e.get("message"))
PY
}

# The plain name: its object, and only it.
got=$(watch "b?watch=1")
[ "$got" = "200
ADDED b" ] || fail "watch of b: $got"
got=$(watch "b?watch=true&fieldSelector=metadata.name%3Db")
[ "$got" = "200
ADDED b" ] || fail "watch of b with fieldSelector metadata.name=b: $got"

# Names that read as selector text if pasted in unescaped. Each is one
# name that no object has: 200 and no event.
for name in 'a,metadata.name=b' 'b,metadata.name!=a' 'b,metadata.name!=zz' \
            'b,metadata.namespace=' 'b\' 'b\,x' 'b=' 'b\=b'; do
  enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$name")
  got=$(watch "$enc?watch=1")
  [ "$got" = 200 ] || fail "watch of the name '$name' (want 200 and no event): $got"
  # Beside a fieldSelector that object b matches.
  got=$(watch "$enc?watch=1&fieldSelector=metadata.name%21%3Da")
  [ "$got" = 200 ] || fail "watch of the name '$name' with fieldSelector metadata.name!=a (want 200 and no event): $got"
done

[ "$FAILS" -eq 0 ] || die "$FAILS check(s) failed"
echo "named watch ok"
