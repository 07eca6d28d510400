# Raw HTTP semantics a Kubernetes client relies on: every error is a
# metav1.Status with the right code, reason and details; health and
# version endpoints answer without credentials; discovery (aggregated v2
# and v2beta1, APIGroupList, APIGroup, APIResourceList with status
# subresources); OpenAPI v2 and v3 with group-version-kind extensions;
# Table output and includeObject; list paging over a consistent snapshot;
# resourceVersionMatch=Exact; dryRun; fieldValidation; deletecollection
# with a label selector; delete preconditions; the default field manager.
# Every check runs; the failures are listed at the end.
source "$(dirname "$0")/lib.sh"
# A pipeline's status is its last command's: "cmd | grep -q" must not
# fail because grep stopped reading early.
set +o pipefail
start_server

S=https://127.0.0.1:$PORT
G=$S/apis/scope.theriseunion.io/v1alpha1
IAM=$S/apis/iam.theriseunion.io/v1alpha1
APP=$S/apis/app.theriseunion.io/v1alpha1
TABLE='Accept: application/json;as=Table;v=v1;g=meta.k8s.io'
JSON='Content-Type: application/json'
AUTH=(-H "Authorization: Bearer $ADMIN_TOKEN")

obj() { # obj KIND NAME [SPEC-JSON] [LABELS-JSON]
  local spec=${3:-} labels=${4:-}
  printf '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"%s","metadata":{"name":"%s","labels":%s},"spec":%s}' \
    "$1" "$2" "${labels:-"{}"}" "${spec:-"{}"}"
}
create() { req POST "$G/$1" -H "$JSON" -d "$2"; [ "$CODE" = 201 ] || fail "create in $1: $(shown)"; }

create workspaces "$(obj Workspace ws1 '{"manager":"alice"}')"

###########################################################################
# Errors.
req GET "$G/workspaces/nope"
status "GET a missing object" 404 NotFound "o['details'] == {'name': 'nope', 'group': 'scope.theriseunion.io', 'kind': 'workspaces'} \
  and o['message'] == 'workspaces.scope.theriseunion.io \"nope\" not found'"
req GET "$APP/namespaces/shop/applicationdeployments/nope"
status "GET a missing namespaced object" 404 NotFound "o['details']['name'] == 'nope' and o['details']['kind'] == 'applicationdeployments'"
req GET "$G/nosuchresources"
status "GET an unknown resource" 404 NotFound
# Bytes that are not UTF-8 in a name (the path is percent-decoded) come
# back as U+FFFD, as kube-apiserver writes them; never a 500.
req GET "$G/workspaces/a%FFb"
status "GET a name that is not UTF-8" 404 NotFound "o['details']['name'] == 'a\\ufffdb'"
# A name too long and invalid, quoted in a message cut to fit: the cut falls
# on a character boundary, whichever byte it lands on.
for pre in y yz; do
  long=$(python3 -c 'import json, sys; print(json.dumps({"apiVersion": "scope.theriseunion.io/v1alpha1",
    "kind": "Workspace", "metadata": {"name": sys.argv[1] + "\u00e9" * 700}, "spec": {}}))' "$pre")
  req POST "$G/workspaces" -H "$JSON" -d "$long"
  status "create with a long non-ASCII name ($pre)" 422 Invalid "o['details']['causes'][0]['field'] == 'metadata.name'"
done
req GET "$S/apis/nosuch.example.com/v1/things"
status "GET an unknown group" 404 NotFound

req POST "$G/workspaces" -H "$JSON" -d "$(obj Workspace ws1)"
status "create a duplicate" 409 AlreadyExists "o['details'].get('name') == 'ws1' and o['details']['group'] == 'scope.theriseunion.io' \
  and o['details']['kind'] == 'workspaces' and o['message'] == 'workspaces.scope.theriseunion.io \"ws1\" already exists'"

req GET "$G/workspaces/ws1"
stale=$(python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); print(o["metadata"]["resourceVersion"])' "$WORK/body")
req PATCH "$G/workspaces/ws1" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"manager":"bob"}}'
[ "$CODE" = 200 ] || fail "merge patch: $(shown)"
req PUT "$G/workspaces/ws1" -H "$JSON" -d "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\",\"kind\":\"Workspace\",\"metadata\":{\"name\":\"ws1\",\"resourceVersion\":\"$stale\"},\"spec\":{\"manager\":\"carol\"}}"
status "PUT with a stale resourceVersion" 409 Conflict "'the object has been modified' in o['message'] and o['details']['name'] == 'ws1'"
req GET "$G/workspaces/ws1"
check_json "a conflicting PUT changed nothing" "o['spec']['manager'] == 'bob'"

req POST "$G/clusters" -H "$JSON" -d "$(obj Cluster c1 '{"type":"spaceship"}')"
status "an invalid enum" 422 Invalid "any(c['field'] == 'spec.type' and c['reason'] == 'FieldValueNotSupported' for c in o['details']['causes']) \
  and o['message'].startswith('Cluster.scope.theriseunion.io \"c1\" is invalid')"
req POST "$G/workspaces" -H "$JSON" -d "$(obj Workspace Bad_Name)"
status "an invalid name" 422 Invalid "any(c['field'] == 'metadata.name' for c in o['details']['causes'])"

req POST "$G/workspaces" -H "$JSON" -d '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":'
status "malformed JSON" 400 BadRequest
req POST "$G/workspaces" -H "$JSON" -d '{"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"IAMRole","metadata":{"name":"wrongkind"}}'
status "a body of another kind" 400 BadRequest

req PATCH "$G/workspaces/ws1" -H 'Content-Type: text/plain' -d '{"spec":{}}'
status "PATCH with an unknown content type" 415 UnsupportedMediaType
req PATCH "$G/workspaces/ws1?force=true" -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"labels":{"forced":"yes"}}}'
status "force on a non-apply patch" 422 Invalid

req POST "$G/workspaces/ws1" -H "$JSON" -d "$(obj Workspace ws1)"
status "POST on a named object" 405 MethodNotAllowed
req PUT "$G/workspaces" -H "$JSON" -d "$(obj Workspace ws1)"
status "PUT on a collection" 405 MethodNotAllowed
req GET "$IAM/accessreviews"
status "list of a create-only kind (AccessReview)" 405 MethodNotAllowed

python3 -c 'import json; print(json.dumps({"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"name":"big","annotations":{"x":"a"*(3*1024*1024+16)}}}))' > "$WORK/big.json"
req POST "$G/workspaces" -H "$JSON" --data-binary @"$WORK/big.json"
status "a body over 3 MiB" 413 RequestEntityTooLarge
req GET "$G/workspaces/big"
[ "$CODE" = 404 ] || fail "the oversized object was stored: $CODE"

AUTH=(-H "Authorization: Bearer not-a-token")
req GET "$G/workspaces"
status "a bad token" 401 Unauthorized
AUTH=(-H "Authorization: Bearer alice-token")
req POST "$G/workspaces" -H "$JSON" -d "$(obj Workspace alices)"
status "alice creating" 403 Forbidden "o['details']['group'] == 'scope.theriseunion.io' and o['details']['kind'] == 'workspaces' \
  and o['message'].startswith('workspaces.scope.theriseunion.io is forbidden: User \"alice\" cannot create resource \"workspaces\" in API group \"scope.theriseunion.io\" at the cluster scope')"
req DELETE "$G/workspaces/ws1"
status "alice deleting" 403 Forbidden "o['details']['name'] == 'ws1' \
  and o['message'].startswith('workspaces.scope.theriseunion.io \"ws1\" is forbidden: User \"alice\" cannot delete resource \"workspaces\"')"
req PUT "$APP/namespaces/shop/applicationdeployments/x" -H "$JSON" -d '{}'
status "alice updating in a namespace" 403 Forbidden "'in the namespace \"shop\"' in o['message']"
AUTH=(-H "Authorization: Bearer $ADMIN_TOKEN")
req GET "$G/workspaces/alices"
[ "$CODE" = 404 ] || fail "alice's forbidden create was stored: $CODE"
req GET "$G/workspaces/ws1"
[ "$CODE" = 200 ] || fail "alice's forbidden delete removed ws1: $CODE"

###########################################################################
# Health and version, without credentials.
AUTH=()
for p in healthz livez readyz; do
  req GET "$S/$p"
  [ "$CODE" = 200 ] && [ "$(cat "$WORK/body")" = ok ] || fail "/$p without credentials: $(shown)"
done
req GET "$S/version"
check_json "/version without credentials" "code == 200 and o['major'] == '1' and o['gitVersion'].startswith('v') and 'platform' in o"
AUTH=(-H "Authorization: Bearer $ADMIN_TOKEN")

###########################################################################
# Discovery.
GROUPS4="['app.theriseunion.io', 'ext.theriseunion.io', 'iam.theriseunion.io', 'scope.theriseunion.io']"
for dv in v2 v2beta1; do
  acc="application/json;g=apidiscovery.k8s.io;v=$dv;as=APIGroupDiscoveryList"
  req GET "$S/apis" -H "Accept: $acc"
  [ "$CODE" = 200 ] && [ "$(header Content-Type)" = "$acc" ] || fail "/apis for $dv: Content-Type '$(header Content-Type)', $(shown)"
  check_json "/apis as APIGroupDiscoveryList $dv" "o['kind'] == 'APIGroupDiscoveryList' and o['apiVersion'] == 'apidiscovery.k8s.io/$dv' \
    and sorted(g['metadata']['name'] for g in o['items']) == $GROUPS4 \
    and all(g['versions'][0]['version'] == 'v1alpha1' for g in o['items']) \
    and all(r['responseKind']['kind'] and r['scope'] in ('Cluster', 'Namespaced') and r['verbs'] \
            for g in o['items'] for r in g['versions'][0]['resources']) \
    and sum(len(g['versions'][0]['resources']) for g in o['items']) == 12 \
    and any(s['subresource'] == 'status' for g in o['items'] for r in g['versions'][0]['resources'] \
            if r['resource'] == 'workspaces' for s in r.get('subresources', []))"
done
# What kubectl 1.27 and 1.33 send: the first format they accept wins.
req GET "$S/apis" -H 'Accept: application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json'
[ "$(header Content-Type)" = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList" ] || fail "kubectl 1.27 discovery Accept: $(header Content-Type)"
req GET "$S/apis" -H 'Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json'
[ "$(header Content-Type)" = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" ] || fail "kubectl 1.33 discovery Accept: $(header Content-Type)"
req GET "$S/apis"
check_json "/apis as APIGroupList" "o['kind'] == 'APIGroupList' and sorted(g['name'] for g in o['groups']) == $GROUPS4 \
  and all(g['preferredVersion']['groupVersion'] == g['name'] + '/v1alpha1' for g in o['groups'])"
req GET "$S/apis" -H 'Accept: application/vnd.kubernetes.protobuf'
status "/apis in a format the server cannot produce" 406 NotAcceptable
req GET "$S/apis/iam.theriseunion.io"
check_json "/apis/<group>" "o['kind'] == 'APIGroup' and o['name'] == 'iam.theriseunion.io' and o['preferredVersion']['version'] == 'v1alpha1'"

# APIResourceList per group: required keys, and a status entry for each
# kind with a status, scoped like its parent.
for g in iam scope app ext; do
  req GET "$S/apis/$g.theriseunion.io/v1alpha1"
  check_json "/apis/$g.theriseunion.io/v1alpha1" "
code == 200 and ctype.startswith('application/json') and o['kind'] == 'APIResourceList' and o['groupVersion'] == '$g.theriseunion.io/v1alpha1'
and all(all(k in r for k in ('name', 'singularName', 'namespaced', 'kind', 'verbs')) and r['kind'] for r in o['resources'])
and all(sorted(r['verbs']) == ['get', 'patch', 'update'] and r['namespaced'] == {x['name']: x for x in o['resources']}[r['name'].split('/')[0]]['namespaced']
        for r in o['resources'] if r['name'].endswith('/status'))
and all(r['singularName'] for r in o['resources'] if '/' not in r['name'])"
done
want_status="{'iam': ['iamrolebindings/status', 'iamroles/status'], 'scope': ['clusters/status', 'nodegroups/status', 'workspaces/status'], \
 'app': ['applicationdeployments/status', 'applications/status', 'applicationversions/status'], 'ext': ['components/status']}"
for g in iam scope app ext; do
  req GET "$S/apis/$g.theriseunion.io/v1alpha1"
  check_json "status subresources of $g" "sorted(r['name'] for r in o['resources'] if '/' in r['name']) == ($want_status)['$g']"
done
req GET "$IAM"
check_json "AccessReview and PermissionReview are create-only" \
  "all(r['verbs'] == ['create'] for r in o['resources'] if r['name'] in ('accessreviews', 'permissionreviews'))"

###########################################################################
# OpenAPI.
req GET "$S/openapi/v2" -H 'Accept: application/json'
check_json "/openapi/v2" "code == 200 and ctype.startswith('application/json') and o['swagger'] == '2.0' and \
  {(x['group'], x['kind']) for d in o['definitions'].values() for x in d.get('x-kubernetes-group-version-kind', []) if x['version'] == 'v1alpha1'} >= \
  {('iam.theriseunion.io', 'RoleTemplate'), ('iam.theriseunion.io', 'IAMRole'), ('iam.theriseunion.io', 'IAMRoleBinding'), \
   ('iam.theriseunion.io', 'AccessReview'), ('iam.theriseunion.io', 'PermissionReview'), ('scope.theriseunion.io', 'Cluster'), \
   ('scope.theriseunion.io', 'Workspace'), ('scope.theriseunion.io', 'NodeGroup'), ('app.theriseunion.io', 'Application'), \
   ('app.theriseunion.io', 'ApplicationVersion'), ('app.theriseunion.io', 'ApplicationDeployment'), ('ext.theriseunion.io', 'Component')}"
# The protobuf form kubectl 1.27/1.28 ask for, or 406 when not served.
req GET "$S/openapi/v2" -H 'Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf'
case "$CODE $(header Content-Type)" in
  "200 application/com.github.proto-openapi.spec.v2.v1.0+protobuf"*|"200 application/com.github.proto-openapi.spec.v2@v1.0+protobuf"*|"406 "*) ;;
  *) fail "/openapi/v2 for a protobuf-only Accept: $CODE $(header Content-Type)";;
esac
req GET "$S/openapi/v3"
check_json "/openapi/v3" "sorted(o['paths']) == ['apis/app.theriseunion.io/v1alpha1', 'apis/ext.theriseunion.io/v1alpha1', \
  'apis/iam.theriseunion.io/v1alpha1', 'apis/scope.theriseunion.io/v1alpha1'] \
  and all(p['serverRelativeURL'].startswith('/openapi/v3/apis/') for p in o['paths'].values())"
for g in iam scope app ext; do
  req GET "$S/openapi/v3/apis/$g.theriseunion.io/v1alpha1" -H 'Accept: application/json'
  check_json "/openapi/v3/apis/$g.theriseunion.io/v1alpha1" "code == 200 and ctype.startswith('application/json') and o['openapi'].startswith('3.') \
    and any(x['group'] == '$g.theriseunion.io' for s in o['components']['schemas'].values() for x in s.get('x-kubernetes-group-version-kind', [])) \
    and all(isinstance(op.get('x-kubernetes-group-version-kind'), dict) for p in o['paths'].values() for m, op in p.items() if m in ('get', 'put', 'patch', 'post', 'delete')) \
    and any('fieldValidation' in [q.get('name') for q in p['patch'].get('parameters', [])] for p in o['paths'].values() if 'patch' in p)"
done

###########################################################################
# Tables.
req GET "$G/workspaces" -H "$TABLE"
check_json "Table, default includeObject (Metadata)" "o['kind'] == 'Table' and o['apiVersion'] == 'meta.k8s.io/v1' and o['metadata']['resourceVersion'] \
  and [c['name'] for c in o['columnDefinitions']] == ['Name', 'Manager', 'Clusters', 'Namespaces', 'Age'] \
  and len(o['rows']) == 1 and o['rows'][0]['cells'][:2] == ['ws1', 'bob'] and len(o['rows'][0]['cells']) == 5 \
  and o['rows'][0]['object']['kind'] == 'PartialObjectMetadata' and o['rows'][0]['object']['apiVersion'] == 'meta.k8s.io/v1' \
  and o['rows'][0]['object']['metadata']['name'] == 'ws1' and 'spec' not in o['rows'][0]['object']"
req GET "$G/workspaces?includeObject=Object" -H "$TABLE"
check_json "Table, includeObject=Object" "o['kind'] == 'Table' and o['rows'][0]['object']['kind'] == 'Workspace' \
  and o['rows'][0]['object']['apiVersion'] == 'scope.theriseunion.io/v1alpha1' and o['rows'][0]['object']['spec']['manager'] == 'bob'"
req GET "$G/workspaces?includeObject=None" -H "$TABLE"
check_json "Table, includeObject=None" "o['kind'] == 'Table' and 'object' not in o['rows'][0]"
req GET "$G/workspaces?includeObject=Everything" -H "$TABLE"
status "Table, includeObject=Everything" 400 BadRequest
req GET "$G/workspaces/ws1" -H "$TABLE"
check_json "Table for one object" "o['kind'] == 'Table' and len(o['rows']) == 1 and o['rows'][0]['cells'][0] == 'ws1'"
req GET "$G/workspaces/ws1" -H 'Accept: application/json;as=Table;v=v1beta1;g=meta.k8s.io'
check_json "v1beta1 Table" "o['kind'] == 'Table' and o['apiVersion'] == 'meta.k8s.io/v1beta1'"
req GET "$G/workspaces" -H 'Accept: application/vnd.kubernetes.protobuf'
status "a list in a format the server cannot produce" 406 NotAcceptable
req GET "$G/workspaces" -H 'Accept: application/vnd.kubernetes.protobuf, application/json'
check_json "protobuf then JSON in Accept" "code == 200 and o['kind'] == 'WorkspaceList'"

###########################################################################
# List paging: every item exactly once, one resourceVersion for all pages,
# and a write between pages does not show up in them.
for i in 1 2 3 4 5 6 7; do
  create nodegroups "$(obj NodeGroup "ng-$i" '{"cluster":"edge-1"}' "{\"grp\":\"$((i % 2))\"}")"
done
python3 - "$G/nodegroups" "$ADMIN_TOKEN" "$WORK" <<'PY' || fail "paging: $(cat "$WORK/pyerr")"
import json, ssl, sys, urllib.parse, urllib.request
base, token, work = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl._create_unverified_context()
def get(url, method="GET", body=None):
    r = urllib.request.Request(url, method=method, data=body, headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(r, context=ctx) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
names, rvs, cont, pages = [], set(), "", 0
try:
    while True:
        code, o = get(base + "?limit=2" + ("&continue=" + urllib.parse.quote(cont) if cont else ""))
        assert code == 200, (code, o)
        assert len(o["items"]) <= 2, o
        pages += 1
        names += [i["metadata"]["name"] for i in o["items"]]
        rvs.add(o["metadata"]["resourceVersion"])
        cont = o["metadata"].get("continue", "")
        if pages == 1:
            assert cont and o["metadata"].get("remainingItemCount") == 5, o["metadata"]
            # A write between pages.
            code, _ = get(base, "POST", json.dumps({"apiVersion": "scope.theriseunion.io/v1alpha1", "kind": "NodeGroup",
                          "metadata": {"name": "ng-5a-late"}, "spec": {"cluster": "x"}}).encode())
            assert code == 201, code
        if not cont:
            break
    assert pages == 4, pages
    assert names == ["ng-%d" % i for i in range(1, 8)], names
    assert len(rvs) == 1, rvs
    code, o = get(base + "?continue=not-a-token&limit=2")
    assert code in (400, 410) and o["kind"] == "Status", (code, o)
except AssertionError as e:
    open(work + "/pyerr", "w").write(repr(e))
    raise
PY

###########################################################################
# resourceVersionMatch=Exact: the list as it was at that version.
req GET "$G/nodegroups/ng-1"
old=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["resourceVersion"])' "$WORK/body")
req PATCH "$G/nodegroups/ng-1" -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"cluster":"edge-new"}}'
req DELETE "$G/nodegroups/ng-5a-late"
req GET "$G/nodegroups?resourceVersion=$old&resourceVersionMatch=Exact"
check_json "list at an old resourceVersion (Exact)" "code == 200 and o['metadata']['resourceVersion'] == '$old' \
  and [i['metadata']['name'] for i in o['items']] == ['ng-1'] and o['items'][0]['spec']['cluster'] == 'edge-1'"
req GET "$G/nodegroups"
check_json "the current list" "[i['spec']['cluster'] for i in o['items'] if i['metadata']['name'] == 'ng-1'] == ['edge-new'] \
  and 'ng-5a-late' not in [i['metadata']['name'] for i in o['items']]"
req GET "$G/nodegroups?resourceVersionMatch=Exact"
status "resourceVersionMatch without resourceVersion" 422 Invalid "o['message'] == 'ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided' and o['details']['kind'] == 'ListOptions'"

###########################################################################
# dryRun.
req POST "$G/nodegroups?dryRun=All" -H "$JSON" -d "$(obj NodeGroup dry '{"cluster":"edge-1"}')"
check_json "dryRun=All create" "code == 201 and o['metadata']['name'] == 'dry' and o['spec']['cluster'] == 'edge-1'"
req GET "$G/nodegroups/dry"
[ "$CODE" = 404 ] || fail "dryRun=All stored the object: $(shown)"
req DELETE "$G/nodegroups/ng-2?dryRun=All"
[ "$CODE" = 200 ] || fail "dryRun=All delete: $(shown)"
req GET "$G/nodegroups/ng-2"
[ "$CODE" = 200 ] || fail "dryRun=All delete removed the object: $(shown)"
req POST "$G/nodegroups?dryRun=Maybe" -H "$JSON" -d "$(obj NodeGroup dry2 '{"cluster":"edge-1"}')"
status "dryRun=Maybe" 422 Invalid "o['message'] == 'CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Maybe\"}: supported values: \"All\"' and o['details']['kind'] == 'CreateOptions' and o['details']['group'] == 'meta.k8s.io' and o['details']['causes'][0]['field'] == 'dryRun'"

###########################################################################
# fieldValidation.
req POST "$G/nodegroups?fieldValidation=Warn" -H "$JSON" -d "$(obj NodeGroup warn '{"cluster":"edge-1","bogus":1}')"
[ "$CODE" = 201 ] || fail "fieldValidation=Warn with an unknown field: $(shown)"
header Warning | grep -q '^299 - "unknown field \\"spec.bogus\\""$' || fail "fieldValidation=Warn Warning header: '$(header Warning)'"
req GET "$G/nodegroups/warn"
check_json "the unknown field is dropped" "'bogus' not in o['spec'] and o['spec']['cluster'] == 'edge-1'"
req POST "$G/nodegroups?fieldValidation=Strict" -H "$JSON" -d "$(obj NodeGroup strict '{"cluster":"edge-1","bogus":1}')"
status "fieldValidation=Strict with an unknown field" 400 BadRequest "'unknown field \"spec.bogus\"' in o['message']"
req GET "$G/nodegroups/strict"
[ "$CODE" = 404 ] || fail "fieldValidation=Strict stored the object: $CODE"
req POST "$G/nodegroups?fieldValidation=Strict" -H "$JSON" -d '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"NodeGroup","metadata":{"name":"dup"},"spec":{"cluster":"a","cluster":"b"}}'
status "fieldValidation=Strict with a duplicate field" 400 BadRequest "'duplicate' in o['message'] and 'cluster' in o['message']"
req POST "$G/nodegroups?fieldValidation=Ignore" -H "$JSON" -d "$(obj NodeGroup ign '{"cluster":"edge-1","bogus":1}')"
[ "$CODE" = 201 ] && [ -z "$(header Warning)" ] || fail "fieldValidation=Ignore: $(shown) Warning '$(header Warning)'"
req POST "$G/nodegroups?fieldValidation=Sometimes" -H "$JSON" -d "$(obj NodeGroup fv '{"cluster":"edge-1"}')"
status "fieldValidation=Sometimes" 422 Invalid "o['details']['causes'] == [{'reason': 'FieldValueNotSupported', 'field': 'fieldValidation', 'message': 'Unsupported value: \"Sometimes\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"'}]"
req POST "$G/nodegroups?fieldValidation=strict" -H "$JSON" -d "$(obj NodeGroup fv '{"cluster":"edge-1"}')"
status "fieldValidation is case-sensitive" 422 Invalid

###########################################################################
# The default field manager is the User-Agent's product name.
req POST "$G/nodegroups" -H "$JSON" -H 'User-Agent: edge-tool/1.2.3 (linux)' -d "$(obj NodeGroup ua '{"cluster":"edge-1"}')"
check_json "default field manager" "[m['manager'] for m in o['metadata']['managedFields']] == ['edge-tool']"

###########################################################################
# deletecollection with a label selector deletes only matching objects.
req DELETE "$G/nodegroups?labelSelector=grp%3D1"
[ "$CODE" = 200 ] || fail "deletecollection: $(shown)"
req GET "$G/nodegroups"
check_json "after deletecollection grp=1" "sorted(i['metadata']['name'] for i in o['items']) == \
  ['ign', 'ng-2', 'ng-4', 'ng-6', 'ua', 'warn']"

###########################################################################
# DELETE preconditions.
req DELETE "$G/nodegroups/ng-2" -H "$JSON" -d '{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}}'
status "DELETE with a uid precondition that does not match" 409 Conflict "o['details']['name'] == 'ng-2'"
req GET "$G/nodegroups/ng-2"
[ "$CODE" = 200 ] || fail "a failed precondition deleted the object"
uid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["uid"])' "$WORK/body")
req DELETE "$G/nodegroups/ng-2" -H "$JSON" -d '{"preconditions":{"resourceVersion":"1"}}'
status "DELETE with a resourceVersion precondition that does not match" 409 Conflict
req DELETE "$G/nodegroups/ng-2" -H "$JSON" -d "{\"preconditions\":{\"uid\":\"$uid\"}}"
[ "$CODE" = 200 ] || fail "DELETE with a matching uid precondition: $(shown)"
req GET "$G/nodegroups/ng-2"
[ "$CODE" = 404 ] || fail "DELETE with a matching precondition left the object: $CODE"

[ "$FAILS" -eq 0 ] || die "$FAILS check(s) failed"
echo "http semantics ok"
