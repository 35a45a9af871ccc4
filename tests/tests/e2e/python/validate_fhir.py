"""Validates FHIR R4 resources with an independent implementation (PyPI fhir.resources, R4B
models). Reads a JSON array of resources on stdin; prints one line per invalid resource and
exits 1 if any is invalid, 0 otherwise."""
import json
import sys

from fhir.resources.R4B import get_fhir_model_class

failures = 0
resources = json.load(sys.stdin)
for i, resource in enumerate(resources):
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as e:  # report every invalid resource, not only the first
        failures += 1
        print(f"resource {i} ({resource.get('resourceType')}/{resource.get('id')}): {e}")
print(f"{len(resources) - failures} valid, {failures} invalid")
sys.exit(1 if failures else 0)
