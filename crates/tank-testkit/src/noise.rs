//! Deterministic pseudo-random data for tests and benchmarks: the one xorshift64 generator.
//!
//! Not for anything secret: the point is bytes that are the same for the same seed on every
//! machine, that no compressor shrinks, and that repeat in no short period (so a test cannot
//! pass by reading the wrong offset).

/// A xorshift64 stream of 64-bit words (Marsaglia's 13, 7, 17 triple); the same seed gives the
/// same words.
#[derive(Clone, Debug)]
pub struct Xorshift {
    state: u64,
}

impl Xorshift {
    /// A stream starting from `seed`. The low bit is set (`seed | 1`), because xorshift never
    /// leaves the all-zero state.
    pub fn new(seed: u64) -> Xorshift {
        Xorshift { state: seed | 1 }
    }
}

impl Iterator for Xorshift {
    type Item = u64;

    /// The next word; the stream never ends.
    fn next(&mut self) -> Option<u64> {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        Some(self.state)
    }
}

/// `length` bytes that no compressor shrinks: the little-endian words of
/// [`Xorshift::new(seed)`](Xorshift::new), cut to `length`.
pub fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(length + 8);
    for word in Xorshift::new(seed) {
        if out.len() >= length {
            break;
        }
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.truncate(length);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        assert_eq!(noise(7, 1000), noise(7, 1000));
        assert_ne!(noise(7, 1000), noise(8, 1000));
        // A shorter run is a prefix of a longer one.
        assert_eq!(noise(7, 13)[..], noise(7, 1000)[..13]);
        assert_eq!(noise(7, 0), Vec::<u8>::new());
        assert_eq!(noise(7, 13).len(), 13);
    }

    #[test]
    fn the_words_are_xorshift64_from_the_odd_seed() {
        // Seeds 0 and 1 both start from state 1; the first word is its three xorshift64 steps.
        let mut state = 1u64;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        assert_eq!(Xorshift::new(0).next(), Some(state));
        assert_eq!(Xorshift::new(0).next(), Xorshift::new(1).next());
        assert_eq!(noise(1, 8), state.to_le_bytes());
    }

    #[test]
    fn noise_does_not_compress() {
        use std::io::Write as _;
        let data = noise(42, 64 * 1024);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&data).expect("gzip into memory");
        let compressed = encoder.finish().expect("gzip into memory");
        assert!(compressed.len() >= data.len(), "{} bytes", compressed.len());
    }
}
