//! The run as a picture: five panels over the same time axis (seconds
//! from the opening), so that a glance shows what gave way first.

use std::path::Path;

use plotters::prelude::*;

use super::analysis::Second;
use super::faults::Injected;
use super::monitor::Tick;

type Line = (String, RGBColor, Vec<(f64, f64)>);

const ORANGE: RGBColor = RGBColor(230, 120, 0);
const PURPLE: RGBColor = RGBColor(120, 60, 170);
const DARK_RED: RGBColor = RGBColor(140, 0, 0);
const GREY: RGBColor = RGBColor(150, 150, 150);
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Faults are drawn on every panel as shaded spans, from when each began
/// to when its target answered again, labelled on the first panel.
pub fn draw(
    path: &Path,
    title: &str,
    seconds: &[Second],
    ticks: &[Tick],
    opens_s: f64,
    faults: &[Injected],
) -> anyhow::Result<()> {
    let at = |s: &Second| s.t as f64 + 0.5;
    let series = |f: &dyn Fn(&Second) -> f64| seconds.iter().map(|s| (at(s), f(s))).collect::<Vec<_>>();
    let mut components: Vec<String> = ticks.iter().flat_map(|t| t.cpu.keys().cloned()).collect();
    components.sort();
    components.dedup();
    let cpu: Vec<Line> = components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let points = ticks.iter().map(|t| (t.at_s - opens_s, t.cpu.get(c).copied().unwrap_or(0.0))).collect();
            (c.clone(), PALETTE[i % PALETTE.len()], points)
        })
        .collect();
    let panels: Vec<(&str, Vec<Line>)> = vec![
        (
            "Arrivals and bookings per second",
            vec![
                ("arrivals/s".into(), BLUE, series(&|s| s.arrivals as f64)),
                ("bookings/s".into(), GREEN, series(&|s| s.bookings as f64)),
            ],
        ),
        (
            "First-dose places left, citizens in flight",
            vec![
                (
                    "places left".into(),
                    ORANGE,
                    seconds.iter().filter_map(|s| Some((at(s), s.remaining_places? as f64))).collect(),
                ),
                ("citizens in flight".into(), PURPLE, series(&|s| s.citizens_in_flight as f64)),
            ],
        ),
        (
            "p99 latency (ms)",
            vec![
                ("all requests".into(), RED, series(&|s| s.p99_ms)),
                ("POST /bookings".into(), DARK_RED, series(&|s| s.book_p99_ms)),
            ],
        ),
        (
            "Errors per second",
            vec![
                ("503 shed".into(), ORANGE, series(&|s| s.shed as f64)),
                ("other 5xx".into(), RED, series(&|s| (s.server_errors - s.shed) as f64)),
                ("timeouts".into(), BLACK, series(&|s| s.timeouts as f64)),
                ("connections dropped, accept queue full".into(), PURPLE, series(&|s| s.listen_overflows as f64)),
            ],
        ),
        ("CPU, % of one core", cpu),
    ];
    let x_min = seconds.first().map_or(0.0, |s| s.t as f64);
    let x_max = seconds.last().map_or(1.0, |s| s.t as f64 + 1.0).max(x_min + 1.0);

    let root = SVGBackend::new(path, (1100, 1500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(40);
    header.draw_text(title, &("sans-serif", 20).into_text_style(&header), (20, 12))?;
    for (area, (caption, lines)) in body.split_evenly((panels.len(), 1)).iter().zip(panels) {
        let y_max = lines.iter().flat_map(|l| l.2.iter().map(|p| p.1)).fold(0.0f64, f64::max).max(1.0) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(64)
            .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
        chart.configure_mesh().x_desc("seconds from the opening").light_line_style(WHITE.mix(0.0)).draw()?;
        chart.draw_series(LineSeries::new(vec![(0.0, 0.0), (0.0, y_max)], GREY.stroke_width(1)))?;
        for (i, fault) in faults.iter().enumerate() {
            let from = fault.began_s - opens_s;
            let to = fault.back_s.or(fault.ended_s).map_or(x_max, |t| t - opens_s).max(from + 0.3);
            chart.draw_series(std::iter::once(Rectangle::new([(from, 0.0), (to, y_max)], RED.mix(0.12).filled())))?;
            if caption.starts_with("Arrivals") {
                let at = (from, y_max * (0.95 - 0.08 * (i % 4) as f64));
                chart.draw_series(std::iter::once(Text::new(fault.fault.clone(), at, ("sans-serif", 13))))?;
            }
        }
        for (label, color, points) in lines {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(GREY)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
