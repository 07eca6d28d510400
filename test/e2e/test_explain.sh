# kubectl explain documents every kind and field, through each document a
# kubectl reads it from: the default kubectl (1.32) and 1.27 read the
# OpenAPI v3 document of the group (/openapi/v3/apis/<group>/v1alpha1),
# and 1.27 with KUBECTL_EXPLAIN_OPENAPIV3=false falls back to the OpenAPI
# v2 protobuf (/openapi/v2). For every kind: explain <kind> prints the
# kind's own description; explain of a nested field prints that field's
# description; explain of spec and status lists fields that all have one
# (no "<empty>" or "<no description>"). Every check runs for every
# kubectl; the failures are listed at the end.
source "$(dirname "$0")/lib.sh"
set +o pipefail
start_server

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# resource|nested field|text its description holds|start of the kind's description
cat > "$WORK/fields" <<'EOF'
roletemplates|spec.rules.verbs|Verbs is a list of Verbs that apply to ALL the ResourceKinds|RoleTemplate is a reusable set of RBAC policy rules
iamroles|status.aggregatedRules|Written by the IAMRole controller: the role's rules plus those|IAMRole grants, at one scope level
iamrolebindings|spec.scope.cluster|empty means the server's own cluster (its --cluster-name)|IAMRoleBinding grants an IAMRole to subjects
accessreviews|spec.resourceAttributes.verb|Verb is a kubernetes resource API verb|AccessReview asks the authorizer whether a user may
permissionreviews|spec.scope.level|The level of the scope: Platform (everything)|PermissionReview asks which rules, deny rules and UI permissions
clusters|spec.connection.kubeconfig|A kubeconfig for the cluster, base64-encoded|Cluster is a member cluster and how to reach it
workspaces|spec.namespaces.cluster|The member cluster; empty means the server's own cluster|Workspace is the application view of the scope chain
nodegroups|status.conditions.lastTransitionTime|lastTransitionTime is the last time the condition transitioned|NodeGroup is the infrastructure view of the scope chain
applications|status.latestVersion|Written by the Application controller: the highest spec.version|Application is an application in a Workspace's store
applicationversions|spec.version|Semantic Versioning 2.0.0 without a leading v|ApplicationVersion is one semver release of an Application
applicationdeployments|status.topologies.phase|Pending (not provisioned yet|ApplicationDeployment rolls an approved version of an Application
components|status.phase|Written by the Component controller: Pending|Component is a Helm chart the platform installs
EOF

# explain LABEL PATH: kubectl explain as LABEL says, the output with its
# line breaks and indentation folded into single spaces in $WORK/out.
explain() {
  local label=$1 path=$2 rc=0
  case $label in
    default) kubectl --cache-dir "$WORK/cache-default" explain "$path" >"$WORK/raw" 2>&1 || rc=$? ;;
    1.27-v3) KUBECTL_EXPLAIN_OPENAPIV3=true k 1.27 --cache-dir "$WORK/cache-127" \
               explain "$path" >"$WORK/raw" 2>&1 || rc=$? ;;
    1.27-v2) KUBECTL_EXPLAIN_OPENAPIV3=false k 1.27 --cache-dir "$WORK/cache-127" \
               explain "$path" >"$WORK/raw" 2>&1 || rc=$? ;;
  esac
  tr '\n\t' '  ' <"$WORK/raw" | tr -s ' ' >"$WORK/out"
  return $rc
}

undocumented() { grep -q -e '<empty>' -e '<no description>' "$WORK/raw"; }

for label in default 1.27-v3 1.27-v2; do
  while IFS='|' read -r res field text kind_text; do
    if ! explain "$label" "$res"; then
      fail "$label explain $res: $(head -c 300 "$WORK/raw")"; continue
    fi
    grep -qF -- "$kind_text" "$WORK/out" || fail "$label explain $res: no kind description: $(head -c 400 "$WORK/out")"
    undocumented && fail "$label explain $res: an undocumented field: $(grep -e '<empty>' -e '<no description>' -B2 "$WORK/raw" | head -6)"
    parts=spec
    grep -qE '^ +status[[:space:]]' "$WORK/raw" && parts="spec status"

    if ! explain "$label" "$res.$field"; then
      fail "$label explain $res.$field: $(head -c 300 "$WORK/raw")"; continue
    fi
    grep -qF -- "$text" "$WORK/out" || fail "$label explain $res.$field: want '$text' in: $(head -c 500 "$WORK/out")"
    undocumented && fail "$label explain $res.$field: undocumented: $(head -c 400 "$WORK/out")"

    for part in $parts; do
      explain "$label" "$res.$part" || { fail "$label explain $res.$part: $(head -c 300 "$WORK/raw")"; continue; }
      grep -q 'FIELDS:' "$WORK/raw" || fail "$label explain $res.$part lists no fields: $(head -c 300 "$WORK/out")"
      undocumented && fail "$label explain $res.$part: an undocumented field: $(grep -e '<empty>' -e '<no description>' -B2 "$WORK/raw" | head -6)"
    done
  done <"$WORK/fields"

  # kube's own words for the standard fields, and a date-time.
  explain "$label" workspaces.metadata.creationTimestamp || fail "$label explain metadata.creationTimestamp"
  grep -qF 'CreationTimestamp is a timestamp representing the server time' "$WORK/out" ||
    fail "$label explain workspaces.metadata.creationTimestamp: $(head -c 400 "$WORK/out")"
  explain "$label" iamroles.spec.templateSelector.matchLabels || fail "$label explain matchLabels"
  grep -qF 'matchLabels is a map of {key,value} pairs' "$WORK/out" ||
    fail "$label explain iamroles.spec.templateSelector.matchLabels: $(head -c 400 "$WORK/out")"
  echo "$label: done"
done

[ "$FAILS" -eq 0 ] || die "$FAILS explain checks failed"
echo "explain: every kind documented through OpenAPI v3 and v2"
