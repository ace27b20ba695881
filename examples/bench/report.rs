//! The benchmark's report: a line per measure as it is taken, and a Markdown table at the end.

use std::time::Duration;

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(Default)]
pub struct Report {
    rows: Vec<(String, String, String)>,
}

impl Report {
    pub fn row(&mut self, what: &str, figure: String, note: String) {
        println!("  {what}: {figure} {note}");
        self.rows.push((what.to_owned(), figure, note));
    }

    pub fn print(&self) {
        println!("\n| measure | figure | relative / note |\n|---|---|---|");
        for (w, f, n) in &self.rows {
            println!("| {w} | {f} | {n} |");
        }
    }
}
