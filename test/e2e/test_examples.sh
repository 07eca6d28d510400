#!/usr/bin/env bash
# The README's "Try it" walkthrough, run as written: every `sh` block of
# that section but the first (which starts `make run`; here start_server
# does) runs in order with bash -e against a fresh server, and the `text`
# block after it lists lines its output must contain, in order, compared
# with runs of whitespace made one space, `...` matching anything. So the
# commands a user copies are the commands tested, and the output the
# README promises is the output checked.
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
start_server

/usr/bin/python3 - README.md <<'PY' || die "the README's walkthrough does not hold"
import re, subprocess, sys

text = open(sys.argv[1]).read()
m = re.search(r"^## Try it\n(.*?)(?=^## )", text, re.S | re.M)
if not m:
    sys.exit("README.md has no '## Try it' section")
blocks = re.findall(r"^```(\w*)\n(.*?)^```$", m.group(1), re.S | re.M)

# Each sh block with the text block that follows it, if one does.
steps = []
for lang, body in blocks:
    if lang == "sh":
        steps.append([body, None])
    elif lang == "text" and steps and steps[-1][1] is None:
        steps[-1][1] = body
    else:
        sys.exit("a %r block that follows no sh block:\n%s" % (lang, body))
if not steps or "make run" not in steps[0][0]:
    sys.exit("the first sh block should start the server with make run")
steps = steps[1:]
if not any(s[0].strip() == "kubectl apply -f examples/" for s in steps):
    sys.exit("the walkthrough no longer applies examples/ in one command")

def norm(s):
    return " ".join(s.split())

def pattern(line):
    return re.compile(".*".join(re.escape(p) for p in norm(line).split("...")))

checked, failures = [], []
for code, expect in steps:
    run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=120)
    out = run.stdout
    if run.returncode:
        failures.append("exit %d from:\n%s\noutput:\n%s" % (run.returncode, code, out))
        continue
    lines = [norm(l) for l in out.splitlines()]
    i = 0
    for want in (expect or "").splitlines():
        if not want.strip():
            continue
        p = pattern(want)
        while i < len(lines) and not p.fullmatch(lines[i]):
            i += 1
        if i == len(lines):
            failures.append("this line, in this order, is not in the output:\n  %s\ncommands:\n%s"
                            "\noutput:\n%s" % (want, code, out))
            break
        checked.append(lines[i])
        i += 1

# What the walkthrough must go on showing, whatever its wording: each an
# expected line the run above matched.
musts = [
    "allowed=true denied=false",
    "allowed by IAMRoleBinding alice-team-a (IAMRole developer) at Workspace team-a",
    "allowed=false denied=true",
    "denied by IAMRoleBinding alice-team-a (IAMRole developer) at Workspace team-a",
    "Namespace shop-dev: alice-shop-dev-admin=allowed",
    "allowed=false denied=false",
    "no IAMRoleBinding of alice allows list pods in namespace billing",
    'deny: alice-team-a Workspace/team-a ["delete","deletecollection"] ["secrets"]',
    "alice-shop-dev-admin Namespace/shop-dev",
    "developer Workspace 0 4",
    "Ready=Unknown AgentNotConnected",
    "web web latest 1.1.0 1",
    "Installed=False ClusterNotReady",
]
for s in musts:
    if not any(s in l for l in checked):
        failures.append("the walkthrough no longer shows: " + s)
if failures:
    sys.exit("\n\n".join(failures))
print("examples: %d steps, %d output lines checked" % (len(steps), len(checked)))
PY
echo "examples: ok"
