"""Drives /fhir/Patient with a third-party FHIR client (PyPI fhirpy) as two hospital systems
and a reader would, and validates every resource returned with an independent FHIR R4
implementation (PyPI fhir.resources, R4B models).

Usage: fhir_patient_client.py BASE_URL CA_FILE RENNES_TOKEN BREST_TOKEN READER_TOKEN RENNES_OID
BREST_OID NIR. Prints a JSON object of what it saw; exits non-zero on the first failure."""
import json
import sys

from fhir.resources.R4B import get_fhir_model_class
from fhirpy import SyncFHIRClient

base, ca, rennes_token, brest_token, reader_token, rennes, brest, nir = sys.argv[1:9]
NIR_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"


def client(token):
    return SyncFHIRClient(
        base,
        authorization=f"Bearer {token}",
        requests_config={"verify": ca},
        extra_headers={"Content-Type": "application/fhir+json"},
    )


validated = []


def valid(resource):
    """Validates a resource (dict) and every resource inside a Bundle."""
    d = resource if isinstance(resource, dict) else resource.serialize()
    get_fhir_model_class(d["resourceType"]).model_validate(d)
    validated.append(d["resourceType"])
    for e in d.get("entry", []):
        valid(e["resource"])
    return d


def patient(authority, ipp, family, given, birth_date, ins=None):
    identifiers = [{"system": f"urn:oid:{authority}", "value": ipp,
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PI"}]}}]
    if ins:
        identifiers.append({"system": NIR_SYSTEM, "value": ins})
    return {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [{"use": "official", "family": family, "given": given}],
        "gender": "female",
        "birthDate": birth_date,
        "extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
            "valueAddress": {"extension": [{
                "url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code",
                "valueCoding": {"code": "29019"}}]},
        }],
    }


out = {}
rennes_client, brest_client, reader = client(rennes_token), client(brest_token), client(reader_token)

# Rennes creates its record: a new regional patient.
created = rennes_client.resource("Patient", **patient(rennes, "R-1001", "Le Goff", ["Anne-Marie", "Soizic"], "1985-05-12", nir))
created.save()
out["created"] = valid(created)
# Brest sends the same person, typed differently and without INS: linked to the same patient.
brest_record = brest_client.resource("Patient", **patient(brest, "B-77", "LE GOFF", ["ANNE MARIE"], "1985-05-12", nir))
brest_record.save()
out["linked"] = valid(brest_record)

# A reader searches, reads, matches and cross-references.
found = reader.resources("Patient").search(family="le go", birthdate="1985").fetch_all()
out["search"] = [valid(p) for p in found]
out["read"] = valid(reader.reference("Patient", created["id"]).to_resource())
probe = patient(brest, "x", "Le Gof", ["Anne-Marie"], "1985-05-12")
out["match"] = valid(reader.execute("Patient/$match", method="post", data={
    "resourceType": "Parameters",
    "parameter": [{"name": "resource", "resource": probe}, {"name": "count", "valueInteger": 5}],
}))
out["pix"] = valid(reader.execute("Patient/$ihe-pix", method="get", params={
    "sourceIdentifier": f"urn:oid:{rennes}|R-1001", "targetSystem": f"urn:oid:{brest}"}))
out["metadata"] = valid(reader.execute("metadata", method="get"))
out["validated"] = len(validated)
print(json.dumps(out))
