//! Functions (GET, parameters as aliases in the URL) and actions (POST,
//! parameters as a JSON body), unbound or bound to a row.

use serde_json::Value;
use serde_json::value::RawValue;

use super::crud::json_request;
use super::entity_key::entity_path;
use super::query::check_identifier;
use super::{api_url, body_text};
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::percent::query_encode;

/// The namespace of Dataverse's functions, actions and Custom APIs.
const NAMESPACE: &str = "Microsoft.Dynamics.CRM.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationKind {
    Function,
    Action,
}

/// What a function or action returned: its status (200 with a body, 204
/// without) and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationResult {
    pub status: u16,
    pub json: Option<String>,
}

/// Reads a function's or action's answer.
pub fn parse_result(response: &Response) -> OperationResult {
    OperationResult {
        status: response.status,
        json: body_text(response),
    }
}

/// Builds the call of a function or an action.
///
/// `bound` = `(entity_set, key)` binds the operation to a row; an empty key
/// binds it to the entity set (collection-bound). Function parameters
/// become aliases: `Name(A=@p1)?@p1=<literal>` where a JSON string becomes
/// `'text'`, numbers/booleans/null stay, and objects/arrays (entity
/// references, complex values) are sent as JSON.
pub fn request(
    org_url: &str,
    name: &str,
    kind: OperationKind,
    bound: Option<(&str, &str)>,
    parameters_json: Option<&str>,
) -> Result<Request, Error> {
    let path = match bound {
        None => unbound_name(name)?.to_string(),
        Some((entity_set, key)) => {
            let target = if key.trim().is_empty() {
                check_identifier("entity-set", entity_set)?;
                entity_set.to_string()
            } else {
                entity_path(entity_set, key)?
            };
            format!("{target}/{}", bound_name(name)?)
        }
    };
    match kind {
        OperationKind::Action => json_request(
            Method::Post,
            api_url(org_url, &path),
            "parameters",
            parameters_json.unwrap_or("{}"),
        ),
        OperationKind::Function => {
            let (arguments, aliases) = function_parameters(parameters_json.unwrap_or("{}"))?;
            let mut url = api_url(org_url, &format!("{path}({arguments})"));
            if !aliases.is_empty() {
                url.push('?');
                url.push_str(&aliases);
            }
            Ok(Request::new(Method::Get, url))
        }
    }
}

/// Unbound operations are called by their plain name.
fn unbound_name(name: &str) -> Result<&str, Error> {
    let plain = name.strip_prefix(NAMESPACE).unwrap_or(name);
    check_identifier("name", plain)?;
    Ok(plain)
}

/// Bound operations need a qualified name: a plain name gets Dataverse's
/// namespace, a dotted one is taken as already qualified.
fn bound_name(name: &str) -> Result<String, Error> {
    if name.contains('.') {
        let valid = name
            .split('.')
            .all(|part| check_identifier("name", part).is_ok());
        if !valid {
            return Err(Error::InvalidRequest(format!(
                "name '{name}' is not a valid (qualified) operation name"
            )));
        }
        Ok(name.to_string())
    } else {
        check_identifier("name", name)?;
        Ok(format!("{NAMESPACE}{name}"))
    }
}

/// `A=@p1,B=@p2` and `@p1=…&@p2=…` (parameters in name order).
fn function_parameters(json: &str) -> Result<(String, String), Error> {
    let parameters: std::collections::BTreeMap<String, &RawValue> =
        serde_json::from_slice(json.as_bytes()).map_err(|_| {
            Error::InvalidRequest("parameters must be a JSON object of parameter values".into())
        })?;
    let mut arguments = Vec::new();
    let mut aliases = Vec::new();
    for (i, (name, value)) in parameters.iter().enumerate() {
        check_identifier("parameters", name)?;
        let alias = format!("@p{}", i + 1);
        arguments.push(format!("{name}={alias}"));
        aliases.push(format!("{alias}={}", literal(value)?));
    }
    Ok((arguments.join(","), aliases.join("&")))
}

/// A JSON value as an OData URL literal, percent-encoded for the query.
fn literal(value: &RawValue) -> Result<String, Error> {
    let bad = || Error::InvalidRequest("parameters must be a JSON object".into());
    let text = value.get();
    Ok(match text.as_bytes().first() {
        Some(b'"') => {
            let s: String = serde_json::from_slice(text.as_bytes()).map_err(|_| bad())?;
            query_encode(&format!("'{}'", s.replace('\'', "''")))
        }
        Some(b'{' | b'[') => {
            // Compact JSON: whitespace from the caller's formatting is noise.
            let v: Value = serde_json::from_slice(text.as_bytes()).map_err(|_| bad())?;
            query_encode(&v.to_string())
        }
        _ => query_encode(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "https://contoso.crm.dynamics.com";
    const BASE: &str = "https://contoso.crm.dynamics.com/api/data/v9.2/";
    const ID: &str = "00000000-0000-0000-0000-000000000001";

    #[test]
    fn operations_build_their_urls_and_bodies() {
        use OperationKind::{Action, Function};
        let cases: Vec<(Request, Method, String, Option<&str>)> = vec![
            (
                request(ORG, "WhoAmI", Function, None, None).unwrap(),
                Method::Get,
                format!("{BASE}WhoAmI()"),
                None,
            ),
            (
                request(ORG, "Microsoft.Dynamics.CRM.WhoAmI", Function, None, Some("{}")).unwrap(),
                Method::Get,
                format!("{BASE}WhoAmI()"),
                None,
            ),
            (
                request(
                    ORG,
                    "GetTimeZoneCodeByLocalizedName",
                    Function,
                    None,
                    Some(r#"{"LocalizedStandardName":"Pacific Standard Time (O'Neil)","LocaleId":1033}"#),
                )
                .unwrap(),
                Method::Get,
                format!(
                    "{BASE}GetTimeZoneCodeByLocalizedName(LocaleId=@p1,LocalizedStandardName=@p2)?@p1=1033&@p2='Pacific%20Standard%20Time%20(O''Neil)'"
                ),
                None,
            ),
            (
                request(
                    ORG,
                    "RetrievePrincipalAccess",
                    Function,
                    Some(("systemusers", ID)),
                    Some(r#"{ "Target": { "@odata.id": "accounts(x)" }, "Flag": true, "N": null, "F": -1.5e2 }"#),
                )
                .unwrap(),
                Method::Get,
                format!(
                    "{BASE}systemusers({ID})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(F=@p1,Flag=@p2,N=@p3,Target=@p4)?@p1=-1.5e2&@p2=true&@p3=null&@p4=%7B%22@odata.id%22:%22accounts(x)%22%7D"
                ),
                None,
            ),
            (
                request(ORG, "sample_Fn", Function, Some(("accounts", "")), None).unwrap(),
                Method::Get,
                format!("{BASE}accounts/Microsoft.Dynamics.CRM.sample_Fn()"),
                None,
            ),
            (
                request(ORG, "WinOpportunity", Action, None, Some(r#"{"Status":3}"#)).unwrap(),
                Method::Post,
                format!("{BASE}WinOpportunity"),
                Some(r#"{"Status":3}"#),
            ),
            (
                request(ORG, "sample_Act", Action, Some(("accounts", ID)), None).unwrap(),
                Method::Post,
                format!("{BASE}accounts({ID})/Microsoft.Dynamics.CRM.sample_Act"),
                Some("{}"),
            ),
            (
                request(
                    ORG,
                    "Microsoft.Dynamics.CRM.AddToQueue",
                    Action,
                    Some(("queues", ID)),
                    Some("{}"),
                )
                .unwrap(),
                Method::Post,
                format!("{BASE}queues({ID})/Microsoft.Dynamics.CRM.AddToQueue"),
                Some("{}"),
            ),
        ];
        for (req, method, url, body) in cases {
            assert_eq!((req.method, &req.url), (method, &url));
            match body {
                Some(body) => {
                    assert_eq!(req.body, body.as_bytes());
                    assert_eq!(req.header_value("content-type"), Some("application/json"));
                }
                None => assert!(req.body.is_empty() && req.headers.is_empty()),
            }
        }
    }

    #[test]
    fn bad_arguments_are_invalid_requests_naming_the_argument() {
        use OperationKind::{Action, Function};
        let cases = [
            (request(ORG, "", Function, None, None), "name"),
            (request(ORG, "Who Am I", Function, None, None), "name"),
            (request(ORG, "WhoAmI()", Function, None, None), "name"),
            (request(ORG, "Other.WhoAmI", Function, None, None), "name"),
            (
                request(ORG, "a..b", Action, Some(("accounts", ID)), None),
                "name",
            ),
            (
                request(ORG, "a.b/c", Action, Some(("accounts", ID)), None),
                "name",
            ),
            (
                request(ORG, "X", Action, Some(("accounts", "bad")), None),
                "key",
            ),
            (
                request(ORG, "X", Action, Some(("acc/ounts", "")), None),
                "entity-set",
            ),
            (request(ORG, "X", Action, None, Some("[]")), "parameters"),
            (
                request(ORG, "X", Action, None, Some("{\"secret\":")),
                "parameters",
            ),
            (request(ORG, "X", Function, None, Some("[1]")), "parameters"),
            (
                request(ORG, "X", Function, None, Some("{\"a b\":1}")),
                "parameters",
            ),
            (
                request(ORG, "X", Function, None, Some("{\"a\":1")),
                "parameters",
            ),
        ];
        for (result, name) in cases {
            match result {
                Err(Error::InvalidRequest(m)) => {
                    assert!(m.starts_with(name), "{m} should name {name}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_parameters_never_panic() {
        let pieces = [
            "{", "}", "[", "]", "\"", ":", ",", "a", "1", "'", "é", "😀", " ", "\\", "null", ".",
        ];
        for text in super::super::entity_key::garbage_strings(&pieces, 20_000) {
            let _ = request(ORG, "X", OperationKind::Function, None, Some(&text));
            let _ = request(
                ORG,
                &text,
                OperationKind::Action,
                Some(("accounts", "")),
                Some(&text),
            );
        }
    }
}
