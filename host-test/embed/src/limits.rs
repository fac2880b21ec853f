//! [`Limits`]: what one instance may use (memory, wall-clock time per call,
//! instances alive at once). Every `Store` the host creates gets these.

use std::time::Duration;

/// How often the engine's epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What one instance may use. Every `Store` the runtime creates gets these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory one instance may grow to; growing past it traps
    /// the instance with [`crate::GuestTrap::MemoryLimit`].
    pub max_memory_bytes: usize,
    /// Wall-clock budget of one call into the component, its retries and
    /// waits included. A guest still running past it traps at its next epoch
    /// check with [`crate::GuestTrap::DeadlineExceeded`], so a runaway guest
    /// cannot hold a host thread.
    pub call_deadline: Duration,
    /// Instances alive at once: the pooling allocator's slots.
    pub max_instances: u32,
}

impl Limits {
    /// The epoch ticks a call may run for (see [`Limits::call_deadline`]).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.call_deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }

    pub const DEFAULT: Limits = Limits {
        // The component caps response bodies at 64 MiB by default and
        // parses them in place: 256 MiB leaves room for that.
        max_memory_bytes: 256 * 1024 * 1024,
        // Above the component's default retry budget (120 s of waiting plus
        // the attempts themselves).
        call_deadline: Duration::from_secs(300),
        max_instances: 64,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
