//! Median, range and per-pair ratios of repeated measurements.

/// The median and the range of a set of measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Summary {
    /// The middle value (the mean of the two middle ones for an even count).
    pub(crate) median: f64,
    /// The smallest value.
    pub(crate) min: f64,
    /// The largest value.
    pub(crate) max: f64,
}

/// The summary of `values`; `None` when there are none (or any is NaN).
pub(crate) fn summarize(values: &[f64]) -> Option<Summary> {
    if values.is_empty() || values.iter().any(|value| value.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    };
    Some(Summary {
        median,
        min: sorted[0],
        max: sorted[sorted.len() - 1],
    })
}

/// `ours[i] / theirs[i]` for each pair of runs made in the same round; pairs with a zero
/// denominator are left out, and so are the runs one side lacks.
pub(crate) fn pair_ratios(ours: &[f64], theirs: &[f64]) -> Vec<f64> {
    ours.iter()
        .zip(theirs)
        .filter(|(_, theirs)| **theirs > 0.0)
        .map(|(ours, theirs)| ours / theirs)
        .collect()
}

/// A duration in seconds as text with a unit that keeps three significant-ish digits:
/// `4.2 ms`, `312 ms`, `1.84 s`, `73.1 s`.
pub(crate) fn format_seconds(seconds: f64) -> String {
    if seconds < 0.01 {
        format!("{:.1} ms", seconds * 1000.0)
    } else if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 10.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{seconds:.1} s")
    }
}

/// A ratio as `0.42×`.
pub(crate) fn format_ratio(ratio: f64) -> String {
    if ratio < 10.0 {
        format!("{ratio:.2}×")
    } else {
        format!("{ratio:.1}×")
    }
}

/// A byte count as `12.3 MiB` (or KiB, GiB).
pub(crate) fn format_bytes(bytes: u64) -> String {
    let bytes = bytes as f64;
    const KIB: f64 = 1024.0;
    if bytes < KIB * KIB {
        format!("{:.1} KiB", bytes / KIB)
    } else if bytes < KIB * KIB * KIB {
        format!("{:.1} MiB", bytes / KIB / KIB)
    } else {
        format!("{:.2} GiB", bytes / KIB / KIB / KIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts_and_the_range() {
        let odd = summarize(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            odd,
            Summary {
                median: 3.0,
                min: 1.0,
                max: 5.0
            }
        );
        let even = summarize(&[4.0, 1.0, 3.0, 10.0]).unwrap();
        assert_eq!(even.median, 3.5);
        assert_eq!((even.min, even.max), (1.0, 10.0));
        let one = summarize(&[2.5]).unwrap();
        assert_eq!((one.median, one.min, one.max), (2.5, 2.5, 2.5));
    }

    #[test]
    fn nothing_to_summarize() {
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        assert_eq!(
            pair_ratios(&[1.0, 3.0, 2.0], &[2.0, 3.0, 8.0]),
            vec![0.5, 1.0, 0.25]
        );
        // A missing or zero anchor run gives no ratio for that round.
        assert_eq!(pair_ratios(&[1.0, 3.0, 2.0], &[2.0, 0.0]), vec![0.5]);
    }

    #[test]
    fn formatting_picks_a_unit() {
        assert_eq!(format_seconds(0.0042), "4.2 ms");
        assert_eq!(format_seconds(0.312), "312 ms");
        assert_eq!(format_seconds(1.8449), "1.84 s");
        assert_eq!(format_seconds(73.14), "73.1 s");
        assert_eq!(format_ratio(0.4249), "0.42×");
        assert_eq!(format_ratio(12.34), "12.3×");
        assert_eq!(format_bytes(2048), "2.0 KiB");
        assert_eq!(format_bytes(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024), "3.00 GiB");
    }
}
