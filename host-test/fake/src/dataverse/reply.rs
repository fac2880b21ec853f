//! What a Web API operation answers, a [`Reply`] or a [`DvError`], and how
//! either becomes the response Dataverse sends (`finish` adds the headers
//! every response carries).

use super::annotations::Prefer;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

/// The generic OData error code Dataverse uses for bad paths and queries.
pub(crate) const ODATA_ERROR: &str = "0x80060888";

/// A response body before rendering.
pub(crate) enum Body {
    None,
    Json(Value),
    Raw { content_type: String, bytes: Bytes },
}

/// A successful (or fault) answer before the common headers are added.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Body,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// The URL of the entity this request created or changed, for `$batch`
    /// Content-ID references (Dataverse omits `OData-EntityId` with
    /// `return=representation`, so the header alone is not enough).
    pub(crate) entity: Option<String>,
}

impl Reply {
    pub(crate) fn json(body: Value) -> Reply {
        Reply::with_status(StatusCode::OK, Body::Json(body))
    }

    pub(crate) fn no_content() -> Reply {
        Reply::with_status(StatusCode::NO_CONTENT, Body::None)
    }

    pub(crate) fn with_status(status: StatusCode, body: Body) -> Reply {
        Reply {
            status,
            body,
            headers: Vec::new(),
            entity: None,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// Marks a response with the entity its request wrote (see [`Reply::entity`]).
#[derive(Clone, Debug)]
pub(crate) struct EntityLocation(pub(crate) String);

/// A Dataverse error: `{"error":{"code":"0x…","message":"…"}}`.
#[derive(Debug)]
pub(crate) struct DvError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl DvError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        DvError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn into_reply(self) -> Reply {
        Reply::with_status(
            self.status,
            Body::Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
    }
}

pub(crate) fn bad_request(message: impl Into<String>) -> DvError {
    DvError::new(StatusCode::BAD_REQUEST, ODATA_ERROR, message)
}

pub(crate) fn segment_not_found(segment: &str) -> DvError {
    DvError::new(
        StatusCode::NOT_FOUND,
        ODATA_ERROR,
        format!("Resource not found for the segment '{segment}'."),
    )
}

pub(crate) fn method_not_allowed(req: &Request<Bytes>) -> DvError {
    DvError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ODATA_ERROR,
        format!(
            "The requested resource does not support http method '{}'.",
            req.method()
        ),
    )
}

pub(crate) fn require(req: &Request<Bytes>, method: Method) -> Result<(), DvError> {
    if *req.method() == method {
        Ok(())
    } else {
        Err(method_not_allowed(req))
    }
}

/// Adds the headers every Dataverse response carries, and echoes the
/// caller's `x-ms-client-request-id` like Dataverse does.
pub(crate) fn finish(reply: Reply, request_id: &str, req: &Request<Bytes>) -> Response<Bytes> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header("OData-Version", "4.0")
        .header("x-ms-service-request-id", request_id);
    if let Some(id) = req.headers().get("x-ms-client-request-id") {
        builder = builder.header("x-ms-client-request-id", id);
    }
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value);
    }
    let body = match reply.body {
        Body::Json(body) => {
            builder = builder.header(
                header::CONTENT_TYPE,
                "application/json; odata.metadata=minimal",
            );
            Bytes::from(body.to_string())
        }
        Body::Raw {
            content_type,
            bytes,
        } => {
            builder = builder.header(header::CONTENT_TYPE, content_type);
            bytes
        }
        Body::None => Bytes::new(),
    };
    let mut response = builder.body(body).expect("response parts are valid");
    if let Some(url) = reply.entity {
        response.extensions_mut().insert(EntityLocation(url));
    }
    response
}

/// The `Preference-Applied` header for what this reply honoured, if anything.
pub(crate) fn preference_applied(reply: Reply, applied: &[String]) -> Reply {
    if applied.is_empty() {
        reply
    } else {
        reply.header("preference-applied", applied.join(","))
    }
}

/// Parses the `Prefer` header(s) of a request.
pub(crate) fn prefer(req: &Request<Bytes>) -> Prefer {
    Prefer::parse(req.headers())
}
