//! The wait between retries when the server cannot be reached: 1 s,
//! doubling up to 30 s, each wait shortened by up to a fifth at random so
//! that agents cut off together do not come back together.

use std::time::Duration;

/// The first wait.
const FIRST: Duration = Duration::from_secs(1);
/// The longest wait.
const LONGEST: Duration = Duration::from_secs(30);

/// Successive waits; [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The next wait (with jitter), and doubles the one after.
    pub fn next_wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(LONGEST);
        let mut random = [0u8; 2];
        // Without a random source the wait is simply not shortened.
        let _ = getrandom::fill(&mut random);
        let fraction = f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX);
        base.mul_f64(1.0 - 0.2 * fraction)
    }

    /// Back to the first wait.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_thirty_seconds_with_at_most_a_fifth_off() {
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..8).map(|_| backoff.next_wait()).collect();
        let bases = [1, 2, 4, 8, 16, 30, 30, 30];
        for (wait, base) in waits.iter().zip(bases) {
            let base = Duration::from_secs(base);
            assert!(
                *wait <= base && *wait >= base.mul_f64(0.8),
                "{wait:?} for {base:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_secs(1));
    }
}
