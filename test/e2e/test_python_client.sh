# The official Python client (python3-kubernetes, dynamic client) against
# the real server: discovery, create, get, list with selectors, patch,
# replace with a stale resourceVersion (409), watch, delete.
source "$(dirname "$0")/lib.sh"
start_server
/usr/bin/python3 - "$WORK/kubeconfig" <<'PY'
import sys, threading
from kubernetes import config, dynamic
from kubernetes.client import api_client
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, UnprocessibleEntityError

client = dynamic.DynamicClient(api_client.ApiClient(configuration=config.load_kube_config(config_file=sys.argv[1])))
roles = client.resources.get(api_version="iam.theriseunion.io/v1alpha1", kind="IAMRole")
deps = client.resources.get(api_version="app.theriseunion.io/v1alpha1", kind="ApplicationDeployment")
assert roles.namespaced is False and deps.namespaced is True

def role(name, scope="Workspace", labels=None):
    return {"apiVersion": "iam.theriseunion.io/v1alpha1", "kind": "IAMRole",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"scope": scope, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}}

created = roles.create(body=role("viewer", labels={"tier": "a"}))
assert created.metadata.resourceVersion and created.metadata.uid
roles.create(body=role("editor", labels={"tier": "b"}))
names = sorted(i.metadata.name for i in roles.get().items)
assert names == ["editor", "viewer"], names
assert [i.metadata.name for i in roles.get(label_selector="tier=a").items] == ["viewer"]
assert [i.metadata.name for i in roles.get(field_selector="metadata.name=editor").items] == ["editor"]

patched = roles.patch(name="viewer", body={"spec": {"scope": "Cluster"}}, content_type="application/merge-patch+json")
assert patched.spec.scope == "Cluster" and patched.metadata.generation == 2

stale = role("viewer"); stale["metadata"]["resourceVersion"] = created.metadata.resourceVersion
try:
    roles.replace(body=stale)
    raise SystemExit("stale replace was accepted")
except ConflictError as e:
    assert "the object has been modified" in e.body.decode() if isinstance(e.body, bytes) else e.body

try:
    roles.create(body=role("bad", scope="Galaxy"))
    raise SystemExit("invalid scope accepted")
except UnprocessibleEntityError as e:
    assert "Unsupported value" in str(e.body)

# Namespaced kind, across namespaces.
for ns in ("shop", "bank"):
    deps.create(namespace=ns, body={"apiVersion": "app.theriseunion.io/v1alpha1", "kind": "ApplicationDeployment",
                                    "metadata": {"name": "web"}, "spec": {"application": "web", "version": "latest",
                                    "topologies": [{"nodeGroup": "ng1", "replicas": 2}]}})
assert len(deps.get().items) == 2 and len(deps.get(namespace="shop").items) == 1

# Watch sees a change made after it started.
seen = []
def watch():
    for ev in roles.watch(resource_version=patched.metadata.resourceVersion, timeout=10):
        seen.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "DELETED":
            return
t = threading.Thread(target=watch); t.start()
import time; time.sleep(1)
roles.delete(name="editor")
t.join(15)
assert ("DELETED", "editor") in seen, seen

try:
    roles.get(name="editor")
    raise SystemExit("deleted object still readable")
except NotFoundError:
    pass
print("python client ok")
PY
