//! Hand-written SVG charts (no plotting dependency): grouped bars of ratios on
//! a log scale around 1.0, and log-log lines.

use std::fmt::Write as _;

const COLORS: [&str; 12] = [
    "#d62728", "#ff9896", "#1f77b4", "#7f7f7f", "#c7c7c7", "#2ca02c", "#98df8a", "#9467bd", "#c5b0d5", "#8c564b",
    "#e377c2", "#bcbd22",
];

pub fn color(i: usize) -> &'static str {
    COLORS[i % COLORS.len()]
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn legend(out: &mut String, series: &[String], x: f64, y: f64, per_row: usize) {
    for (i, name) in series.iter().enumerate() {
        let (cx, cy) = (x + (i % per_row) as f64 * 150.0, y + (i / per_row) as f64 * 18.0);
        let _ = write!(
            out,
            r#"<rect x="{cx}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}" font-size="12">{}</text>"#,
            cy - 10.0,
            color(i),
            cx + 16.0,
            cy,
            esc(name)
        );
    }
}

/// Bars of `values[category][series]` (ratios, > 0), drawn up or down from
/// 1.0 on a log2 axis between `lo` and `hi`; values outside are clipped and
/// labelled with their value.
pub fn ratio_bars(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[String],
    values: &[Vec<Option<f64>>],
    lo: f64,
    hi: f64,
) -> String {
    let bar = 9.0;
    let group_w = bar * series.len() as f64 + 14.0;
    // Wide enough for the title and a legend row; the legend wraps to the width.
    let left = 70.0;
    let width = (left + group_w * categories.len() as f64 + 20.0).max(9.0 * title.len() as f64 + left + 20.0);
    let per_row = (((width - left) / 150.0) as usize).max(1);
    let (top, plot_h) = (60.0 + 18.0 * series.len().div_ceil(per_row) as f64, 320.0);
    let height = top + plot_h + 130.0;
    let (llo, lhi) = (lo.log2(), hi.log2());
    let y_of = |v: f64| top + plot_h * (lhi - v.clamp(lo, hi).log2()) / (lhi - llo);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"#
    );
    let _ = write!(s, r#"<text x="{left}" y="22" font-size="16" font-weight="bold">{}</text>"#, esc(title));
    legend(&mut s, series, left, 46.0, per_row);
    let mut tick = lo;
    while tick <= hi * 1.0001 {
        let y = y_of(tick);
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}" stroke="{}" stroke-width="{}"/><text x="{:.0}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#,
            width - 20.0,
            if (tick - 1.0).abs() < 1e-9 { "#000" } else { "#ddd" },
            if (tick - 1.0).abs() < 1e-9 { 1.5 } else { 1.0 },
            left - 6.0,
            y + 4.0,
            if tick < 1.0 { format!("{tick:.2}x") } else { format!("{tick:.0}x") }
        );
        tick *= 2.0;
    }
    let _ = write!(
        s,
        r#"<text transform="translate(16,{:.0}) rotate(-90)" font-size="12" text-anchor="middle">{}</text>"#,
        top + plot_h / 2.0,
        esc(y_label)
    );
    let one = y_of(1.0);
    for (c, cat) in categories.iter().enumerate() {
        let gx = left + group_w * c as f64 + 7.0;
        for (i, v) in values[c].iter().enumerate() {
            let x = gx + bar * i as f64;
            match v {
                Some(v) if *v > 0.0 => {
                    let y = y_of(*v);
                    let (y0, h) = if y < one { (y, one - y) } else { (one, y - one) };
                    let _ = write!(
                        s,
                        r#"<rect x="{x:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {v:.2}x</title></rect>"#,
                        bar - 1.0,
                        h.max(0.5),
                        color(i),
                        esc(cat),
                        esc(&series[i])
                    );
                    if *v > hi || *v < lo {
                        let ty = if *v > hi { y0 - 3.0 } else { y0 + h + 10.0 };
                        let _ = write!(
                            s,
                            r#"<text x="{:.1}" y="{ty:.1}" font-size="9" text-anchor="middle">{v:.0}</text>"#,
                            x + bar / 2.0
                        );
                    }
                }
                _ => {
                    let _ = write!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">x</text>"#,
                        x + bar / 2.0,
                        one - 2.0
                    );
                }
            }
        }
        let _ = write!(
            s,
            r#"<text transform="translate({:.1},{:.1}) rotate(-40)" font-size="11" text-anchor="end">{}</text>"#,
            gx + group_w / 2.0,
            top + plot_h + 14.0,
            esc(cat)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Lines of `points[series] = [(x, y)]` on log-log axes.
pub fn log_lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    x_fmt: fn(f64) -> String,
    y_fmt: fn(f64) -> String,
) -> String {
    let all: Vec<(f64, f64)> =
        series.iter().flat_map(|(_, p)| p.iter().copied()).filter(|&(x, y)| x > 0.0 && y > 0.0).collect();
    let (width, height, left, top, plot_w, plot_h) = (900.0, 580.0, 80.0, 110.0, 780.0, 380.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"#
    );
    let _ = write!(s, r#"<text x="{left}" y="22" font-size="16" font-weight="bold">{}</text>"#, esc(title));
    let names: Vec<String> = series.iter().map(|(n, _)| n.clone()).collect();
    legend(&mut s, &names, left, 46.0, 5);
    if all.is_empty() {
        s.push_str("</svg>\n");
        return s;
    }
    let decade = |v: f64, up: bool| if up { 10f64.powf(v.log10().ceil()) } else { 10f64.powf(v.log10().floor()) };
    let (xlo, xhi) = (all.iter().map(|p| p.0).fold(f64::MAX, f64::min), all.iter().map(|p| p.0).fold(0.0, f64::max));
    let (ylo, yhi) = (
        decade(all.iter().map(|p| p.1).fold(f64::MAX, f64::min), false),
        decade(all.iter().map(|p| p.1).fold(0.0, f64::max), true),
    );
    let (xlo, xhi) = (xlo.log2(), xhi.log2().max(xlo.log2() + 1.0));
    let (ylo, yhi) = (ylo.log10(), yhi.log10().max(ylo.log10() + 1.0));
    let px = |x: f64| left + plot_w * (x.log2() - xlo) / (xhi - xlo);
    let py = |y: f64| top + plot_h * (yhi - y.log10()) / (yhi - ylo);
    let mut d = ylo;
    while d <= yhi + 1e-9 {
        let y = top + plot_h * (yhi - d) / (yhi - ylo);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            y + 4.0,
            y_fmt(10f64.powf(d))
        );
        d += 1.0;
    }
    let mut xs: Vec<f64> = all.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for x in xs {
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1}" stroke="#eee"/><text x="{0:.1}" y="{2}" font-size="11" text-anchor="middle">{3}</text>"##,
            px(x),
            top + plot_h,
            top + plot_h + 16.0,
            x_fmt(x)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        left + plot_w / 2.0,
        top + plot_h + 40.0,
        esc(x_label)
    );
    let _ = write!(
        s,
        r#"<text transform="translate(18,{:.0}) rotate(-90)" font-size="12" text-anchor="middle">{}</text>"#,
        top + plot_h / 2.0,
        esc(y_label)
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let pts: Vec<String> = points
            .iter()
            .filter(|&&(x, y)| x > 0.0 && y > 0.0)
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"><title>{}</title></polyline>"#,
            pts.join(" "),
            color(i),
            esc(name)
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(s, r#"<circle cx="{x}" cy="{y}" r="3" fill="{}"/>"#, color(i));
        }
    }
    s.push_str("</svg>\n");
    s
}
