//! What a full bench run leaves besides its console tables, with `-- --write`: the figures of the
//! README's Performance section (between its `bench:begin` and `bench:end` markers), dated and
//! with the machine they came from, and `docs/scale.svg`, scrape time and memory against the
//! number of targets. Figures are only ever written by a run, never by hand.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// A table for the README: its lead-in sentence, column names and rows.
struct Table {
    lead: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// One point of the scale curve.
pub struct Point {
    pub kind: &'static str,
    pub targets: usize,
    pub ms: f64,
    pub rss_mib: f64,
}

static TABLES: Mutex<Vec<Table>> = Mutex::new(Vec::new());
static POINTS: Mutex<Vec<Point>> = Mutex::new(Vec::new());

/// Keep a table for the README.
pub fn table(lead: &str, header: &[&str], rows: Vec<Vec<String>>) {
    TABLES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Table {
            lead: lead.to_owned(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows,
        });
}

/// Keep a point of the scale curve.
pub fn point(point: Point) {
    POINTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(point);
}

const BEGIN: &str = "<!-- bench:begin (written by `cargo bench --bench scrape -- --write`) -->";
const END: &str = "<!-- bench:end -->";

/// Replace the README's figures and write `docs/scale.svg` under `root`.
pub fn write(root: &Path) {
    let mut block = format!("{BEGIN}\n{}\n", machine());
    for table in TABLES.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        let _ = write!(
            block,
            "\n{}\n\n| {} |\n|{}\n",
            table.lead,
            table.header.join(" | "),
            "---|".repeat(table.header.len())
        );
        for row in &table.rows {
            let _ = writeln!(block, "| {} |", row.join(" | "));
        }
    }
    let points = POINTS.lock().unwrap_or_else(PoisonError::into_inner);
    if !points.is_empty() {
        block
            .push_str("\n![Scrape time and VmRSS against the number of targets](docs/scale.svg)\n");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::write(root.join("docs/scale.svg"), svg(&points)).unwrap();
    }
    block.push_str(END);
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (before, rest) = readme
        .split_once(BEGIN)
        .expect("README.md has no bench:begin marker");
    let (_, after) = rest
        .split_once(END)
        .expect("README.md has no bench:end marker");
    std::fs::write(&readme_path, format!("{before}{block}{after}")).unwrap();
    println!("wrote the figures into README.md and docs/scale.svg");
}

/// Date, cores, CPU model, kernel and the peers' Debian versions.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let peers: Vec<String> = [
        "prometheus-mysqld-exporter",
        "prometheus-redis-exporter",
        "prometheus-blackbox-exporter",
        "mariadb-server",
        "redis-server",
    ]
    .iter()
    .filter_map(|package| {
        let out = std::process::Command::new("dpkg-query")
            .args(["-W", "-f", "${Version}", package])
            .output()
            .ok()?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !version.is_empty()).then(|| format!("{package} {version}"))
    })
    .collect();
    format!(
        "Measured {} on {cores} cores ({model}), Linux {}, release build; Debian packages: {}.",
        fanout_exporter::server::utc(std::time::SystemTime::now()),
        kernel.trim(),
        if peers.is_empty() {
            "none".to_owned()
        } else {
            peers.join(", ")
        }
    )
}

/// Two panels side by side: median scrape time (log scale) and VmRSS against N (log scale), one
/// line per kind.
fn svg(points: &[Point]) -> String {
    const W: f64 = 420.0;
    const H: f64 = 300.0;
    const LEFT: f64 = 60.0;
    const TOP: f64 = 30.0;
    const PLOT_W: f64 = 330.0;
    const PLOT_H: f64 = 220.0;
    let kinds: Vec<&str> = points.iter().fold(Vec::new(), |mut kinds, p| {
        if !kinds.contains(&p.kind) {
            kinds.push(p.kind);
        }
        kinds
    });
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    let max_n = points.iter().map(|p| p.targets).max().unwrap_or(1).max(10) as f64;
    let x = |n: usize, panel: f64| {
        panel * W + LEFT + (n.max(1) as f64).log10() / max_n.log10() * PLOT_W
    };
    let max_ms = points.iter().map(|p| p.ms).fold(1.0f64, f64::max);
    let min_ms = points.iter().map(|p| p.ms).fold(max_ms, f64::min).max(0.01);
    let (lo, hi) = (
        min_ms.log10().floor(),
        max_ms.log10().ceil().max(min_ms.log10().floor() + 1.0),
    );
    let y_ms = |ms: f64| TOP + PLOT_H - (ms.max(0.01).log10() - lo) / (hi - lo) * PLOT_H;
    let max_rss = points.iter().map(|p| p.rss_mib).fold(10.0f64, f64::max);
    let rss_top = (max_rss / 50.0).ceil() * 50.0;
    let y_rss = |mib: f64| TOP + PLOT_H - mib / rss_top * PLOT_H;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        2.0 * W,
        H + 20.0
    );
    for (panel, title) in [
        (0.0, "median /metrics time, ms (log)"),
        (1.0, "VmRSS after, MiB"),
    ] {
        let x0 = panel * W + LEFT;
        let _ = writeln!(
            out,
            "<rect x=\"{x0}\" y=\"{TOP}\" width=\"{PLOT_W}\" height=\"{PLOT_H}\" fill=\"none\" stroke=\"#888\"/>\n\
             <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">{title}</text>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">targets (log)</text>",
            x0 + PLOT_W / 2.0,
            x0 + PLOT_W / 2.0,
            TOP + PLOT_H + 32.0
        );
        let mut n = 1;
        while n as f64 <= max_n {
            let xn = x(n, panel);
            let _ = writeln!(
                out,
                "<line x1=\"{xn:.1}\" y1=\"{TOP}\" x2=\"{xn:.1}\" y2=\"{}\" stroke=\"#eee\"/>\
                 <text x=\"{xn:.1}\" y=\"{}\" text-anchor=\"middle\">{n}</text>",
                TOP + PLOT_H,
                TOP + PLOT_H + 14.0
            );
            n *= 10;
        }
    }
    let mut decade = lo;
    while decade <= hi {
        let ms = 10f64.powf(decade);
        let y = y_ms(ms);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{ms}</text>",
            LEFT + PLOT_W,
            LEFT - 4.0,
            y + 4.0
        );
        decade += 1.0;
    }
    let mut mib = 0.0;
    while mib <= rss_top {
        let y = y_rss(mib);
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{mib}</text>",
            W + LEFT,
            W + LEFT + PLOT_W,
            W + LEFT - 4.0,
            y + 4.0
        );
        mib += rss_top / 5.0;
    }
    // The goals at 1,000 targets: 0.5 s and 60 MB.
    for (x0, y, label) in [
        (LEFT, y_ms(500.0), "goal 0.5 s"),
        (W + LEFT, y_rss(60.0), "goal 60 MB"),
    ] {
        let _ = writeln!(
            out,
            "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{}\" y=\"{:.1}\" fill=\"#666\">{label}</text>",
            x0 + PLOT_W,
            x0 + 4.0,
            y - 3.0
        );
    }
    for (i, kind) in kinds.iter().enumerate() {
        let color = colors[i % colors.len()];
        let series: Vec<&Point> = points.iter().filter(|p| p.kind == *kind).collect();
        for (panel, y) in [
            (0.0, &y_ms as &dyn Fn(f64) -> f64),
            (1.0, &y_rss as &dyn Fn(f64) -> f64),
        ] {
            let path: Vec<String> = series
                .iter()
                .map(|p| {
                    let value = if panel == 0.0 { p.ms } else { p.rss_mib };
                    format!("{:.1},{:.1}", x(p.targets, panel), y(value))
                })
                .collect();
            let _ = writeln!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
                path.join(" ")
            );
            for point in &path {
                let (px, py) = point.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    out,
                    "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{color}\"/>"
                );
            }
        }
        let lx = LEFT + 10.0 + i as f64 * 80.0;
        let _ = writeln!(
            out,
            "<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"4\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\">{kind}</text>",
            H + 8.0,
            lx + 16.0,
            H + 13.0
        );
    }
    out.push_str("</svg>\n");
    out
}
