//! `WhoAmI`: the calling (application) user's ids.

use serde::Deserialize;

use crate::error::Error;
use crate::http::{Request, Response};

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WhoAmI {
    #[serde(rename = "UserId")]
    pub user_id: String,
    #[serde(rename = "BusinessUnitId")]
    pub business_unit_id: String,
    #[serde(rename = "OrganizationId")]
    pub organization_id: String,
}

/// The relative path of the unbound `WhoAmI` function.
pub const PATH: &str = "WhoAmI";

/// GET `WhoAmI`.
pub fn request(org_url: &str) -> Request {
    super::get(org_url, PATH)
}

pub fn parse(response: &Response) -> Result<WhoAmI, Error> {
    serde_json::from_slice(&response.body)
        .map_err(|e| Error::InvalidResponse(format!("WhoAmI response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_ids_and_rejects_incomplete_bodies() {
        let body =
            r#"{"@odata.context":"x","BusinessUnitId":"b","UserId":"u","OrganizationId":"o"}"#;
        let ok = Response {
            status: 200,
            headers: vec![],
            body: body.into(),
        };
        assert_eq!(
            parse(&ok).unwrap(),
            WhoAmI {
                user_id: "u".into(),
                business_unit_id: "b".into(),
                organization_id: "o".into()
            }
        );
        let partial = Response {
            status: 200,
            headers: vec![],
            body: br#"{"UserId":"u"}"#.to_vec(),
        };
        assert!(matches!(parse(&partial), Err(Error::InvalidResponse(_))));
    }
}
