//! Measures the peak RSS of extracting a generated layer of many entries, to see what
//! tank-layer's per-entry bookkeeping costs. Not a test (it takes minutes for a million
//! entries); run by hand:
//!
//! ```text
//! cargo run --release -p tank-layer --example bookkeeping_rss -- files 1000000 /tmp/x
//! cargo run --release -p tank-layer --example bookkeeping_rss -- dirs 1000000 /tmp/y
//! ```
//!
//! `files`: N empty files in directories of 1000 (`dNNNN/fNNNN`); `dirs`: N directories
//! (`dNNNN/eNNNN/`). The tar is generated while it is read, so only the extraction's own
//! memory shows. Prints VmHWM (peak RSS) from /proc/self/status before and after.

use std::io::{self, Read};

/// A ustar header block for an empty entry.
fn header(name: &str, typeflag: u8, mode: u32) -> [u8; 512] {
    let mut block = [0_u8; 512];
    block[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let width = field.len() - 1;
        field[..width].copy_from_slice(format!("{value:0width$o}").as_bytes());
    };
    octal(&mut block[100..108], u64::from(mode));
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    octal(&mut block[124..136], 0);
    octal(&mut block[136..148], 1_700_000_000);
    block[156] = typeflag;
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|byte| u32::from(*byte)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block
}

/// Generates the layer block by block.
struct Layer {
    dirs_only: bool,
    count: u64,
    next: u64,
    block: [u8; 512],
    position: usize,
    trailer: u8,
}

impl Read for Layer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.position == 512 {
            if self.next < self.count {
                let (group, item) = (self.next / 1000, self.next % 1000);
                self.block = if self.dirs_only {
                    header(&format!("d{group:04}/e{item:04}/"), b'5', 0o755)
                } else if item == 0 {
                    // A directory entry for each group, then its files.
                    header(&format!("d{group:04}/"), b'5', 0o755)
                } else {
                    header(&format!("d{group:04}/f{item:04}"), b'0', 0o644)
                };
                self.next += 1;
            } else if self.trailer < 2 {
                self.block = [0; 512];
                self.trailer += 1;
            } else {
                return Ok(0);
            }
            self.position = 0;
        }
        let n = buf.len().min(512 - self.position);
        buf[..n].copy_from_slice(&self.block[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (kind, count, dest) = match args.as_slice() {
        [_, kind, count, dest] => (kind.as_str(), count.parse::<u64>()?, dest),
        _ => return Err("usage: bookkeeping_rss files|dirs COUNT DEST".into()),
    };
    std::fs::create_dir_all(dest)?;
    let before = peak_rss_kib();
    let layer = Layer {
        dirs_only: kind == "dirs",
        count,
        next: 0,
        block: [0; 512],
        position: 512,
        trailer: 0,
    };
    let started = std::time::Instant::now();
    let report = tank_layer::extract(
        layer,
        tank_layer::Compression::None,
        std::path::Path::new(dest),
        &tank_layer::ExtractOptions::default(),
    )?;
    let after = peak_rss_kib();
    println!(
        "{kind} {count}: {} entries, {} files, {} dirs in {:.1?}; peak RSS {before} KiB before, \
         {after} KiB after: {:.1} bytes/entry",
        report.entries,
        report.files,
        report.dirs,
        started.elapsed(),
        (after.saturating_sub(before) * 1024) as f64 / count.max(1) as f64
    );
    Ok(())
}
