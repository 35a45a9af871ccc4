"""Validates custom resources against the openAPIV3Schema of their generated CRD.

Usage: crd_schema.py CRD.yaml... -- RESOURCE.yaml...
Prints one line per resource and exits 1 if any resource does not validate. The
x-kubernetes-* extensions (CEL rules included) are not evaluated here: the Rust tests evaluate
CEL with kube's client-side engine.
"""

import sys

import jsonschema
import yaml

split = sys.argv.index("--")
schemas = {}
for path in sys.argv[1:split]:
    crd = yaml.safe_load(open(path))
    for version in crd["spec"]["versions"]:
        key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
        schemas[key] = version["schema"]["openAPIV3Schema"]

failed = False
for path in sys.argv[split + 1:]:
    for doc in yaml.safe_load_all(open(path)):
        if not doc:
            continue
        key = (doc["apiVersion"], doc["kind"])
        name = f"{path}: {doc['kind']}/{doc['metadata']['name']}"
        if key not in schemas:
            print(f"FAIL {name}: no CRD for {key}")
            failed = True
            continue
        errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(doc), key=str)
        if errors:
            failed = True
            for error in errors:
                print(f"FAIL {name}: {'.'.join(map(str, error.absolute_path))}: {error.message}")
        else:
            print(f"PASS {name}")
sys.exit(1 if failed else 0)
