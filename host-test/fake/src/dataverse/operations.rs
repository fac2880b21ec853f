//! Web API functions (GET, parameters in the URL, optionally as `@alias`es
//! given in the query string) and actions (POST, parameters in a JSON body):
//! the built-in `WhoAmI` and `RetrieveVersion`, plus a few "custom APIs" of
//! a fictitious `sample` publisher, unbound and bound to `account`.

use super::context::Ctx;
use super::odata::split_top_level;
use super::path::Segment;
use super::records::{json_body, locate};
use super::reply::{DvError, Reply, bad_request, method_not_allowed, require, segment_not_found};
use crate::State;
use crate::percent;
use crate::{DEMO_BUSINESS_UNIT_ID, DEMO_ORGANIZATION_ID};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

/// The version `RetrieveVersion` reports.
pub(crate) const DATAVERSE_VERSION: &str = "9.2.25123.00000";

fn response_context(ctx: &Ctx, operation: &str) -> String {
    format!(
        "{}/$metadata#Microsoft.Dynamics.CRM.{operation}Response",
        ctx.base
    )
}

/// A function must be called with parentheses (`WhoAmI` is the documented
/// exception); an action must not have them.
fn function_call(
    req: &Request<Bytes>,
    seg: &Segment,
    optional_parens: bool,
) -> Result<(), DvError> {
    if seg.args.is_none() && !optional_parens {
        return Err(segment_not_found(&seg.name));
    }
    require(req, Method::GET)
}

fn action_call(req: &Request<Bytes>, seg: &Segment) -> Result<(), DvError> {
    if seg.args.is_some() {
        return Err(segment_not_found(&seg.name));
    }
    require(req, Method::POST)
}

pub(crate) fn unbound(
    ctx: &Ctx,
    _state: &mut State,
    req: &Request<Bytes>,
    seg: &Segment,
) -> Result<Reply, DvError> {
    match seg.name.as_str() {
        "WhoAmI" => {
            function_call(req, seg, true)?;
            Ok(who_am_i(ctx))
        }
        "RetrieveVersion" => {
            function_call(req, seg, false)?;
            Ok(Reply::json(json!({
                "@odata.context": response_context(ctx, "RetrieveVersion"),
                "Version": DATAVERSE_VERSION,
            })))
        }
        "sample_Echo" => {
            action_call(req, seg)?;
            let body = json_body(req)?;
            let text = match body.get("Text") {
                Some(Value::String(text)) => text.clone(),
                _ => return Err(missing_parameter("Text", "sample_Echo")),
            };
            Ok(Reply::json(json!({
                "@odata.context": response_context(ctx, "sample_Echo"),
                "Echo": text,
            })))
        }
        "sample_Add" => {
            function_call(req, seg, false)?;
            let args = function_arguments(req, seg.args.as_deref().unwrap_or(""))?;
            let number = |name: &str| {
                args.iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, v)| v.as_f64())
                    .ok_or_else(|| missing_parameter(name, "sample_Add"))
            };
            let sum = number("A")? + number("B")?;
            let sum = if sum.fract() == 0.0 && sum.abs() < 9e15 {
                json!(sum as i64)
            } else {
                json!(sum)
            };
            Ok(Reply::json(json!({
                "@odata.context": response_context(ctx, "sample_Add"),
                "Sum": sum,
            })))
        }
        other => Err(segment_not_found(other)),
    }
}

pub(crate) fn bound(
    ctx: &Ctx,
    state: &mut State,
    req: &Request<Bytes>,
    set: &str,
    raw_key: &str,
    seg: &Segment,
) -> Result<Reply, DvError> {
    let full_name = seg.name.as_str();
    let name = full_name.trim_start_matches("Microsoft.Dynamics.CRM.");
    match (set, name) {
        ("accounts", "sample_Touch") => {
            action_call(req, seg)?;
            let index = locate(&state.tables[set], raw_key)?;
            // Touching a row is an update: its version (etag) changes.
            let version = state.next_version();
            state.tables.get_mut(set).expect("known set").rows[index].version = version;
            Ok(Reply::no_content())
        }
        ("accounts", "sample_Describe") => {
            function_call(req, seg, false)?;
            let table = &state.tables[set];
            let record = &table.rows[locate(table, raw_key)?];
            let text = |c: &str| record.get(c).as_str().unwrap_or("").to_string();
            Ok(Reply::json(json!({
                "@odata.context": response_context(ctx, "sample_Describe"),
                "Description": format!("{} ({})", text("name"), text("accountnumber")),
            })))
        }
        _ if req.method() != Method::GET && req.method() != Method::POST => {
            Err(method_not_allowed(req))
        }
        _ => Err(segment_not_found(full_name)),
    }
}

/// An error for a required parameter that is absent or of the wrong type.
fn missing_parameter(name: &str, operation: &str) -> DvError {
    DvError::new(
        StatusCode::BAD_REQUEST,
        "0x80040203",
        format!("Required parameter '{name}' of operation '{operation}' is missing or invalid."),
    )
}

/// `A=1,B=@b` with `@b` taken from the query string (`?@b=2`). Values are
/// OData literals: numbers, `'text'`, `true`/`false`/`null`.
fn function_arguments(req: &Request<Bytes>, raw: &str) -> Result<Vec<(String, Value)>, DvError> {
    let aliases = percent::parse_pairs(req.uri().query().unwrap_or(""));
    let mut args = Vec::new();
    for part in split_top_level(raw, ',')
        .into_iter()
        .filter(|p| !p.trim().is_empty())
    {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| bad_request(format!("Invalid function parameter '{part}'.")))?;
        let value = value.trim();
        let literal = match value.strip_prefix('@') {
            Some(_) => aliases
                .iter()
                .find(|(k, _)| k == value)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    bad_request(format!(
                        "The parameter alias '{value}' was not found in the query string."
                    ))
                })?,
            None => value.to_string(),
        };
        args.push((name.trim().to_string(), literal_value(&literal)));
    }
    Ok(args)
}

fn literal_value(literal: &str) -> Value {
    let literal = literal.trim();
    if let Some(inner) = literal
        .strip_prefix('\'')
        .and_then(|l| l.strip_suffix('\''))
    {
        return Value::String(inner.replace("''", "'"));
    }
    match literal {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => literal
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(literal.to_string()), Value::Number),
    }
}

pub(crate) fn who_am_i(ctx: &Ctx) -> Reply {
    Reply::json(json!({
        "@odata.context": format!("{}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse", ctx.base),
        "BusinessUnitId": DEMO_BUSINESS_UNIT_ID,
        "UserId": ctx.user_id,
        "OrganizationId": DEMO_ORGANIZATION_ID,
    }))
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[test]
    fn retrieve_version_reports_the_dataverse_version() {
        let (fake, token) = demo();
        let body = json(&send(&fake, &token, "GET", "RetrieveVersion()", &[], ""));
        assert_eq!(body["Version"], "9.2.25123.00000");
        assert_eq!(
            body["@odata.context"],
            format!("{BASE}/$metadata#Microsoft.Dynamics.CRM.RetrieveVersionResponse")
        );
        assert_eq!(
            send(&fake, &token, "POST", "RetrieveVersion()", &[], "").status(),
            405
        );
    }

    #[test]
    fn unbound_echo_action_echoes_text_and_needs_it() {
        let (fake, token) = demo();
        let resp = send(
            &fake,
            &token,
            "POST",
            "sample_Echo",
            &[],
            r#"{"Text":"héllo"}"#,
        );
        assert_eq!(resp.status(), 200);
        let body = json(&resp);
        assert_eq!(body["Echo"], "héllo");
        assert_eq!(
            body["@odata.context"],
            format!("{BASE}/$metadata#Microsoft.Dynamics.CRM.sample_EchoResponse")
        );
        assert_error(
            &send(&fake, &token, "POST", "sample_Echo", &[], "{}"),
            400,
            "0x80040203",
        );
        assert_eq!(
            send(&fake, &token, "GET", "sample_Echo", &[], "").status(),
            405
        );
    }

    #[test]
    fn bound_touch_changes_the_etag_and_describe_describes_the_row() {
        let (fake, token) = demo();
        let row = format!("accounts({})", account_id(2));
        let before = json(&send(&fake, &token, "GET", &row, &[], ""))["@odata.etag"].clone();
        let touch = send(
            &fake,
            &token,
            "POST",
            &format!("{row}/Microsoft.Dynamics.CRM.sample_Touch"),
            &[],
            "{}",
        );
        assert_eq!(touch.status(), 204);
        let after = json(&send(&fake, &token, "GET", &row, &[], ""))["@odata.etag"].clone();
        assert_ne!(before, after);
        let body = json(&send(
            &fake,
            &token,
            "GET",
            &format!("{row}/Microsoft.Dynamics.CRM.sample_Describe()"),
            &[],
            "",
        ));
        assert_eq!(body["Description"], "Fabrikam Inc (A-0002)");
        let missing = send(
            &fake,
            &token,
            "POST",
            "accounts(00000000-0000-0000-0000-000000000000)/Microsoft.Dynamics.CRM.sample_Touch",
            &[],
            "{}",
        );
        assert_error(&missing, 404, "0x80040217");
    }

    #[test]
    fn function_parameters_may_be_aliases_from_the_query_string() {
        let (fake, token) = demo();
        let body = json(&send(
            &fake,
            &token,
            "GET",
            "sample_Add(A=@a,B=@b)?@a=1&@b=2",
            &[],
            "",
        ));
        assert_eq!(body["Sum"], 3);
        let body = json(&send(
            &fake,
            &token,
            "GET",
            "sample_Add(A=1.5,B=@b)?@b=2",
            &[],
            "",
        ));
        assert_eq!(body["Sum"], 3.5);
        let resp = send(&fake, &token, "GET", "sample_Add(A=@a,B=@b)?@a=1", &[], "");
        assert_error(&resp, 400, "0x80060888");
    }

    #[test]
    fn unknown_operations_are_404_resource_not_found() {
        let (fake, token) = demo();
        let message = assert_error(
            &send(&fake, &token, "POST", "sample_Nope", &[], "{}"),
            404,
            "0x80060888",
        );
        assert_eq!(message, "Resource not found for the segment 'sample_Nope'.");
        let resp = send(
            &fake,
            &token,
            "POST",
            &format!(
                "accounts({})/Microsoft.Dynamics.CRM.sample_Nope",
                account_id(1)
            ),
            &[],
            "{}",
        );
        let message = assert_error(&resp, 404, "0x80060888");
        assert_eq!(
            message,
            "Resource not found for the segment 'Microsoft.Dynamics.CRM.sample_Nope'."
        );
    }
}
