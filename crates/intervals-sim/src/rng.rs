//! Deterministic hashing and a small PRNG (SplitMix64). Everything the simulator invents derives
//! from the seed through these, so the same configuration always yields the same org and data.

/// Domain tags keep the hash streams of different things apart.
pub(crate) mod tag {
    pub(crate) const AGENT: u64 = 1;
    pub(crate) const QUEUE: u64 = 2;
    pub(crate) const DAY: u64 = 3;
    pub(crate) const LATE: u64 = 4;
    pub(crate) const REVISION: u64 = 5;
    pub(crate) const DIVISION: u64 = 6;
    pub(crate) const TOKEN: u64 = 7;
    pub(crate) const CORRELATION: u64 = 8;
    pub(crate) const FAULT_503: u64 = 9;
    pub(crate) const FAULT_TRUNCATE: u64 = 10;
    pub(crate) const JOB: u64 = 11;
    pub(crate) const PROFILE: u64 = 12;
    pub(crate) const BREAK: u64 = 13;
    pub(crate) const MISSED: u64 = 14;
    pub(crate) const ABANDON: u64 = 15;
    pub(crate) const SERVICE_LEVEL: u64 = 16;
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser: a strong 64-bit mix.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a sequence of words.
pub(crate) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x243F_6A88_85A3_08D3, |h, p| mix(h ^ mix(*p)))
}

/// A hash mapped to `[0, 1)`.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A random (version 4 shaped) UUID from two words.
pub(crate) fn uuid(a: u64, b: u64) -> String {
    let hi = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// A UUID derived from a hash key.
pub(crate) fn uuid_of(parts: &[u64]) -> String {
    let a = hash(parts);
    uuid(a, mix(a ^ 0x5555_5555_5555_5555))
}

/// SplitMix64 generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Uniform integer in `[lo, hi)` (`lo` when the range is empty).
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next_u64() % (hi - lo)
        }
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A right-skewed duration in `[lo, hi)`: most values near `lo`, a tail towards `hi`.
    pub(crate) fn skewed(&mut self, lo: u64, hi: u64) -> u64 {
        let u = self.unit();
        lo + ((u * u) * (hi.saturating_sub(lo)) as f64) as u64
    }
}
