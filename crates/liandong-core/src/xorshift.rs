//! A fixed-seed xorshift64 generator (Marsaglia, "Xorshift RNGs", 2003): the same
//! sequence on every run and machine, for the synthetic data of tests and benchmarks.
//! Not for anything that must be unpredictable.

/// The generator's state; the seed must not be zero (zero stays zero).
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    pub fn new(seed: u64) -> XorShift64 {
        debug_assert!(seed != 0, "a zero seed yields only zeros");
        XorShift64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.unit() * (hi - lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_marsaglias_and_units_stay_in_range() {
        let mut r = XorShift64::new(1);
        // x ^= x << 13; x ^= x >> 7; x ^= x << 17, from 1.
        assert_eq!(r.next_u64(), 1_082_269_761);
        let mut r = XorShift64::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let x = r.range(-2.0, 3.0);
            assert!((-2.0..3.0).contains(&x));
        }
    }
}
