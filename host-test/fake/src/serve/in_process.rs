//! The fake as a [`dataverse_host::Upstream`]: it answers an instance's
//! requests in process (no sockets), playing each [`Delivery`] marker the
//! way its TLS server plays it on a socket.

use std::sync::Arc;

use bytes::Bytes;
use dataverse_host::upstream::{
    HttpError, RequestOptions, Upstream, UpstreamFuture, WasiBody, full,
};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use crate::{Delivery, Fake, GeneratedBody};

impl Upstream for Fake {
    fn send(
        self: Arc<Self>,
        request: http::Request<Bytes>,
        options: RequestOptions,
    ) -> UpstreamFuture {
        let response = self.handle(request);
        Box::pin(deliver(response, options))
    }
}

/// A delay before the answer (bounded by the guest's first-byte timeout), a
/// hang-up, an endless body or a body cut short.
async fn deliver(
    response: http::Response<Bytes>,
    options: RequestOptions,
) -> Result<http::Response<WasiBody>, HttpError> {
    match response.extensions().get::<Delivery>().cloned() {
        Some(Delivery::Delay { millis }) => {
            let delay = tokio::time::sleep(std::time::Duration::from_millis(millis));
            match options.first_byte_timeout {
                Some(limit) => tokio::time::timeout(limit, delay)
                    .await
                    .map_err(|_| HttpError::ConnectionReadTimeout)?,
                None => delay.await,
            }
            Ok(response.map(full))
        }
        Some(Delivery::HangUp) => Err(HttpError::ConnectionTerminated),
        Some(Delivery::Generated { bytes }) => Ok(response.map(|head| {
            GeneratedBody::new(head, bytes)
                .map_err(|never| match never {})
                .boxed_unsync()
        })),
        // The prefix, then the error a dropped connection gives.
        Some(Delivery::DropAfter { bytes }) => Ok(response.map(|body| {
            let cut = body.slice(..bytes.min(body.len()));
            let frames = [Ok(Frame::data(cut)), Err(HttpError::ConnectionTerminated)];
            StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
        })),
        None => Ok(response.map(full)),
    }
}
