//! The hash maps on a report's path, keyed by device ids and key digests: foldhash's
//! fast hasher, seeded at random per map, instead of the standard library's SipHash.
//! A report takes some fifty hash lookups and inserts (the device registry, the
//! sequencer's tracks, newest fixes and last reports, the draft's copies, the live
//! view); with SipHash they were 5 % of the server's instructions per report.
//! foldhash is only "minimally DoS-resistant": its seed is secret, so collisions cannot
//! be chosen ahead; the keys here are device ids the server registered and digests.

/// A `HashMap` with foldhash's fast hasher.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A `HashSet` with foldhash's fast hasher.
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
