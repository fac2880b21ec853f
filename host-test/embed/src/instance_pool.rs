//! [`InstancePool`]: live instances kept for reuse, shared by the two ways
//! this crate runs many calls — the [`crate::Dataverse`] handle's workers
//! and the gateway server's per-request instances.
//!
//! An instance is taken for one call and either kept (back to the idle list,
//! if there is room) or discarded (it trapped, so it may be in any state).
//! Only the caller knows how to make one, so the pool asks for a maker.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

/// Idle instances, and how many are out.
pub(crate) struct InstancePool<T> {
    state: Mutex<State<T>>,
    /// Signalled whenever an instance comes back (or is discarded).
    returned: Notify,
    /// Idle instances kept; more are dropped when they come back.
    max_idle: usize,
    /// How long a taker waits for a busy instance to come back before it
    /// makes a new one (zero: never waits). An instance returns a moment
    /// after its call ended, and a new one can be expensive (the gateway's
    /// costs a token request).
    wait_for_busy: Duration,
}

struct State<T> {
    idle: Vec<T>,
    busy: usize,
    created: u64,
}

impl<T> InstancePool<T> {
    pub(crate) fn new(max_idle: usize, wait_for_busy: Duration) -> Arc<InstancePool<T>> {
        Arc::new(InstancePool {
            state: Mutex::new(State {
                idle: Vec::new(),
                busy: 0,
                created: 0,
            }),
            returned: Notify::new(),
            max_idle,
            wait_for_busy,
        })
    }

    /// An idle instance; else, while some are busy, the first one back
    /// within `wait_for_busy`; else a new one from `make`.
    pub(crate) async fn take<E>(
        self: &Arc<Self>,
        make: impl AsyncFnOnce() -> Result<T, E>,
    ) -> Result<Lease<T>, E> {
        let deadline = tokio::time::Instant::now() + self.wait_for_busy;
        loop {
            // Registered before looking, so a return in between is not missed.
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            let wait = {
                let mut state = self.lock();
                if let Some(instance) = state.idle.pop() {
                    state.busy += 1;
                    return Ok(self.lease(instance));
                }
                state.busy > 0 && tokio::time::Instant::now() < deadline
            };
            if !wait {
                break;
            }
            let _ = tokio::time::timeout_at(deadline, returned).await;
        }
        let instance = make().await?;
        let mut state = self.lock();
        state.busy += 1;
        state.created += 1;
        drop(state);
        Ok(self.lease(instance))
    }

    /// Instances made so far (a discarded one costs one more).
    pub(crate) fn created(&self) -> u64 {
        self.lock().created
    }

    /// Instances waiting in the idle list now.
    pub(crate) fn idle(&self) -> usize {
        self.lock().idle.len()
    }

    fn lease(self: &Arc<Self>, instance: T) -> Lease<T> {
        Lease {
            pool: self.clone(),
            instance: Some(instance),
        }
    }

    fn give_back(&self, instance: Option<T>) {
        {
            let mut state = self.lock();
            state.busy = state.busy.saturating_sub(1);
            if let Some(instance) = instance
                && state.idle.len() < self.max_idle
            {
                state.idle.push(instance);
            }
        }
        self.returned.notify_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Each critical section is a push, a pop or a counter: a panic
        // cannot leave the state inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One instance out of the pool. [`Lease::keep`] returns it; dropping the
/// lease discards the instance (the safe default after a trap or a panic).
pub(crate) struct Lease<T> {
    pool: Arc<InstancePool<T>>,
    instance: Option<T>,
}

impl<T> Lease<T> {
    /// Back to the idle list, for the next call.
    pub(crate) fn keep(mut self) {
        let instance = self.instance.take();
        self.pool.give_back(instance);
    }
}

impl<T> std::ops::Deref for Lease<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.instance
            .as_ref()
            .expect("present until the lease ends")
    }
}

impl<T> std::ops::DerefMut for Lease<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.instance
            .as_mut()
            .expect("present until the lease ends")
    }
}

impl<T> Drop for Lease<T> {
    fn drop(&mut self) {
        if self.instance.is_some() {
            self.instance = None;
            self.pool.give_back(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn make(n: u32) -> Result<u32, ()> {
        Ok(n)
    }

    #[tokio::test]
    async fn a_kept_instance_is_reused_and_a_dropped_one_is_replaced() {
        let pool = InstancePool::new(4, Duration::ZERO);
        let lease = pool.take(async || make(1).await).await.unwrap();
        assert_eq!(*lease, 1);
        lease.keep();
        assert_eq!(pool.idle(), 1);
        let lease = pool.take(async || make(2).await).await.unwrap();
        assert_eq!(*lease, 1, "the idle one, not a new one");
        drop(lease);
        assert_eq!(pool.idle(), 0);
        let lease = pool.take(async || make(3).await).await.unwrap();
        assert_eq!((*lease, pool.created()), (3, 2));
    }

    #[tokio::test]
    async fn no_more_than_max_idle_are_kept() {
        let pool = InstancePool::new(2, Duration::ZERO);
        let mut leases = Vec::new();
        for n in 0..3 {
            leases.push(pool.take(async || make(n).await).await.unwrap());
        }
        leases.into_iter().for_each(Lease::keep);
        assert_eq!((pool.idle(), pool.created()), (2, 3));
    }

    #[tokio::test]
    async fn a_taker_waits_briefly_for_a_busy_instance_instead_of_making_one() {
        let pool = InstancePool::new(4, Duration::from_secs(5));
        let busy = pool.take(async || make(1).await).await.unwrap();
        let returner = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            busy.keep();
        });
        let lease = pool.take(async || make(2).await).await.unwrap();
        assert_eq!((*lease, pool.created()), (1, 1));
        returner.await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_make_leaves_nothing_counted() {
        let pool = InstancePool::<u32>::new(4, Duration::ZERO);
        let failed = pool.take(async || Err::<u32, &str>("no")).await;
        assert!(failed.is_err());
        assert_eq!((pool.idle(), pool.created()), (0, 0));
        let lease = pool.take(async || make(7).await).await.unwrap();
        assert_eq!(*lease, 7);
    }
}
