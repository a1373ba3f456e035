//! The clock, injected everywhere the shell needs `now`: the real one, a simulated one that
//! starts at a chosen instant and runs faster (staging, `serve --clock-start`), and a manual one
//! that tests and the demo move by hand.

use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Starts at `start` and advances `speed` simulated seconds per real second. Anchored on the
/// wall clock (`began`), so processes that share an anchor (stored in the database) agree.
#[derive(Debug)]
pub struct SimulatedClock {
    start: DateTime<Utc>,
    began: DateTime<Utc>,
    speed: f64,
}

impl SimulatedClock {
    /// Starting now.
    pub fn new(start: DateTime<Utc>, speed: f64) -> SimulatedClock {
        SimulatedClock::anchored(start, Utc::now(), speed)
    }

    /// At `start` when the wall clock said `began`.
    pub fn anchored(start: DateTime<Utc>, began: DateTime<Utc>, speed: f64) -> SimulatedClock {
        SimulatedClock {
            start,
            began,
            speed,
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = (Utc::now() - self.began).num_milliseconds() as f64 * self.speed;
        self.start + Duration::milliseconds(elapsed as i64)
    }
}

/// Moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = at;
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().expect("clock lock");
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}
