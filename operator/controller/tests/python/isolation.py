"""Connectivity of a rendered region, computed by network-config-analyzer (nca).

Usage: isolation.py RENDERED.yaml QUERIES.json
Builds a small cluster around the platform (its own pods from the rendered Deployment, an
ingress controller, cluster DNS, Prometheus, an OpenTelemetry collector, a stranger pod in
another namespace and a neighbour pod in the platform namespace), asks nca for the full
connectivity map under the rendered NetworkPolicies, and answers each query
[source, destination] with the allowed connections ("none" when nothing is allowed).
Endpoints are pod names ("ns/name") or IPv4 addresses.
"""

import ipaddress
import json
import os
import re
import sys
import tempfile

import yaml
from nca.nca_cli import nca_main

rendered, queries_path = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
deployment = next(d for d in docs if d["kind"] == "Deployment")
namespace = deployment["metadata"]["namespace"]
platform = deployment["metadata"]["name"]
template = deployment["spec"]["template"]

namespaces = {namespace, "ingress-nginx", "kube-system", "monitoring", "observability", "elsewhere"}


def pod(name, ns, labels, ports=()):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "example", "ports": list(ports)}]},
        "status": {"podIP": "10.244.0.10", "hostIP": "10.0.0.10"},
    }


server_ports = template["spec"]["containers"][0]["ports"]
pods = [
    pod(f"{platform}-1", namespace, template["metadata"]["labels"], server_ports),
    pod(f"{platform}-2", namespace, template["metadata"]["labels"], server_ports),
    pod("neighbour", namespace, {"app": "neighbour"}),
    pod("controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
    pod("coredns", "kube-system", {"k8s-app": "kube-dns"}),
    pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
    pod("otel", "observability", {"app.kubernetes.io/name": "otel-collector"}),
    pod("stranger", "elsewhere", {"app": "stranger"}),
]

work = tempfile.mkdtemp()
files = {
    "policies": os.path.join(work, "policies.yaml"),
    "pods": os.path.join(work, "pods.yaml"),
    "namespaces": os.path.join(work, "namespaces.yaml"),
    "out": os.path.join(work, "connectivity.txt"),
}
if policies:
    yaml.safe_dump_all(policies, open(files["policies"], "w"))
else:
    open(files["policies"], "w").close()
yaml.safe_dump({"apiVersion": "v1", "kind": "PodList", "items": pods}, open(files["pods"], "w"))
yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "NamespaceList",
        "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}}}
            for n in sorted(namespaces)
        ],
    },
    open(files["namespaces"], "w"),
)
nca_main([
    "--connectivity", files["policies"],
    "--pod_list", files["pods"],
    "--ns_list", files["namespaces"],
    "--output_format", "txt_no_fw_rules",
    "--file_out", files["out"],
    "--return_0",
])

# Lines read: `SRC => DST : CONNECTIONS`; SRC and DST are `ns/pod[Pod]` or IP ranges.
edges = []
for line in open(files["out"]):
    match = re.match(r"^(\S+) => (\S+) : (.+)$", line.strip())
    if match:
        edges.append(match.groups())


def endpoint_matches(pattern, endpoint):
    if pattern.endswith("[Pod]"):
        return pattern[: -len("[Pod]")] == endpoint
    if "/" in endpoint:
        return False
    address = ipaddress.ip_address(endpoint)
    for part in pattern.split(","):
        if "-" in part:
            low, high = (ipaddress.ip_address(x) for x in part.split("-"))
            if low <= address <= high:
                return True
        elif "/" in part:
            if address in ipaddress.ip_network(part, strict=False):
                return True
        elif address == ipaddress.ip_address(part):
            return True
    return False


answers = []
for source, destination in json.load(open(queries_path)):
    found = [c for s, d, c in edges if endpoint_matches(s, source) and endpoint_matches(d, destination)]
    answers.append(found[0] if found else "none")
print(json.dumps({"answers": answers, "edges": len(edges)}))
