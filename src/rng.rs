//! The crate's one random generator: seedable, no global state, the same
//! numbers on every platform and backend.

/// SplitMix64: a small, fast, seedable generator with no global state.
pub(crate) struct SplitMix64(pub u64);

/// SplitMix64's increment: the k-th draw uses the state `seed + k·GAMMA`.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub(crate) fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// `n` standard normal samples (Box–Muller, one pair per two draws).
    ///
    /// SplitMix64's k-th draw depends only on the seed and k, so long runs
    /// are generated in parallel chunks that each start at their own
    /// offset: the samples are the same as one sequential run's.
    pub(crate) fn normals(&mut self, n: usize) -> Vec<f32> {
        use rayon::prelude::*;
        const PAIRS_PER_CHUNK: usize = 1 << 14;
        let pairs = n.div_ceil(2);
        let base = self.0;
        let mut out = vec![0f32; 2 * pairs];
        out.par_chunks_mut(2 * PAIRS_PER_CHUNK)
            .enumerate()
            .for_each(|(chunk, slice)| {
                let first_draw = (2 * chunk * PAIRS_PER_CHUNK) as u64;
                let mut rng = SplitMix64(base.wrapping_add(first_draw.wrapping_mul(GAMMA)));
                for pair in slice.chunks_exact_mut(2) {
                    let (u, v) = (rng.uniform(), rng.uniform());
                    let r = (-2.0 * u.ln()).sqrt();
                    let t = std::f64::consts::TAU * v;
                    pair[0] = (r * t.cos()) as f32;
                    pair[1] = (r * t.sin()) as f32;
                }
            });
        self.0 = base.wrapping_add((2 * pairs as u64).wrapping_mul(GAMMA));
        out.truncate(n);
        out
    }

    /// Uniform in `[lo, hi)`.
    #[cfg(feature = "demo")]
    pub(crate) fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * (1.0 - self.uniform()) as f32
    }

    /// Uniform integer in `0..n` (`n > 0`).
    #[cfg(feature = "demo")]
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    /// The parallel chunks reproduce one sequential Box–Muller run, and the
    /// generator ends where that run would.
    #[test]
    fn chunked_normals_equal_the_sequential_run() {
        for n in [0, 1, 2, 7, 40_000, 100_001] {
            let mut seq = SplitMix64(42);
            let mut expected = Vec::new();
            while expected.len() < n {
                let (u, v) = (seq.uniform(), seq.uniform());
                let r = (-2.0 * u.ln()).sqrt();
                let t = std::f64::consts::TAU * v;
                expected.push((r * t.cos()) as f32);
                expected.push((r * t.sin()) as f32);
            }
            expected.truncate(n);
            let mut par = SplitMix64(42);
            assert_eq!(par.normals(n), expected, "n = {n}");
            assert_eq!(par.next_u64(), seq.next_u64(), "state after n = {n}");
        }
    }
}
