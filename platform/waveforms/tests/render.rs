//! SVG rendering, checked by parsing the output with an XML parser.

#[path = "common/edf_writer.rs"]
mod edf_writer;

use std::collections::BTreeMap;
use std::io::Cursor;

use megalis_waveforms::edf::EdfReader;
use megalis_waveforms::{
    Annotation, AnnotationScan, Channel, Modality, RenderOptions, TimeWindow, Window, aecg,
    render_svg,
};
use quick_xml::Reader;
use quick_xml::events::Event;

/// What the tests look at in an SVG: every element with its attributes and decoded text.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    text: String,
}

/// Parses the SVG (failing the test if it is not well-formed XML) into a flat element list.
fn parse(svg: &str) -> Vec<Element> {
    let mut reader = Reader::from_str(svg);
    let mut out: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut roots = 0;
    loop {
        match reader.read_event().expect("the SVG is well-formed XML") {
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if open.is_empty() {
                    roots += 1;
                }
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.unescape_value().unwrap().into_owned(),
                        )
                    })
                    .collect();
                out.push(Element {
                    name,
                    attrs,
                    text: String::new(),
                });
                // Empty elements are closed at once; Start elements wait for their End.
                if reader.buffer_position() > 0
                    && !svg[..reader.buffer_position() as usize].ends_with("/>")
                {
                    open.push(out.len() - 1);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                if let Some(&i) = open.last() {
                    out[i].text.push_str(&t.decode().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.decode().unwrap().as_ref() {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => r.resolve_char_ref().unwrap().expect("a known reference"),
                };
                if let Some(&i) = open.last() {
                    out[i].text.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(roots, 1, "one root element");
    assert!(open.is_empty());
    out
}

fn find<'a>(elements: &'a [Element], name: &str) -> Vec<&'a Element> {
    elements.iter().filter(|e| e.name == name).collect()
}

fn with_class<'a>(elements: &'a [Element], class: &str) -> Vec<&'a Element> {
    elements
        .iter()
        .filter(|e| e.attrs.get("class").map(String::as_str) == Some(class))
        .collect()
}

fn sine(label: &str, fs: f64, seconds: f64, amplitude: f32) -> Channel {
    let n = (fs * seconds) as usize;
    Channel {
        label: label.into(),
        unit: "uV".into(),
        sampling_rate: fs,
        samples: (0..n)
            .map(|i| {
                let t = i as f64 / fs;
                amplitude * (2.0 * std::f64::consts::PI * 10.0 * t).sin() as f32
            })
            .collect(),
    }
}

fn eeg(channels: usize, fs: f64, start: f64, seconds: f64) -> Window {
    Window {
        modality: Modality::Eeg,
        window: TimeWindow::new(start, seconds).unwrap(),
        channels: (0..channels)
            .map(|c| sine(&format!("EEG C{c}"), fs, seconds, 40.0))
            .collect(),
        annotations: Vec::new(),
    }
}

#[test]
fn ecg_from_aecg_has_the_paper_grid_and_accessible_texts() {
    let doc = include_str!("fixtures/aecg_rhythm.xml");
    let ecg = aecg::parse(doc.as_bytes()).unwrap();
    let window = ecg.window(TimeWindow::new(0.0, 2.0).unwrap()).unwrap();
    let svg = render_svg(&window, &RenderOptions::default());
    let elements = parse(&svg);

    let root = &elements[0];
    assert_eq!(root.name, "svg");
    assert_eq!(root.attrs["role"], "img");
    assert_eq!(root.attrs["lang"], "fr");
    assert_eq!(
        root.attrs["aria-labelledby"],
        "waveform-title waveform-desc"
    );
    assert!(root.attrs["width"].ends_with("mm"), "true paper scale");
    let title = find(&elements, "title")[0];
    assert_eq!(title.attrs["id"], "waveform-title");
    assert_eq!(
        title.text,
        "ECG 12 dérivations, 2 s, 500 Hz — 12-lead ECG, 2 s, 500 Hz"
    );
    let desc = find(&elements, "desc")[0];
    assert_eq!(desc.attrs["id"], "waveform-desc");
    assert!(
        desc.text.starts_with("Fenêtre de 0 s à 2 s"),
        "{}",
        desc.text
    );
    assert!(desc.text.contains("Papier 25 mm/s, 10 mm/mV"));
    assert!(desc.text.contains("Paper 25 mm/s, 10 mm/mV"));
    assert!(desc.text.contains("I, II, III, aVR, aVL, aVF, V1"));
    assert!(
        !svg.contains("DUPONTEL"),
        "the subject's name is never drawn"
    );

    // 1 mm lines: 2 s at 25 mm/s is 50 mm, so 51 vertical lines, plus 12 rows × 30 mm of
    // horizontal ones minus every fifth (major).
    let minor = &with_class(&elements, "grid-minor")[0].attrs["d"];
    assert_eq!(minor.matches('M').count(), 51 + 360 - 72);
    let major = &with_class(&elements, "grid-major")[0].attrs["d"];
    assert_eq!(major.matches('M').count(), 11 + 73);

    let labels: Vec<&str> = find(&elements, "text")
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    for lead in ["I", "aVR", "V6"] {
        assert!(labels.contains(&lead), "{lead} in {labels:?}");
    }
    assert!(
        labels.contains(&"1 s") && labels.contains(&"2 s"),
        "time axis: {labels:?}"
    );
    assert!(
        with_class(&elements, "scale-bar").is_empty(),
        "the grid is the ECG's scale"
    );
    // 10 mm/mV at 4 units per mm: the R peak of II (1.07 mV) rises ~42.8 units above the
    // baseline. Check the trace of II spans about that.
    let traces = &elements
        .iter()
        .filter(|e| {
            e.name == "path"
                && !e.attrs.contains_key("class")
                && e.attrs.get("d").is_some_and(|d| d.contains('L'))
        })
        .collect::<Vec<_>>();
    // Points of a trace path: `M x y`, `L x y`, or `V y` (second point of a column).
    let ys = |d: &str| -> Vec<f64> {
        let mut out = Vec::new();
        let mut rest = d;
        while let Some(command) = rest.chars().next() {
            let end = rest[1..]
                .find(['M', 'L', 'V'])
                .map_or(rest.len(), |i| i + 1);
            let body = &rest[1..end];
            let y = if command == 'V' {
                body
            } else {
                body.split(' ').nth(1).unwrap()
            };
            out.push(y.parse::<f64>().unwrap());
            rest = &rest[end..];
        }
        out
    };
    assert_eq!(traces.len(), 12);
    // Traces are in channel order; II is the second row (centre at 40 + 1.5 × 120 = 220).
    let lead_ii = ys(&traces[1].attrs["d"]);
    assert!(lead_ii.iter().all(|v| (160.0..=280.0).contains(v)));
    // 2 s at 100 units/s: 200 columns of 2.5 samples, at most two points each.
    assert!((250..=400).contains(&lead_ii.len()), "{}", lead_ii.len());
    let span = lead_ii.iter().cloned().fold(f64::MIN, f64::max)
        - lead_ii.iter().cloned().fold(f64::MAX, f64::min);
    assert!((45.0..60.0).contains(&span), "II spans {span} units");

    // Deterministic.
    assert_eq!(svg, render_svg(&window, &RenderOptions::default()));
}

#[test]
fn text_from_files_is_escaped() {
    let mut w = eeg(2, 256.0, 0.0, 2.0);
    w.channels[0].label = "<b>&\"Fp1'".into();
    w.channels[1].unit = "<i>".into();
    w.annotations.push(Annotation {
        onset: 0.5,
        duration: Some(0.5),
        text: "\"/><script>alert(1)</script>&\u{1}".into(),
    });
    let options = RenderOptions {
        id_prefix: "a\"><script>".into(),
        ..RenderOptions::default()
    };
    let svg = render_svg(&w, &options);
    assert!(!svg.contains("<script"), "{svg}");
    assert!(!svg.contains("<b>") && !svg.contains("<i>"));
    let elements = parse(&svg);
    assert_eq!(
        elements[0].attrs["aria-labelledby"],
        "ascript-title ascript-desc"
    );
    let texts: Vec<&str> = find(&elements, "text")
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    assert!(texts.contains(&"<b>&\"Fp1'"), "{texts:?}");
    let annotation = &with_class(&elements, "annotation");
    assert_eq!(annotation.len(), 1);
    let tooltip = find(&elements, "title")
        .into_iter()
        .find(|t| t.text.contains("script"))
        .unwrap();
    assert_eq!(tooltip.text, "\"/><script>alert(1)</script>&\u{fffd}");
    // Channel 2 has a unit that is not a voltage: its scale bar says the unit, escaped.
    assert!(texts.iter().any(|t| t.ends_with(" <i>")), "{texts:?}");
}

#[test]
fn eeg_has_one_scale_bar_per_channel_and_a_time_axis() {
    let mut w = eeg(4, 256.0, 30.0, 10.0);
    w.annotations = vec![
        Annotation {
            onset: 31.0,
            duration: None,
            text: "Yeux fermés".into(),
        },
        Annotation {
            onset: 35.0,
            duration: Some(2.0),
            text: "Hyperpnée".into(),
        },
    ];
    let svg = render_svg(&w, &RenderOptions::default());
    let elements = parse(&svg);
    let title = &find(&elements, "title")[0].text;
    assert_eq!(
        title,
        "EEG 4 voies, 10 s, 256 Hz — EEG, 4 channels, 10 s, 256 Hz"
    );
    // An ECG channel of a polysomnography: its bar reads in mV.
    let mut with_ecg = w.clone();
    with_ecg.channels.push(Channel {
        unit: "mV".into(),
        ..sine("ECG", 256.0, 10.0, 1.2)
    });
    let other = parse(&render_svg(&with_ecg, &RenderOptions::default()));
    assert!(find(&other, "text").iter().any(|t| t.text == "2 mV"));
    let desc = &find(&elements, "desc")[0].text;
    assert!(
        desc.contains("2 annotations : 31 s Yeux fermés ; 35 s Hyperpnée."),
        "{desc}"
    );
    assert!(
        desc.contains("2 annotations: 31 s Yeux fermés; 35 s Hyperpnée."),
        "{desc}"
    );
    assert_eq!(with_class(&elements, "scale-bar").len(), 4);
    let texts: Vec<&str> = find(&elements, "text")
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    // A 40 µV sine: the bar reads the next 1-2-5 value.
    assert_eq!(
        texts.iter().filter(|t| **t == "50 µV").count(),
        4,
        "{texts:?}"
    );
    for tick in ["30 s", "32 s", "40 s"] {
        assert!(texts.contains(&tick), "{tick} in {texts:?}");
    }
    assert!(texts.contains(&"Yeux fermés") && texts.contains(&"Hyperpnée"));
    assert_eq!(with_class(&elements, "annotation").len(), 2);
    assert!(
        with_class(&elements, "grid-minor").is_empty(),
        "no paper grid for EEG"
    );
}

#[test]
fn svg_size_is_bounded_whatever_the_rate_and_length() {
    let short = render_svg(&eeg(4, 256.0, 0.0, 10.0), &RenderOptions::default());
    let long = render_svg(&eeg(4, 2048.0, 0.0, 600.0), &RenderOptions::default());
    parse(&long);
    // Four channels × 1200 columns × 2 points × at most ~14 bytes, plus texts.
    let bound = 4 * 1200 * 2 * 14 + 20_000;
    assert!(short.len() < bound, "{}", short.len());
    assert!(long.len() < bound, "{}", long.len());
    assert!(
        long.len() as f64 <= short.len() as f64 * 1.3,
        "600 s at 2048 Hz ({}) vs 10 s at 256 Hz ({})",
        long.len(),
        short.len()
    );
}

#[test]
fn annotations_drawn_are_capped_and_counted() {
    let mut w = eeg(1, 100.0, 0.0, 10.0);
    w.annotations = (0..150)
        .map(|i| Annotation {
            onset: i as f64 / 15.0,
            duration: None,
            text: format!("n{i}"),
        })
        .collect();
    let svg = render_svg(&w, &RenderOptions::default());
    let elements = parse(&svg);
    assert_eq!(with_class(&elements, "annotation").len(), 100);
    let desc = &find(&elements, "desc")[0].text;
    assert!(desc.contains("et 130 autres"), "{desc}");
    assert!(desc.contains("50 annotations non dessinées"));
    assert!(desc.contains("50 annotations not drawn"));
}

#[test]
fn gaps_break_the_trace_and_long_ecgs_are_compressed() {
    let mut w = eeg(1, 100.0, 0.0, 10.0);
    w.modality = Modality::Ecg;
    for v in &mut w.channels[0].samples[300..500] {
        *v = f32::NAN;
    }
    let svg = render_svg(&w, &RenderOptions::default());
    let elements = parse(&svg);
    let trace = elements
        .iter()
        .find(|e| {
            e.name == "path"
                && e.attrs.get("d").is_some_and(|d| d.contains('L'))
                && !e.attrs.contains_key("class")
        })
        .unwrap();
    assert_eq!(
        trace.attrs["d"].matches('M').count(),
        2,
        "the gap lifts the pen"
    );

    let long = Window {
        modality: Modality::Ecg,
        window: TimeWindow::new(0.0, 60.0).unwrap(),
        channels: vec![Channel {
            unit: "mV".into(),
            ..sine("II", 500.0, 60.0, 1.0)
        }],
        annotations: Vec::new(),
    };
    let svg = render_svg(&long, &RenderOptions::default());
    let elements = parse(&svg);
    let desc = &find(&elements, "desc")[0].text;
    assert!(desc.contains("Papier 12,5 mm/s"), "{desc}");
    assert!(desc.contains("Paper 12.5 mm/s"), "{desc}");
    // A 24 h Holter-length window: the grid thins out rather than growing with the duration.
    let day = Window {
        window: TimeWindow::new(0.0, 86_400.0).unwrap(),
        channels: vec![Channel {
            unit: "mV".into(),
            ..sine("II", 10.0, 86_400.0, 1.0)
        }],
        ..long.clone()
    };
    let day_svg = render_svg(&day, &RenderOptions::default());
    parse(&day_svg);
    assert!(day_svg.len() < 200_000, "{}", day_svg.len());
    let view_box = &elements[0].attrs["viewBox"];
    let width: f64 = view_box.split(' ').nth(2).unwrap().parse().unwrap();
    assert!(width <= 3000.0 + 110.0, "{view_box}");
}

#[test]
fn edf_to_svg_never_shows_the_patient_field() {
    use edf_writer::{Header, Part, Signal, record, tals};
    let header = Header::edf_plus_c(
        3,
        "1",
        vec![
            Signal::new("Fp1-F7", "uV", (-500.0, 500.0), (-2048, 2047), 200),
            Signal::annotations(30),
        ],
    );
    let mut file = header.bytes();
    for i in 0..3 {
        let s: Vec<i16> = (0..200)
            .map(|k| ((k * 37 + i * 11) % 400) as i16 - 200)
            .collect();
        let ann = tals(i as f64, &[(i as f64 + 0.2, None, "Clignement")], 30);
        file.extend(record(&[Part::Samples(&s), Part::Bytes(&ann)]));
    }
    let reader = EdfReader::open(Cursor::new(file)).unwrap();
    assert!(
        reader
            .summary()
            .patient_identification
            .contains("Haagse_Harry")
    );
    let window = reader
        .read_window(
            TimeWindow::new(0.0, 3.0).unwrap(),
            AnnotationScan::UpToWindowEnd,
        )
        .unwrap();
    let svg = render_svg(&window, &RenderOptions::default());
    let elements = parse(&svg);
    assert!(!svg.contains("Haagse") && !svg.contains("MCH-0234567") && !svg.contains("1951"));
    assert!(!svg.contains("Startdate") && !svg.contains("BK/JOP"));
    assert_eq!(with_class(&elements, "annotation").len(), 3);
    assert!(
        find(&elements, "title")[0]
            .text
            .starts_with("EEG 1 voie, 3 s, 200 Hz")
    );
}
