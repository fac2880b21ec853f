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
    /// Instances alive at once: the pooling allocator's slots. Only
    /// [`Allocation::Pooled`] enforces it.
    pub max_instances: u32,
    /// Whether instance memory is reserved up front or mapped per instance.
    pub allocation: Allocation,
}

/// How instances get their linear memory, tables and async stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// `max_instances` slots reserved when the engine is made (wasmtime's
    /// pooling allocator): instantiating is a few copies into a slot. The
    /// reservation costs a process ~2 ms of CPU to set up and tear down
    /// (measured with 4 slots), so it pays for itself in hosts that make
    /// many instances: servers, [`crate::Dataverse`] pools.
    Pooled,
    /// Mapped when an instance is made and unmapped when it is dropped:
    /// nothing paid up front, a little more per instance. For a process
    /// that makes an instance or two and exits (the CLI: −2 ms of its
    /// cold start). The memory limit still holds (it is the store's).
    OnDemand,
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
        allocation: Allocation::Pooled,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
