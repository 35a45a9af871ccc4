"""Feeds the identity MLLP listener with python-hl7's MLLPClient (a third-party HL7 client) and
prints, as JSON, the MSA and ERR segments of each acknowledgement, as parsed by python-hl7."""
import json
import sys

import hl7
from hl7.client import MLLPClient

host, port, authority = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def a28(control, ipp, ins=""):
    pid3 = f"{ipp}^^^CHU&{authority}&ISO^PI"
    if ins:
        pid3 += f"~{ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS"
    fields = [
        "PID", "", "", pid3, "", "LE GOFF^ANNE^MARIE^^^^L~MORVAN^ANNE^^^^^D", "", "19690214", "F",
        "", "", "^^^^^^BDL^^29019",
    ] + [""] * 20 + ["QUAL" if ins else "PROV"]
    return "\r".join([
        f"MSH|^~\\&|DXCARE|CHU_RENNES|MEGALIS|ARS_BZH|20261125120000||ADT^A28^ADT_A05|{control}|P|2.5",
        "EVN||20261125120000",
        "|".join(fields),
    ]) + "\r"


def summary(raw):
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    text = text.strip("\x0b\x1c\r")
    msg = hl7.parse(text)
    out = {"msa": str(msg.segment("MSA"))}
    try:
        out["err"] = str(msg.segment("ERR"))
    except KeyError:
        out["err"] = None
    return out


ins = sys.argv[4]
wrong_key = ins[:13] + ("00" if ins[13:] != "00" else "01")
results = {}
with MLLPClient(host, port) as client:
    results["first"] = summary(client.send_message(a28("E2E-1", "IPP-E2E", ins)))
    results["redelivered"] = summary(client.send_message(a28("E2E-1", "IPP-E2E", ins)))
    results["junk"] = summary(client.send(b"this is not MLLP\r"))
    results["wrong_key"] = summary(client.send_message(a28("E2E-2", "IPP-E2E-2", wrong_key)))
    results["a40_unknown"] = summary(client.send_message(
        "MSH|^~\\&|DXCARE|CHU_RENNES|MEGALIS|ARS_BZH|20261125120000||ADT^A40^ADT_A39|E2E-3|P|2.5\r"
        f"PID|||IPP-E2E^^^CHU&{authority}&ISO^PI\rMRG|NOBODY^^^CHU&{authority}&ISO^PI\r"))
    results["after"] = summary(client.send_message(a28("E2E-4", "IPP-E2E-4")))
print(json.dumps(results))
