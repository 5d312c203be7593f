//! Failed sign-ins counted per key (an account, a client address) in fixed windows, in
//! memory and bounded: at most [`MAX_KEYS`] keys are tracked; when full, the key whose
//! window began first is forgotten, so a flood of new keys forgets the oldest windows
//! first, never one that is blocking now unless every tracked key is newer.

use std::collections::HashMap;
use std::sync::Mutex;

/// Keys tracked at once per limiter (a few hundred kilobytes at most).
pub const MAX_KEYS: usize = 10_000;

/// Failures per key within a window.
#[derive(Debug)]
pub struct FailureLimit {
    max: u32,
    window_ms: i64,
    /// Key → (the window's first failure, failures in it).
    keys: Mutex<HashMap<String, (i64, u32)>>,
}

impl FailureLimit {
    pub fn new(max: u32, window_ms: i64) -> FailureLimit {
        FailureLimit { max, window_ms, keys: Mutex::new(HashMap::new()) }
    }

    /// `Some(seconds)` to wait when `key` has had `max` failures in its window at
    /// `now_ms`; `None` when it may try.
    pub fn blocked(&self, key: &str, now_ms: i64) -> Option<u32> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let &(start, n) = keys.get(key)?;
        let ends = start + self.window_ms;
        (n >= self.max && now_ms < ends).then(|| u32::try_from((ends - now_ms + 999) / 1000).unwrap_or(u32::MAX).max(1))
    }

    /// Counts a failure of `key` at `now_ms`.
    pub fn fail(&self, key: &str, now_ms: i64) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = keys.get_mut(key) {
            if now_ms < e.0 + self.window_ms {
                e.1 = e.1.saturating_add(1);
            } else {
                *e = (now_ms, 1);
            }
            return;
        }
        if keys.len() >= MAX_KEYS {
            keys.retain(|_, (start, _)| now_ms < *start + self.window_ms);
        }
        if keys.len() >= MAX_KEYS {
            if let Some(oldest) = keys.iter().min_by_key(|(_, (start, _))| *start).map(|(k, _)| k.clone()) {
                keys.remove(&oldest);
            }
        }
        keys.insert(key.to_owned(), (now_ms, 1));
    }

    /// Forgets a key's failures (its account signed in).
    pub fn clear(&self, key: &str) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_blocked_after_max_failures_until_its_window_ends() {
        let l = FailureLimit::new(3, 60_000);
        for t in [0, 1_000, 2_000] {
            assert_eq!(l.blocked("a", t), None);
            l.fail("a", t);
        }
        assert_eq!(l.blocked("a", 2_500), Some(58), "60 s from the first failure");
        assert_eq!(l.blocked("b", 2_500), None, "another key is not blocked");
        assert_eq!(l.blocked("a", 59_999), Some(1));
        assert_eq!(l.blocked("a", 60_000), None, "the window has passed");
        l.fail("a", 60_000);
        assert_eq!(l.blocked("a", 60_001), None, "a new window counts from one");
        l.clear("a");
        assert!(l.is_empty());
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_the_oldest_window_first() {
        let l = FailureLimit::new(1, 1_000_000);
        l.fail("first", 0);
        for i in 0..MAX_KEYS {
            l.fail(&format!("k{i}"), 1 + i as i64);
        }
        assert_eq!(l.len(), MAX_KEYS);
        assert_eq!(l.blocked("first", 20_000), None, "the oldest was forgotten");
        assert!(l.blocked(&format!("k{}", MAX_KEYS - 1), 20_000).is_some(), "the newest is kept");
    }
}
