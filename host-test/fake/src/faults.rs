//! Fault injection, to test a client's retry policy and hardening.
//!
//! [`Fake::inject`](crate::Fake::inject) queues a [`Fault`] for the next N
//! authenticated Dataverse requests. Faults that change only *how* an answer
//! is delivered (a delay, a connection dropped mid-body) cannot be expressed in
//! an `http::Response<Bytes>`: they ride along as a [`Delivery`] in the
//! response's extensions, and whoever puts the response on the wire (the TLS
//! server here, the in-process hook elsewhere) must honour it.

use bytes::Bytes;
use std::collections::VecDeque;

/// A misbehaviour of Dataverse (or the network in front of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: n` and the service protection error
    /// `0x80072322` ("Number of requests exceeded the limit of 6000 over time
    /// window of 300 seconds."). The request is not executed.
    Throttle { retry_after_secs: u64 },
    /// That status (e.g. 500, 502, 503) with a Dataverse-style error body.
    /// The request is not executed.
    Status(u16),
    /// The normal answer, delivered after `millis` ([`Delivery::Delay`]).
    Slow { millis: u64 },
    /// The request is executed; its answer goes out with the full
    /// `Content-Length` but only the first half of the body, then the
    /// connection is closed ([`Delivery::DropAfter`]). An answer without a
    /// body (e.g. a 204) becomes a 500 with a JSON error body, so that there
    /// is something to cut.
    DropMidBody,
    /// 200 with a JSON body cut off mid-way. The request is not executed.
    MalformedJson,
    /// 200 with a body of exactly `bytes` bytes: the start of a `value` array
    /// that never ends. The request is not executed.
    Oversized { bytes: usize },
    /// The connection is closed as soon as the request has been read, before
    /// any byte of an answer ([`Delivery::HangUp`]), as a server or load
    /// balancer does when it drops an idle keep-alive connection just as a
    /// request arrives. The request is not executed.
    HangUp,
    /// The request is executed, then the connection is closed before any
    /// byte of an answer ([`Delivery::HangUp`]): a server that committed a
    /// write and lost the connection before answering. The client cannot
    /// know whether the write happened, so it must not resend a POST.
    HangUpAfterExecuting,
    /// 200 with a body of `bytes` bytes in chunks and no `Content-Length`,
    /// made as it is sent ([`Delivery::Generated`]): the start of a `value`
    /// array that never ends, of any size, without the fake holding it. The
    /// request is not executed.
    Endless { bytes: u64 },
    /// The normal answer, with `@odata.nextLink` (added if the answer had
    /// none) pointing at `https://{host}/api/data/v9.2/accounts?$skiptoken=…`,
    /// to prove a client never sends its token to a host it did not choose.
    ForeignNextLink { host: String },
}

/// How a response must be put on the wire, found in its `extensions()`.
///
/// `Clone + Send + Sync + 'static`, so any transport can read it with
/// `response.extensions().get::<Delivery>()`. A response without one is
/// delivered normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Wait this long before sending anything (status line included).
    Delay { millis: u64 },
    /// Send the status line and headers with the full `Content-Length`, then
    /// only the first `bytes` bytes of the body, then close the connection
    /// abruptly (no further bytes, no TLS close_notify).
    DropAfter { bytes: usize },
    /// Send nothing at all and close the connection.
    HangUp,
    /// Send the status line and headers without a `Content-Length`, then a
    /// body of `bytes` bytes in all, made chunk by chunk ([`GeneratedBody`]).
    Generated { bytes: u64 },
}

/// Queued faults, in injection order, each with how many requests remain.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue(VecDeque<(Fault, usize)>);

impl FaultQueue {
    pub(crate) fn push(&mut self, fault: Fault, times: usize) {
        if times > 0 {
            self.0.push_back((fault, times));
        }
    }

    /// The fault for the next request, if one is due.
    pub(crate) fn take(&mut self) -> Option<Fault> {
        let (fault, remaining) = self.0.front_mut()?;
        let fault = fault.clone();
        *remaining -= 1;
        if *remaining == 0 {
            self.0.pop_front();
        }
        Some(fault)
    }
}

/// One row of a page that never ends.
pub(crate) const ENDLESS_ROW: &[u8] =
    b"{\"@odata.etag\":\"W/\\\"1\\\"\",\"name\":\"Oversized row padding padding padding\"},";

/// The next at most `max` bytes of a [`Delivery::Generated`] body after its
/// head: whole rows, 64 KiB at a time.
fn endless_chunk(max: u64) -> Bytes {
    let rows = (64 * 1024 / ENDLESS_ROW.len()).max(1);
    let mut out = ENDLESS_ROW.repeat(rows);
    out.truncate(usize::try_from(max).unwrap_or(usize::MAX).min(out.len()));
    Bytes::from(out)
}

/// A [`Delivery::Generated`] body: its head, then rows made as they are
/// polled until `remaining` bytes have gone out. A transport polls it only
/// as fast as its reader takes the bytes, so it costs no memory.
pub struct GeneratedBody {
    head: Option<Bytes>,
    remaining: u64,
}

impl GeneratedBody {
    /// The body of `response` (its head) followed by rows up to `bytes` in all.
    pub fn new(head: Bytes, bytes: u64) -> GeneratedBody {
        let remaining = bytes.saturating_sub(head.len() as u64);
        GeneratedBody {
            head: Some(head),
            remaining,
        }
    }
}

impl hyper::body::Body for GeneratedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if let Some(head) = self.head.take() {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(head))));
        }
        if self.remaining == 0 {
            return std::task::Poll::Ready(None);
        }
        let chunk = endless_chunk(self.remaining);
        self.remaining -= chunk.len() as u64;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.remaining == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_serves_each_fault_the_requested_number_of_times_in_order() {
        let mut q = FaultQueue::default();
        q.push(Fault::Status(503), 2);
        q.push(Fault::MalformedJson, 1);
        q.push(Fault::Status(502), 0);
        assert_eq!(q.take(), Some(Fault::Status(503)));
        assert_eq!(q.take(), Some(Fault::Status(503)));
        assert_eq!(q.take(), Some(Fault::MalformedJson));
        assert_eq!(q.take(), None);
    }
}
