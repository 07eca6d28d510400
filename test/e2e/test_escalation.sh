#!/usr/bin/env bash
# Escalation prevention and delegation (the admission step): a user with a
# little access cannot make the server grant more, by any write path; a
# workspace admin manages her workspace's members; claims of namespaces,
# nodes and clusters, and deployment targets, need authority over them.
source "$(dirname "$0")/lib.sh"

EXTRA_TOKENS="alice-t,alice2,alice2-uid
carol-t,carol,carol-uid
erin-t,erin,erin-uid
gina-t,gina,gina-uid
hank-t,hank,hank-uid
ivan-t,ivan,ivan-uid
dave-t,dave,dave-uid,\"devs\""
start_server
URL="https://127.0.0.1:$PORT"
IAM=$URL/apis/iam.theriseunion.io/v1alpha1
SCOPE=$URL/apis/scope.theriseunion.io/v1alpha1

# req TOKEN METHOD URL [BODY [CONTENT-TYPE]]: the HTTP code; the body in $WORK/body.
req() {
  local tok=$1 m=$2 u=$3 body=${4:-} ct=${5:-application/json}
  if [ -n "$body" ]; then
    curl -sk -o "$WORK/body" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $tok" \
      -H "Content-Type: $ct" --data-binary "$body" "$u"
  else
    curl -sk -o "$WORK/body" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $tok" "$u"
  fi
}
# expect CODE what TOKEN METHOD URL [BODY [CT]]
expect() {
  local want=$1 what=$2; shift 2
  local got; got=$(req "$@")
  [ "$got" = "$want" ] || die "$what: want HTTP $want, got $got: $(cat "$WORK/body")"
}
body_has() { grep -qF -- "$1" "$WORK/body" || die "$2: body lacks '$1': $(cat "$WORK/body")"; }
admin() { expect "$1" "admin: $2" "$ADMIN_TOKEN" "${@:3}"; }

role() { # name scope rules-json [deny-json]
  admin 201 "role $1" POST "$IAM/iamroles" "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",
    \"kind\":\"IAMRole\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"scope\":\"$2\",\"rules\":$3,
    \"denyRules\":${4:-[]}}}"
}
binding_json() { # name role user level [scope-name]
  local sn=""; [ -n "${5:-}" ] && sn=",\"name\":\"$5\""
  echo "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\",
    \"metadata\":{\"name\":\"$1\"},\"spec\":{\"roleRef\":{\"name\":\"$2\"},
    \"subjects\":[{\"kind\":\"User\",\"name\":\"$3\"}],\"scope\":{\"level\":\"$4\"$sn}}}"
}
bind() { admin 201 "binding $1" POST "$IAM/iamrolebindings" "$(binding_json "$@")"; }
ALL='[{"verbs":["*"],"apiGroups":["*"],"resources":["*"]}]'
VIEW='[{"verbs":["get","list","watch"],"apiGroups":["*"],"resources":["*"]}]'

# allowed USER VERB GROUP RESOURCE NS NAME: what the authorizer says (AccessReview as admin).
decision() {
  admin 201 "access review" POST "$IAM/accessreviews" "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",
    \"kind\":\"AccessReview\",\"spec\":{\"user\":\"$1\",\"resourceAttributes\":{\"verb\":\"$2\",
    \"group\":\"$3\",\"resource\":\"$4\",\"namespace\":\"$5\",\"name\":\"$6\"}}}"
  /usr/bin/python3 -c "import json; print(json.load(open('$WORK/body'))['status']['allowed'])"
}

role platform-admin Platform "$ALL"
role ws-admin Workspace "$ALL"
role ws-viewer Workspace "$VIEW"
role rb-writer Cluster '[{"verbs":["create","update","patch"],"apiGroups":["iam.theriseunion.io"],"resources":["iamrolebindings"]}]'
role no-secrets Platform '[]' '[{"verbs":["get"],"apiGroups":[""],"resources":["secrets"]}]'
for ws in ws-a ws-b; do
  admin 201 "workspace $ws" POST "$SCOPE/workspaces" "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\",
    \"kind\":\"Workspace\",\"metadata\":{\"name\":\"$ws\"},\"spec\":{\"namespaces\":[{\"name\":\"team-${ws#ws-}\"}]}}"
done

# ---- 1. self-grant through a binding ------------------------------------------------
bind alice2-rbw rb-writer alice2 Cluster
bind alice2-view ws-viewer alice2 Workspace ws-a
expect 403 "self-grant at Platform, where she may not create bindings" alice-t POST \
  "$IAM/iamrolebindings" "$(binding_json alice2-root platform-admin alice2 Platform)"
body_has 'cannot create iamrolebindings at Platform' "create-at-scope message"
expect 403 "self-grant of platform-admin at Cluster" alice-t POST "$IAM/iamrolebindings" \
  "$(binding_json alice2-root platform-admin alice2 Cluster)"
body_has 'user \"alice2\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}' "self-grant message"
body_has '"reason":"Forbidden"' "self-grant reason"
expect 403 "self-grant, dry run" alice-t POST "$IAM/iamrolebindings?dryRun=All" \
  "$(binding_json alice2-root platform-admin alice2 Cluster)"
expect 403 "self-grant by server-side apply" alice-t PATCH \
  "$IAM/iamrolebindings/alice2-root?fieldManager=m" \
  "$(binding_json alice2-root platform-admin alice2 Cluster)" application/apply-patch+yaml
expect 404 "binding of a missing role" alice-t POST "$IAM/iamrolebindings" \
  "$(binding_json alice2-x no-such-role alice2 Cluster)"
body_has 'iamroles.iam.theriseunion.io \"no-such-role\" not found' "missing role message"
# Moving her own ws-a viewer binding to Platform, by every update path.
expect 403 "scope change by merge patch" alice-t PATCH "$IAM/iamrolebindings/alice2-view" \
  '{"spec":{"scope":{"level":"Platform","name":null}}}' application/merge-patch+json
expect 403 "scope change by JSON patch" alice-t PATCH "$IAM/iamrolebindings/alice2-view" \
  '[{"op":"replace","path":"/spec/scope","value":{"level":"Cluster"}}]' application/json-patch+json
expect 403 "scope change by strategic patch" alice-t PATCH "$IAM/iamrolebindings/alice2-view" \
  '{"spec":{"scope":{"level":"Cluster","name":null}}}' application/strategic-merge-patch+json
expect 403 "scope change, dry run" alice-t PATCH "$IAM/iamrolebindings/alice2-view?dryRun=All" \
  '{"spec":{"scope":{"level":"Cluster","name":null}}}' application/merge-patch+json
req alice-t GET "$IAM/iamrolebindings/alice2-view" >/dev/null
expect 403 "scope change by PUT" alice-t PUT "$IAM/iamrolebindings/alice2-view" \
  "$(/usr/bin/python3 -c "import json; o=json.load(open('$WORK/body')); o['spec']['scope']={'level':'Cluster'}; print(json.dumps(o))")"
expect 422 "roleRef is immutable" alice-t PATCH "$IAM/iamrolebindings/alice2-view" \
  '{"spec":{"roleRef":{"name":"platform-admin"}}}' application/merge-patch+json
body_has 'cannot change roleRef' "roleRef message"
[ "$(decision alice2 get "" secrets kube-system x)" = False ] || die "alice2 became an admin"
# What she holds she may grant: her viewer role, in her own workspace.
expect 201 "grant of a role held, where held" alice-t POST "$IAM/iamrolebindings" \
  "$(binding_json dave-view ws-viewer dave Workspace ws-a)"
admin 200 "binding labelled with its scope" GET "$IAM/iamrolebindings/dave-view"
body_has '"scope.theriseunion.io/workspace":"ws-a"' "workspace label"
body_has '"scope.theriseunion.io/cluster":"host"' "cluster label"
expect 403 "grant of a role held elsewhere" alice-t POST "$IAM/iamrolebindings" \
  "$(binding_json dave-view-b ws-viewer dave Workspace ws-b)"

# ---- 2. claiming a namespace -------------------------------------------------------------
bind carol-admin ws-admin carol Workspace ws-a
expect 403 "claim of kube-system" carol-t PATCH "$SCOPE/workspaces/ws-a" \
  '{"spec":{"namespaces":[{"name":"team-a"},{"name":"kube-system"}]}}' application/merge-patch+json
body_has 'may not claim namespace \"kube-system\"' "claim message"
[ "$(decision carol get "" secrets kube-system x)" = False ] || die "carol reached kube-system"
admin 200 "ws-a unchanged" GET "$SCOPE/workspaces/ws-a"
grep -q kube-system "$WORK/body" && die "kube-system joined ws-a"
expect 403 "claim by JSON patch" carol-t PATCH "$SCOPE/workspaces/ws-a" \
  '[{"op":"add","path":"/spec/namespaces/-","value":{"name":"kube-system"}}]' application/json-patch+json
expect 403 "claim of a cluster" carol-t PATCH "$SCOPE/workspaces/ws-a" \
  '{"spec":{"clusters":["edge-9"]}}' application/merge-patch+json
# Authority over a namespace (update on it) makes the claim legitimate.
role ns-owner Namespace '[{"verbs":["update"],"apiGroups":[""],"resources":["namespaces"]}]'
bind carol-team-c ns-owner carol Namespace team-c
expect 200 "claim of a namespace she may update" carol-t PATCH "$SCOPE/workspaces/ws-a" \
  '{"spec":{"namespaces":[{"name":"team-a"},{"name":"team-c"}]}}' application/merge-patch+json
sleep 0.3
[ "$(decision carol delete "" pods team-c p)" = True ] || die "team-c did not join ws-a"

# ---- 3. delegation: a workspace admin manages her members ------------------------------
expect 201 "workspace admin binds the viewer role in her workspace" carol-t POST \
  "$IAM/iamrolebindings" "$(binding_json dave-ws-a ws-viewer dave Workspace ws-a)"
sleep 0.3
expect 200 "she reads the binding" carol-t GET "$IAM/iamrolebindings/dave-ws-a"
expect 200 "she lists her workspace's bindings" carol-t GET \
  "$IAM/iamrolebindings?labelSelector=scope.theriseunion.io/workspace%3Dws-a"
body_has '"name":"dave-ws-a"' "her list"
grep -q '"name":"alice2-rbw"' "$WORK/body" && die "a Cluster binding leaked into her list"
# AccessReview's trace shows where a binding request is placed.
decision carol delete iam.theriseunion.io iamrolebindings "" alice2-view >/dev/null
[ "$(/usr/bin/python3 -c "import json; t=json.load(open('$WORK/body'))['status']['trace']; print(t[0]['scope']['level'], t[0]['scope']['name'], len(t))")" = "Workspace ws-a 3" ] \
  || die "trace of a binding request: $(cat "$WORK/body")"
expect 403 "she may not list every binding" carol-t GET "$IAM/iamrolebindings"
expect 403 "nor another workspace's" carol-t GET \
  "$IAM/iamrolebindings?labelSelector=scope.theriseunion.io/workspace%3Dws-b"
KUBECONFIG=$WORK/carol.kubeconfig
hack/kubeconfig.sh "$URL" "$WORK/certs/ca.crt" carol-t > "$WORK/carol.kubeconfig"
k "" --kubeconfig "$WORK/carol.kubeconfig" get iamrolebindings -l scope.theriseunion.io/workspace=ws-a \
  >"$WORK/out" 2>&1 || die "kubectl list as carol: $(cat "$WORK/out")"
grep -q dave-ws-a "$WORK/out" || die "kubectl list as carol lacks dave-ws-a"
export KUBECONFIG=$WORK/kubeconfig
expect 200 "she changes its subjects" carol-t PATCH "$IAM/iamrolebindings/dave-ws-a" \
  '{"spec":{"subjects":[{"kind":"Group","name":"devs"}]}}' application/merge-patch+json
expect 403 "she may not bind at Platform" carol-t POST "$IAM/iamrolebindings" \
  "$(binding_json dave-root ws-viewer dave Platform)"
expect 403 "nor in another workspace" carol-t POST "$IAM/iamrolebindings" \
  "$(binding_json dave-ws-b ws-viewer dave Workspace ws-b)"
expect 403 "nor move a binding out of her workspace" carol-t PATCH \
  "$IAM/iamrolebindings/dave-ws-a" '{"spec":{"scope":{"name":"ws-b"}}}' application/merge-patch+json
expect 200 "she removes the member" carol-t DELETE "$IAM/iamrolebindings/dave-ws-a"
# A platform admin (not system:masters) binds anyone anywhere.
bind erin-root platform-admin erin Platform
expect 201 "platform admin binds" erin-t POST "$IAM/iamrolebindings" \
  "$(binding_json hank-ws-b ws-admin hank Workspace ws-b)"
# ... also a role created a moment before (the check waits for the index).
expect 201 "platform admin creates a role" erin-t POST "$IAM/iamroles" \
  '{"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"IAMRole","metadata":{"name":"fresh"},"spec":{"scope":"Workspace","rules":[{"verbs":["get"],"apiGroups":[""],"resources":["pods"]}]}}'
expect 201 "and binds it at once" erin-t POST "$IAM/iamrolebindings" \
  "$(binding_json hank-fresh fresh hank Workspace ws-b)"

# ---- roles and templates ---------------------------------------------------------------
role role-editor Platform '[{"verbs":["create","update","patch","delete"],"apiGroups":["iam.theriseunion.io"],"resources":["iamroles","roletemplates"]},{"verbs":["get"],"apiGroups":[""],"resources":["*"]}]'
bind gina-editor role-editor gina Platform
role_json() { echo "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRole\",
  \"metadata\":{\"name\":\"$1\"},\"spec\":{\"scope\":\"Platform\",\"rules\":$2}}"; }
expect 403 "a role granting more than she holds" gina-t POST "$IAM/iamroles" "$(role_json wide "$ALL")"
body_has 'attempting to grant RBAC permissions not currently held' "role escalation message"
expect 201 "a role within what she holds" gina-t POST "$IAM/iamroles" \
  "$(role_json pods-reader '[{"verbs":["get"],"apiGroups":[""],"resources":["pods"]}]')"
expect 403 "widening it" gina-t PATCH "$IAM/iamroles/pods-reader" \
  '{"spec":{"rules":[{"verbs":["*"],"apiGroups":[""],"resources":["pods"]}]}}' application/merge-patch+json
expect 403 "a template granting more than she holds" gina-t POST "$URL/apis/iam.theriseunion.io/v1alpha1/roletemplates" \
  '{"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"RoleTemplate","metadata":{"name":"t-wide"},"spec":{"rules":[{"verbs":["*"],"apiGroups":["*"],"resources":["*"]}]}}'
admin 201 "template t-admin" POST "$IAM/roletemplates" \
  '{"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"RoleTemplate","metadata":{"name":"t-admin","labels":{"tier":"admin"}},"spec":{"rules":[{"verbs":["*"],"apiGroups":["*"],"resources":["*"]}]}}'
sleep 0.3
expect 403 "naming a wide template" gina-t PATCH "$IAM/iamroles/pods-reader" \
  '{"spec":{"templateRefs":["t-admin"]}}' application/merge-patch+json
expect 403 "selecting a wide template" gina-t PATCH "$IAM/iamroles/pods-reader" \
  '{"spec":{"templateSelector":{"matchLabels":{"tier":"admin"}}}}' application/merge-patch+json
expect 403 "relabelling a template she does not hold" gina-t PATCH "$IAM/roletemplates/t-admin" \
  '{"metadata":{"labels":{"tier":"viewer"}}}' application/merge-patch+json
bind gina-no-secrets no-secrets gina Platform
expect 403 "deleting a role with deny rules" gina-t DELETE "$IAM/iamroles/no-secrets"
body_has 'needs escalate' "deny-role deletion message"
expect 403 "dropping its deny rules" gina-t PATCH "$IAM/iamroles/no-secrets" \
  '{"spec":{"denyRules":[]}}' application/merge-patch+json
# Coverage subtracts what she is denied: she may get everything in the core
# group but secrets.
expect 403 "granting what she is denied" gina-t POST "$IAM/iamroles" \
  "$(role_json secrets-reader '[{"verbs":["get"],"apiGroups":[""],"resources":["secrets"]}]')"
role escalator Platform '[{"verbs":["create","escalate"],"apiGroups":["iam.theriseunion.io"],"resources":["iamroles"]}]'
bind hank-escalator escalator hank Platform
expect 201 "escalate allows a role beyond what he holds" hank-t POST "$IAM/iamroles" "$(role_json wide "$ALL")"
# Deleting a binding whose role denies needs bind.
bind alice2-denied no-secrets alice2 Cluster
role rb-deleter Cluster '[{"verbs":["delete"],"apiGroups":["iam.theriseunion.io"],"resources":["iamrolebindings"]}]'
bind alice2-deleter rb-deleter alice2 Cluster
expect 403 "removing one's own deny binding" alice-t DELETE "$IAM/iamrolebindings/alice2-denied"
body_has 'needs bind' "deny-binding deletion message"

# Rules are validated as RBAC validates them.
expect 422 "a rule for both resources and URLs" "$ADMIN_TOKEN" POST "$IAM/iamroles" \
  "$(role_json mixed '[{"verbs":["get"],"apiGroups":[""],"resources":["pods"],"nonResourceURLs":["/healthz"]}]')"
body_has 'rules cannot apply to both regular resources and non-resource URLs' "mixed rule message"
expect 422 "a resource rule without groups" "$ADMIN_TOKEN" POST "$IAM/roletemplates" \
  '{"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"RoleTemplate","metadata":{"name":"t-bad"},"spec":{"denyRules":[{"verbs":["get"],"resources":["pods"]}]}}'
body_has 'spec.denyRules[0].apiGroups' "rule field path"

# ---- 4. deployment targets --------------------------------------------------------------
role app-deployer Namespace '[{"verbs":["create","update","patch"],"apiGroups":["app.theriseunion.io"],"resources":["applicationdeployments"]}]'
bind ivan-apps app-deployer ivan Namespace apps
admin 201 "nodegroup ng-1" POST "$SCOPE/nodegroups" \
  '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"NodeGroup","metadata":{"name":"ng-1"},"spec":{"nodes":["n1"]}}'
APPD=$URL/apis/app.theriseunion.io/v1alpha1/namespaces/apps/applicationdeployments
DEP='{"apiVersion":"app.theriseunion.io/v1alpha1","kind":"ApplicationDeployment","metadata":{"name":"web"},"spec":{"application":"web","version":"latest","topologies":[{"nodeGroup":"ng-1","replicas":1}]}}'
expect 403 "deploying onto a node group without use" ivan-t POST "$APPD" "$DEP"
body_has 'may not use nodegroups \"ng-1\"' "use message"
expect 403 "the same, dry run" ivan-t POST "$APPD?dryRun=All" "$DEP"
role ng-user NodeGroup '[{"verbs":["use"],"apiGroups":["scope.theriseunion.io"],"resources":["nodegroups"]}]'
bind ivan-ng-1 ng-user ivan NodeGroup ng-1
expect 201 "with use on it" ivan-t POST "$APPD" "$DEP"
role comp-creator Cluster '[{"verbs":["create"],"apiGroups":["ext.theriseunion.io"],"resources":["components"]}]'
bind ivan-comp comp-creator ivan Cluster
COMP='{"apiVersion":"ext.theriseunion.io/v1alpha1","kind":"Component","metadata":{"name":"c1"},"spec":{"chart":"x","repository":"https://charts.example/","cluster":"edge-1"}}'
expect 403 "a component onto a cluster without use" ivan-t POST "$URL/apis/ext.theriseunion.io/v1alpha1/components" "$COMP"
admin 201 "use on edge-1" POST "$IAM/iamroles" '{"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"IAMRole","metadata":{"name":"cluster-user"},"spec":{"scope":"Cluster","rules":[{"verbs":["use"],"apiGroups":["scope.theriseunion.io"],"resources":["clusters"]}]}}'
admin 201 "binding at edge-1" POST "$IAM/iamrolebindings" '{"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"IAMRoleBinding","metadata":{"name":"ivan-edge-1"},"spec":{"roleRef":{"name":"cluster-user"},"subjects":[{"kind":"User","name":"ivan"}],"scope":{"level":"Cluster","cluster":"edge-1"}}}'
expect 201 "with use on it" ivan-t POST "$URL/apis/ext.theriseunion.io/v1alpha1/components" "$COMP"

# ---- deletecollection is admitted item by item, where each binding acts ----------------
expect 403 "carol deletes another workspace's bindings" carol-t DELETE \
  "$IAM/iamrolebindings?labelSelector=scope.theriseunion.io/workspace%3Dws-b"
expect 200 "a platform admin deletes them" erin-t DELETE \
  "$IAM/iamrolebindings?labelSelector=scope.theriseunion.io/workspace%3Dws-b"
body_has '"name":"hank-ws-b"' "deleted list"
admin 404 "hank-ws-b is gone" GET "$IAM/iamrolebindings/hank-ws-b"
admin 200 "ws-a's bindings stay" GET "$IAM/iamrolebindings/carol-admin"

kill -0 "$SERVER_PID" || die "server died"
echo "escalation: ok"
