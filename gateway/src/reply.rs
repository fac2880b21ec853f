//! What the gateway answers: a status, headers and a body; errors as
//! `{"error":{"code":"…","message":"…"}}`, the shape Dataverse uses too.

use serde_json::json;

/// One HTTP response of the gateway: the core's response type, so what
/// Dataverse answered passes through without a copy into another shape.
pub use dataverse_wasm::http::Response as Reply;

/// `status` with a JSON body.
pub fn json(status: u16, value: &serde_json::Value) -> Reply {
    Reply {
        status,
        headers: vec![(
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        )],
        body: value.to_string().into_bytes(),
    }
}

/// A JSON error. `message` must never hold a secret: callers pass fixed
/// text or the core's error messages, which never contain one.
pub fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    json(
        status,
        &json!({"error": {"code": code, "message": message.into()}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_json_with_a_code_and_a_message() {
        let reply = error(403, "not_allowed", "contacts is not on the allow-list");
        assert_eq!(reply.status, 403);
        assert_eq!(
            reply.header("Content-Type"),
            Some("application/json; charset=utf-8")
        );
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "not_allowed");
        assert_eq!(
            body["error"]["message"],
            "contacts is not on the allow-list"
        );
    }
}
