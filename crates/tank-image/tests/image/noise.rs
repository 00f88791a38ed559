//! Deterministic bytes that do not compress (xorshift64), for layers whose size must not
//! shrink under gzip or zstd.

/// A stream of pseudo-random bytes from a seed.
pub(crate) struct Noise {
    state: u64,
}

impl Noise {
    /// The stream of `seed` (0 is allowed: the state is never zero).
    pub(crate) fn new(seed: u64) -> Noise {
        Noise { state: seed | 1 }
    }

    /// Fills `buffer` with the next bytes of the stream.
    pub(crate) fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// `length` bytes of the stream of `seed`.
pub(crate) fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut bytes = vec![0_u8; length];
    Noise::new(seed).fill(&mut bytes);
    bytes
}
