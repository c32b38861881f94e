//! The read latency table as a chart (issue 14: flatness visible at a glance): per dashboard
//! type, the worst p99 over its parameters and windows, one bar per size filled, against the
//! 10 ms bar. A PNG, drawn with plotters' bitmap backend and the system's DejaVu Sans (the
//! machine kind's `fonts-dejavu-core`): no font service at run time.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor;
use plotters::style::{register_font, FontStyle};

use crate::reads::ReadFigure;

/// Where Debian installs the font (`fonts-dejavu-core`).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// The bar (docs/guarantees.md 7): p99 ≤ 10 ms.
const BAR_MS: f64 = 10.0;
const COLORS: [RGBColor; 3] = [RGBColor(90, 155, 212), RGBColor(237, 125, 49), RGBColor(112, 173, 71)];

/// Draws `reads` (per size filled, its figures) into `path`.
pub fn draw(path: &Path, reads: &[(u64, Vec<ReadFigure>)]) -> anyhow::Result<()> {
    let font: &'static [u8] = Box::leak(std::fs::read(FONT)?.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, font).map_err(|_| anyhow::anyhow!("{FONT} is not a font"))?;
    // Types in the table's order; per type and size, the worst p99.
    let mut types: Vec<&str> = Vec::new();
    let mut worst: BTreeMap<(&str, usize), f64> = BTreeMap::new();
    for (i, (_, figures)) in reads.iter().enumerate() {
        for f in figures {
            if !types.contains(&f.kind) {
                types.push(f.kind);
            }
            let w = worst.entry((f.kind, i)).or_insert(0.0);
            *w = w.max(f.p99_ms);
        }
    }
    let top = worst.values().copied().fold(BAR_MS * 1.5, f64::max) * 1.05;
    let (width, row) = (1200u32, 34u32);
    let height = 110 + row * types.len() as u32;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Read latency p99 per dashboard type (worst of its filters and windows), uncached", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(210)
        .build_cartesian_2d(0.0..top, 0.0..types.len() as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .y_labels(0)
        .x_desc("p99 (ms)")
        .label_style(("sans-serif", 14))
        .draw()?;
    let n = reads.len().max(1) as f64;
    for (t, kind) in types.iter().enumerate() {
        // Row t from the top: y runs upwards.
        let base = (types.len() - 1 - t) as f64;
        chart.draw_series(std::iter::once(Text::new(
            kind.to_string(),
            (-top * 0.01, base + 0.5),
            TextStyle::from(("sans-serif", 14).into_font())
                .pos(text_anchor::Pos::new(text_anchor::HPos::Right, text_anchor::VPos::Center)),
        )))?;
        for (i, _) in reads.iter().enumerate() {
            let ms = worst.get(&(*kind, i)).copied().unwrap_or(0.0);
            let (y0, y1) = (base + 0.1 + 0.8 * i as f64 / n, base + 0.1 + 0.8 * (i + 1) as f64 / n);
            let color = COLORS[i % COLORS.len()];
            chart.draw_series(std::iter::once(Rectangle::new([(0.0, y0), (ms, y1)], color.filled())))?;
        }
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(BAR_MS, 0.0), (BAR_MS, types.len() as f64)],
            RED.stroke_width(2),
        )))?
        .label("the bar: 10 ms")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    for (i, (size, _)) in reads.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(std::iter::once(Rectangle::new([(0.0, 0.0), (0.0, 0.0)], color.filled())))?
            .label(format!("{size} traces"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}
