"""Writes an EDF+ file with pyedflib (a third-party writer, EDFlib underneath) and what
pyedflib itself reads back from it, for platform/waveforms/tests/pyedflib.rs.

Usage: write_edf_plus.py OUT_DIR  ->  OUT_DIR/recording.edf, OUT_DIR/expected.json
"""

import datetime
import json
import math
import pathlib
import sys

import numpy as np
import pyedflib

out = pathlib.Path(sys.argv[1])
edf_path = out / "recording.edf"
seconds = 20
window_start, window_duration = 4.0, 3.0

channels = [
    # label, unit, rate, physical min/max, digital min/max
    ("EEG Fp1", "uV", 256, -500.0, 500.0, -32768, 32767),
    ("EEG O2", "uV", 256, -500.0, 500.0, -32768, 32767),
    ("ECG", "mV", 512, -5.0, 5.0, -2048, 2047),
]
signals = []
headers = []
for i, (label, unit, rate, pmin, pmax, dmin, dmax) in enumerate(channels):
    t = np.arange(seconds * rate) / rate
    if unit == "uV":
        x = 80.0 * np.sin(2 * math.pi * (8 + 2 * i) * t) + 20.0 * np.cos(2 * math.pi * 0.5 * t)
    else:
        x = 1.2 * np.exp(-(((t % 1.0) - 0.35) / 0.01) ** 2 / 2) - 0.1
    signals.append(x)
    headers.append({
        "label": label,
        "dimension": unit,
        "sample_frequency": rate,
        "physical_min": pmin,
        "physical_max": pmax,
        "digital_min": dmin,
        "digital_max": dmax,
        "transducer": "AgAgCl electrode" if unit == "uV" else "ECG electrode",
        "prefilter": "HP:0.1Hz LP:70Hz",
    })

writer = pyedflib.EdfWriter(str(edf_path), len(channels), file_type=pyedflib.FILETYPE_EDFPLUS)
writer.setSignalHeaders(headers)
writer.setStartdatetime(datetime.datetime(2026, 11, 24, 9, 30, 15))
writer.setPatientName("Jeanne_Dupontel")
writer.setPatientCode("PAT-0042")
writer.setTechnician("Tech_Nicien")
writer.writeSamples(signals)
writer.writeAnnotation(2.5, 1.0, "Yeux fermés")
writer.writeAnnotation(5.25, -1, "Pointe")
writer.writeAnnotation(6.5, 0.5, "Artefact & <bruit>")
writer.writeAnnotation(15.0, -1, "Photostimulation")
writer.close()

reader = pyedflib.EdfReader(str(edf_path))
expected = {
    "labels": reader.getSignalLabels(),
    "rates": [float(r) for r in reader.getSampleFrequencies()],
    "units": [reader.getPhysicalDimension(i) for i in range(reader.signals_in_file)],
    "start": reader.getStartdatetime().isoformat(),
    "duration": float(reader.getFileDuration()),
    "window": [window_start, window_duration],
    "samples": [],
    "annotations": [],
}
for i in range(reader.signals_in_file):
    rate = reader.getSampleFrequency(i)
    first = int(round(window_start * rate))
    count = int(round(window_duration * rate))
    expected["samples"].append([float(v) for v in reader.readSignal(i, first, count)])
onsets, durations, texts = reader.readAnnotations()
for onset, duration, text in zip(onsets, durations, texts):
    expected["annotations"].append([float(onset), float(duration), text])
reader.close()
(out / "expected.json").write_text(json.dumps(expected, ensure_ascii=False))
