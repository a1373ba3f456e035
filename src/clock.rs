//! The clock, injected everywhere the shell needs `now`: the real one, a simulated one that
//! starts at a chosen instant and runs faster (staging, `serve --clock-start`), and a manual one
//! that tests and the demo move by hand.

use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;
use std::time::Instant;

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

/// Starts at `start` and advances `speed` simulated seconds per real second.
#[derive(Debug)]
pub struct SimulatedClock {
    start: DateTime<Utc>,
    began: Instant,
    speed: f64,
}

impl SimulatedClock {
    pub fn new(start: DateTime<Utc>, speed: f64) -> SimulatedClock {
        SimulatedClock {
            start,
            began: Instant::now(),
            speed,
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.began.elapsed().as_secs_f64() * self.speed;
        self.start + Duration::milliseconds((elapsed * 1000.0) as i64)
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
