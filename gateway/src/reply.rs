//! What the gateway answers: a status, headers and a body; errors as
//! `{"error":{"code":"…","message":"…"}}`, the shape Dataverse uses too.

use serde_json::json;

/// One HTTP response of the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
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
        Reply::json(
            status,
            &json!({"error": {"code": code, "message": message.into()}}),
        )
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_json_with_a_code_and_a_message() {
        let reply = Reply::error(403, "not_allowed", "contacts is not on the allow-list");
        assert_eq!(reply.status, 403);
        assert_eq!(
            reply.header_value("Content-Type"),
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
