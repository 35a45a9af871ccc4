"""Lints and renders the megalis-operator chart with Helm's own engine (helm-python-sdk).

Usage: chart.py CHART_DIR OUT_DIR VALUES_NAME... [--refuse JSON_VALUES...]
For each values file CHART_DIR/ci/<name>-values.yaml: strict lint, then render as release
"megalis" in namespace "megalis-system", written to OUT_DIR/<name>.yaml (NOTES.txt to
OUT_DIR/<name>-NOTES.txt). Values after --refuse must be refused by values.schema.json.
Prints a JSON report on the last line.
"""

import json
import os
import sys

import helm_python as helm
import yaml

chart_dir, out_dir = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
refuse = args[args.index("--refuse") + 1:] if "--refuse" in args else []
names = args[: args.index("--refuse")] if "--refuse" in args else args

report = {"lint": {}, "rendered": {}, "refused": []}
chart = helm.Chart.load(chart_dir)
for name in names:
    values_path = os.path.join(chart_dir, "ci", f"{name}-values.yaml")
    values = yaml.safe_load(open(values_path)) or {}
    lint = helm.lint(chart_dir, values, strict=True, kube_version="v1.33.0")
    report["lint"][name] = [m for m in lint["messages"] if m["severity"] >= 2] + [{"error": e} for e in lint["errors"]]
    manifests = chart.render(values, name="megalis", namespace="megalis-system", is_install=True)
    documents = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            open(os.path.join(out_dir, f"{name}-NOTES.txt"), "w").write(text)
        elif text.strip():
            documents.append(text)
    open(os.path.join(out_dir, f"{name}.yaml"), "w").write("\n---\n".join(documents))
    report["rendered"][name] = len(documents)

for values in refuse:
    try:
        chart.render(json.loads(values), name="megalis", namespace="megalis-system", is_install=True)
        report["refused"].append(None)
    except helm.HelmError as error:
        report["refused"].append(str(error))

print(json.dumps(report))
