//! A [`Window`] drawn as an accessible, deterministic SVG.
//!
//! * Accessibility: `role="img"`, a `<title>` and a `<desc>` (French first, then English)
//!   referenced by `aria-labelledby`, naming the kind of recording, channel count, duration,
//!   sampling rate, the channels, the scale and the annotations; the drawing itself is
//!   `aria-hidden`.
//! * ECG: the standard paper, 25 mm/s and 10 mm/mV, with 1 mm and 5 mm lines; one SVG unit is
//!   a quarter millimetre and the `width`/`height` are given in millimetres so that a printout
//!   has the true scale. Windows longer than [`RenderOptions::ecg_max_width`] allows at 25 mm/s
//!   are compressed in time, and the description says at which speed.
//! * EEG (and other polygraphy): a fixed plot width and, per channel, a scale bar labelled in
//!   µV (or the channel's own unit when it is not a voltage).
//! * Size: each trace is drawn from at most two points (the minimum and maximum, in time order)
//!   per column of one SVG unit, so the SVG grows with the number of channels and the width,
//!   never with the sampling rate or the window length. Annotations drawn are capped too.
//! * Safety: every text that comes from a file (labels, units, annotation texts) is escaped,
//!   and characters XML 1.0 forbids are replaced, so a file cannot inject markup into the page.
//!   Nothing about the patient is drawn: times are relative to the start of the recording.
//! * No `style` attributes (the portal's CSP), only presentation attributes and classes.

use std::fmt::Write;

use crate::{Modality, Window};

/// SVG units per millimetre of ECG paper.
const ECG_UNITS_PER_MM: f64 = 4.0;
/// 25 mm/s and 10 mm/mV.
const ECG_MM_PER_S: f64 = 25.0;
const ECG_MM_PER_MV: f64 = 10.0;
/// Row height of an ECG lead: 30 mm, ±1.5 mV around the baseline, a multiple of 5 mm so that
/// every baseline sits on a major line.
const ECG_ROW_MM: f64 = 30.0;
const EEG_ROW: f64 = 70.0;
const LEFT: f64 = 90.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 40.0;
const RIGHT_ECG: f64 = 20.0;
const RIGHT_EEG: f64 = 90.0;
/// Characters of a label or annotation text drawn (the full text of an annotation is in its
/// tooltip, up to [`TOOLTIP_CHARS`]).
const LABEL_CHARS: usize = 20;
const MARKER_CHARS: usize = 32;
const TOOLTIP_CHARS: usize = 200;
/// Annotations listed in the description.
const DESC_ANNOTATIONS: usize = 20;

/// How to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// Width of the plotting area of an EEG, in SVG units (≈ CSS pixels): also the number of
    /// min/max columns per channel.
    pub eeg_width: u32,
    /// The widest an ECG plotting area may be, in SVG units (4 per mm): 3000 is 750 mm, 30 s
    /// at 25 mm/s. Longer windows are drawn at a lower paper speed.
    pub ecg_max_width: u32,
    /// Draw with these conventions rather than those the reader guessed.
    pub modality: Option<Modality>,
    /// Prefix of the `id`s of the title and description, so that several plots can share a
    /// page (ASCII letters, digits, `-` and `_` are kept, anything else is dropped).
    pub id_prefix: String,
    /// At most this many annotations are drawn; the description says how many were left out.
    pub max_annotations: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            eeg_width: 1200,
            ecg_max_width: 3000,
            modality: None,
            id_prefix: "waveform".into(),
            max_annotations: 100,
        }
    }
}

/// Escapes text for XML content and attribute values, and replaces the characters XML 1.0
/// does not allow (control characters, U+FFFE, U+FFFF) by U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn truncate(text: &str, max: usize) -> String {
    let t = text.trim();
    if t.chars().count() <= max {
        t.to_string()
    } else {
        let mut s: String = t.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// A coordinate with one decimal, without a trailing `.0` nor `-0`.
fn n(v: f64) -> String {
    let s = format!("{:.1}", v);
    let s = s.strip_suffix(".0").unwrap_or(&s).to_string();
    if s == "-0" { "0".into() } else { s }
}

/// A number for people: up to `decimals` decimals, trailing zeros removed, decimal comma in
/// French.
fn human(v: f64, decimals: usize, french: bool) -> String {
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    let s = if s == "-0" { "0".to_string() } else { s };
    if french { s.replace('.', ",") } else { s }
}

/// One channel's trace reduced to columns, and how it is scaled.
struct Trace {
    /// Points in time order per column; `None` breaks the line (no data).
    points: Vec<Option<f32>>,
    x: Vec<f64>,
    center: f64,
    /// SVG units per physical unit.
    units_per_value: f64,
    /// EEG scale bar: length in SVG units and its label.
    bar: Option<(f64, String)>,
}

/// Min/max per column. Column `c` holds the samples whose time falls in `[c, c+1)` SVG units;
/// when there are fewer samples than columns each sample is its own point.
fn reduce(samples: &[f32], fs: f64, units_per_s: f64) -> (Vec<Option<f32>>, Vec<f64>) {
    let mut points = Vec::new();
    let mut xs = Vec::new();
    if samples.is_empty() || fs <= 0.0 {
        return (points, xs);
    }
    let per_column = fs / units_per_s;
    if per_column <= 2.0 {
        for (i, &v) in samples.iter().enumerate() {
            points.push(v.is_finite().then_some(v));
            xs.push(i as f64 / fs * units_per_s);
        }
        return (points, xs);
    }
    let columns = (samples.len() as f64 / per_column).ceil() as usize;
    for c in 0..columns {
        let from = ((c as f64 * per_column).ceil() as usize).min(samples.len());
        let to = (((c + 1) as f64 * per_column).ceil() as usize).min(samples.len());
        let mut lo: Option<(usize, f32)> = None;
        let mut hi: Option<(usize, f32)> = None;
        for (i, &v) in samples[from..to].iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            if lo.is_none_or(|(_, m)| v < m) {
                lo = Some((i, v));
            }
            if hi.is_none_or(|(_, m)| v > m) {
                hi = Some((i, v));
            }
        }
        let x = c as f64 + 0.5;
        match (lo, hi) {
            (Some(a), Some(b)) => {
                let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
                points.push(Some(first.1));
                xs.push(x);
                if first.0 != second.0 {
                    points.push(Some(second.1));
                    xs.push(x);
                }
            }
            _ => {
                points.push(None);
                xs.push(x);
            }
        }
    }
    (points, xs)
}

/// A 1-2-5 value at least `v`.
fn nice(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v * 0.999_999 {
            return m * p;
        }
    }
    10.0 * p
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Draws `window` as SVG.
pub fn render_svg(window: &Window, options: &RenderOptions) -> String {
    let modality = options.modality.unwrap_or(window.modality);
    let ecg = modality == Modality::Ecg;
    let duration = window.window.duration();
    let start = window.window.start();

    // Horizontal scale.
    let natural_ecg = duration * ECG_MM_PER_S * ECG_UNITS_PER_MM;
    let width = if ecg {
        natural_ecg.clamp(100.0, f64::from(options.ecg_max_width.max(100)))
    } else {
        f64::from(options.eeg_width.max(100))
    };
    let units_per_s = width / duration;
    let row = if ecg {
        ECG_ROW_MM * ECG_UNITS_PER_MM
    } else {
        EEG_ROW
    };
    let right = if ecg { RIGHT_ECG } else { RIGHT_EEG };
    let rows = window.channels.len().max(1) as f64;
    let plot_h = rows * row;
    let total_w = LEFT + width + right;
    let total_h = TOP + plot_h + BOTTOM;

    let traces: Vec<Trace> = window
        .channels
        .iter()
        .map(|c| {
            let (points, x) = reduce(&c.samples, c.sampling_rate, units_per_s);
            let finite: Vec<f64> = points.iter().flatten().map(|&v| f64::from(v)).collect();
            let center = median(finite.clone());
            let uv = c.microvolts_per_unit();
            let (units_per_value, bar) = match (ecg, uv) {
                (true, Some(uv)) => (ECG_MM_PER_MV * ECG_UNITS_PER_MM * uv / 1000.0, None),
                _ => {
                    // 98th percentile of the distance to the centre: one artefact does not
                    // flatten the whole channel.
                    let mut dev: Vec<f64> = finite.iter().map(|v| (v - center).abs()).collect();
                    dev.sort_by(f64::total_cmp);
                    let amplitude = dev
                        .get((dev.len() as f64 * 0.98) as usize)
                        .or(dev.last())
                        .copied()
                        .unwrap_or(0.0);
                    let display = uv.unwrap_or(1.0);
                    let value = nice(amplitude * display);
                    let half = row * 0.45;
                    let label = match uv {
                        // Clinicians read EEG in µV and ECG-sized amplitudes in mV.
                        Some(_) if value >= 1000.0 => {
                            format!("{} mV", human(value / 1000.0, 3, true))
                        }
                        Some(_) => format!("{} µV", human(value, 3, true)),
                        None => format!("{} {}", human(value, 3, true), c.unit.trim())
                            .trim()
                            .to_string(),
                    };
                    (half / (value / display), Some((half, label)))
                }
            };
            Trace {
                points,
                x,
                center,
                units_per_value,
                bar,
            }
        })
        .collect();

    let mut svg = String::new();
    let prefix: String = options
        .id_prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let prefix = if prefix.is_empty() {
        "waveform".to_string()
    } else {
        prefix
    };
    let (w_attr, h_attr) = if ecg {
        (
            format!("{}mm", n(total_w / ECG_UNITS_PER_MM)),
            format!("{}mm", n(total_h / ECG_UNITS_PER_MM)),
        )
    } else {
        (n(total_w), n(total_h))
    };
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" lang=\"fr\" \
         aria-labelledby=\"{prefix}-title {prefix}-desc\" viewBox=\"0 0 {} {}\" \
         width=\"{w_attr}\" height=\"{h_attr}\" font-family=\"sans-serif\" class=\"waveform\">",
        n(total_w),
        n(total_h)
    );
    let (title, desc) = texts(window, ecg, units_per_s, &traces, options);
    let _ = write!(
        svg,
        "<title id=\"{prefix}-title\">{}</title><desc id=\"{prefix}-desc\">{}</desc>",
        escape(&title),
        escape(&desc)
    );
    svg.push_str("<g aria-hidden=\"true\">");
    let _ = write!(
        svg,
        "<rect class=\"paper\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
        n(LEFT),
        n(TOP),
        n(width),
        n(plot_h),
        if ecg { "#fff8f6" } else { "#ffffff" }
    );
    if ecg {
        grid(&mut svg, width, plot_h, units_per_s);
    }

    // Traces.
    svg.push_str(
        "<g class=\"traces\" fill=\"none\" stroke=\"#111111\" stroke-width=\"0.8\" \
         stroke-linejoin=\"round\" stroke-linecap=\"round\">",
    );
    for (i, t) in traces.iter().enumerate() {
        let mid = TOP + row * (i as f64 + 0.5);
        let mut d = String::new();
        let mut pen_down = false;
        let mut last_x = f64::NAN;
        for (p, &x) in t.points.iter().zip(&t.x) {
            match p {
                Some(v) => {
                    let y = mid - (f64::from(*v) - t.center) * t.units_per_value;
                    if pen_down && x == last_x {
                        // The second point of a min/max column: a vertical stroke.
                        let _ = write!(d, "V{}", n(y));
                    } else {
                        let pen = if pen_down { "L" } else { "M" };
                        let _ = write!(d, "{pen}{} {}", n(LEFT + x), n(y));
                    }
                    pen_down = true;
                    last_x = x;
                }
                None => pen_down = false,
            }
        }
        if !d.is_empty() {
            let _ = write!(svg, "<path d=\"{d}\"/>");
        }
    }
    svg.push_str("</g>");

    // Labels and EEG scale bars.
    svg.push_str("<g class=\"labels\" font-size=\"12\" fill=\"#111111\">");
    for (i, (c, t)) in window.channels.iter().zip(&traces).enumerate() {
        let mid = TOP + row * (i as f64 + 0.5);
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            n(LEFT - 8.0),
            n(mid + 4.0),
            escape(&truncate(&c.label, LABEL_CHARS))
        );
        if let Some((half, label)) = &t.bar {
            let x = LEFT + width + 12.0;
            let _ = write!(
                svg,
                "<path class=\"scale-bar\" d=\"M{x} {}V{}\" stroke=\"#111111\" stroke-width=\"2\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>",
                n(mid - half / 2.0),
                n(mid + half / 2.0),
                n(x + 6.0),
                n(mid + 4.0),
                escape(&truncate(label, LABEL_CHARS)),
                x = n(x),
            );
        }
    }
    svg.push_str("</g>");

    axis(&mut svg, start, duration, width, plot_h, units_per_s);
    markers(&mut svg, window, width, plot_h, units_per_s, options);
    svg.push_str("</g></svg>");
    svg
}

/// The ECG paper: 1 mm lines when they are at least 2.5 units apart, 5 mm lines always (at a
/// compressed speed the vertical ones thin out to one a second, then none: the number of lines
/// stays bounded by the width).
fn grid(svg: &mut String, width: f64, height: f64, units_per_s: f64) {
    let mm = ECG_UNITS_PER_MM;
    let time_minor = 0.04 * units_per_s;
    let time_major = 0.2 * units_per_s;
    let mut minor = String::new();
    let mut major = String::new();
    let vertical = |step: f64, out: &mut String| {
        let count = (width / step + 1e-6).floor() as usize;
        for k in 0..=count {
            let _ = write!(
                out,
                "M{} {}v{}",
                n(LEFT + k as f64 * step),
                n(TOP),
                n(height)
            );
        }
    };
    if time_minor >= 2.5 {
        vertical(time_minor, &mut minor);
    }
    if time_major >= 2.5 {
        vertical(time_major, &mut major);
    } else if units_per_s >= 2.5 {
        vertical(units_per_s, &mut major);
    }
    let rows = (height / mm + 1e-6).round() as usize;
    for k in 0..=rows {
        let line = format!("M{} {}h{}", n(LEFT), n(TOP + k as f64 * mm), n(width));
        if k % 5 == 0 {
            major.push_str(&line);
        } else {
            minor.push_str(&line);
        }
    }
    let _ = write!(
        svg,
        "<g class=\"grid\" fill=\"none\"><path class=\"grid-minor\" d=\"{minor}\" \
         stroke=\"#f3c4bd\" stroke-width=\"0.4\"/><path class=\"grid-major\" d=\"{major}\" \
         stroke=\"#e08a7e\" stroke-width=\"0.8\"/></g>"
    );
}

/// Seconds from the start of the recording under the plot, ticks at least 60 units apart.
fn axis(svg: &mut String, start: f64, duration: f64, width: f64, height: f64, units_per_s: f64) {
    const STEPS: [f64; 16] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
        7200.0,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|s| s * units_per_s >= 60.0)
        .unwrap_or_else(|| duration.max(1.0));
    let base = TOP + height;
    let _ = write!(
        svg,
        "<g class=\"axis\" font-size=\"11\" fill=\"#111111\"><path d=\"M{} {}h{}\" \
         stroke=\"#111111\" stroke-width=\"1\"/>",
        n(LEFT),
        n(base),
        n(width)
    );
    let first = (start / step - 1e-9).ceil() as i64;
    let last = ((start + duration) / step + 1e-9).floor() as i64;
    for k in first..=last {
        let t = k as f64 * step;
        let x = LEFT + (t - start) * units_per_s;
        let _ = write!(
            svg,
            "<path d=\"M{} {}v5\" stroke=\"#111111\" stroke-width=\"1\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{} s</text>",
            n(x),
            n(base),
            n(x),
            n(base + 17.0),
            human(t, 2, true)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">Temps (s) / Time (s)</text></g>",
        n(LEFT + width / 2.0),
        n(base + 34.0)
    );
}

/// Annotations: a dashed line at the onset, a band over the duration, the text above the plot
/// on alternating levels, the fuller text as a tooltip.
fn markers(
    svg: &mut String,
    window: &Window,
    width: f64,
    height: f64,
    units_per_s: f64,
    options: &RenderOptions,
) {
    let start = window.window.start();
    svg.push_str("<g class=\"annotations\" font-size=\"11\" fill=\"#1f4e9c\">");
    for (i, a) in window
        .annotations
        .iter()
        .take(options.max_annotations)
        .enumerate()
    {
        let x = (LEFT + (a.onset - start) * units_per_s).clamp(LEFT, LEFT + width);
        let _ = write!(
            svg,
            "<g class=\"annotation\"><title>{}</title>",
            escape(&truncate(&a.text, TOOLTIP_CHARS))
        );
        if let Some(d) = a.duration.filter(|d| *d > 0.0) {
            let x_end = (LEFT + (a.onset + d - start) * units_per_s).clamp(LEFT, LEFT + width);
            let _ = write!(
                svg,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#1f4e9c\" \
                 fill-opacity=\"0.10\"/>",
                n(x),
                n(TOP),
                n((x_end - x).max(0.5)),
                n(height)
            );
        }
        let y = if i % 2 == 0 { TOP - 22.0 } else { TOP - 8.0 };
        let _ = write!(
            svg,
            "<path d=\"M{} {}V{}\" stroke=\"#1f4e9c\" stroke-width=\"1\" \
             stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
            n(x),
            n(y + 3.0),
            n(TOP + height),
            n(x + 2.0),
            n(y),
            escape(&truncate(&a.text, MARKER_CHARS))
        );
    }
    svg.push_str("</g>");
}

/// The title and description, French then English.
fn texts(
    window: &Window,
    ecg: bool,
    units_per_s: f64,
    traces: &[Trace],
    options: &RenderOptions,
) -> (String, String) {
    let count = window.channels.len();
    let duration = window.window.duration();
    let rates: Vec<f64> = window.channels.iter().map(|c| c.sampling_rate).collect();
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rates.iter().copied().fold(0.0, f64::max);
    let rate = |fr: bool| {
        if rates.is_empty() {
            "—".to_string()
        } else if (hi - lo).abs() < 1e-9 {
            format!("{} Hz", human(lo, 2, fr))
        } else {
            format!("{}–{} Hz", human(lo, 2, fr), human(hi, 2, fr))
        }
    };
    let (dur_fr, dur_en) = (human(duration, 2, true), human(duration, 2, false));
    let plural = if count == 1 { "" } else { "s" };
    let title = if ecg {
        format!(
            "ECG {count} dérivation{plural}, {dur_fr} s, {} — {count}-lead ECG, {dur_en} s, {}",
            rate(true),
            rate(false)
        )
    } else {
        format!(
            "EEG {count} voie{plural}, {dur_fr} s, {} — EEG, {count} channel{plural}, {dur_en} s, {}",
            rate(true),
            rate(false)
        )
    };

    let start = window.window.start();
    let end = window.window.end();
    let labels: Vec<String> = window
        .channels
        .iter()
        .map(|c| truncate(&c.label, LABEL_CHARS))
        .collect();
    let labels = labels.join(", ");
    let speed = units_per_s / ECG_UNITS_PER_MM;
    let shown = window.annotations.len().min(options.max_annotations);
    let listed: Vec<&crate::Annotation> = window
        .annotations
        .iter()
        .take(shown.min(DESC_ANNOTATIONS))
        .collect();
    let list = |fr: bool| {
        listed
            .iter()
            .map(|a| {
                format!(
                    "{} s {}",
                    human(a.onset, 2, fr),
                    truncate(&a.text, MARKER_CHARS)
                )
            })
            .collect::<Vec<_>>()
            .join(if fr { " ; " } else { "; " })
    };
    let mut fr = format!(
        "Fenêtre de {} s à {} s depuis le début de l'enregistrement. {} : {labels}. ",
        human(start, 2, true),
        human(end, 2, true),
        if ecg { "Dérivations" } else { "Voies" }
    );
    let mut en = format!(
        "Window from {} s to {} s after the start of the recording. {}: {labels}. ",
        human(start, 2, false),
        human(end, 2, false),
        if ecg { "Leads" } else { "Channels" }
    );
    if ecg {
        let _ = write!(
            fr,
            "Papier {} mm/s, 10 mm/mV, grille de 1 mm et 5 mm.",
            human(speed, 2, true)
        );
        let _ = write!(
            en,
            "Paper {} mm/s, 10 mm/mV, 1 mm and 5 mm grid.",
            human(speed, 2, false)
        );
        if traces.iter().any(|t| t.bar.is_some()) {
            fr.push_str(" Voies sans unité de tension : échelle automatique avec barre.");
            en.push_str(" Channels without a voltage unit: automatic scale with a bar.");
        }
    } else {
        fr.push_str("Une barre d'échelle par voie.");
        en.push_str("One scale bar per channel.");
    }
    let total = window.annotations.len();
    if total == 0 {
        fr.push_str(" Aucune annotation.");
        en.push_str(" No annotations.");
    } else {
        let _ = write!(
            fr,
            " {total} annotation{} : {}",
            if total == 1 { "" } else { "s" },
            list(true)
        );
        let _ = write!(
            en,
            " {total} annotation{}: {}",
            if total == 1 { "" } else { "s" },
            list(false)
        );
        if total > listed.len() {
            let _ = write!(fr, " ; et {} autres", total - listed.len());
            let _ = write!(en, "; and {} more", total - listed.len());
        }
        fr.push('.');
        en.push('.');
        if total > shown {
            let _ = write!(fr, " {} annotations non dessinées.", total - shown);
            let _ = write!(en, " {} annotations not drawn.", total - shown);
        }
    }
    (title, format!("{fr} — {en}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_removes_markup_and_forbidden_characters() {
        assert_eq!(
            escape("<script>&\"'\u{1}\u{ffff}\n"),
            "&lt;script&gt;&amp;&quot;&#39;\u{fffd}\u{fffd} "
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(n(1.04), "1");
        assert_eq!(n(-0.01), "0");
        assert_eq!(n(2.25), "2.2");
        assert_eq!(human(2.5, 2, true), "2,5");
        assert_eq!(human(10.0, 2, false), "10");
        assert_eq!(nice(73.0), 100.0);
        assert_eq!(nice(20.0), 20.0);
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(0.3), 0.5);
    }

    #[test]
    fn reduction_keeps_extremes_in_time_order_and_breaks_on_gaps() {
        // 100 samples per column: column 0 has its max before its min.
        let mut s = vec![0.0f32; 300];
        s[10] = 5.0;
        s[90] = -5.0;
        for v in &mut s[100..200] {
            *v = f32::NAN;
        }
        let (points, xs) = reduce(&s, 100.0, 1.0);
        assert_eq!(points[0], Some(5.0));
        assert_eq!(points[1], Some(-5.0));
        assert_eq!(points[2], None);
        assert_eq!(xs[2], 1.5);
        assert!(points.len() <= 6);
        // Fewer samples than columns: every sample is a point.
        let (points, xs) = reduce(&[1.0, 2.0, 3.0], 1.0, 10.0);
        assert_eq!(points.len(), 3);
        assert_eq!(xs, vec![0.0, 10.0, 20.0]);
    }
}
