//! Per-request options that Dataverse reads from headers: impersonation,
//! plug-in bypass, duplicate detection, solution, consistency, `Prefer`.

use super::entity_key::guid;
use super::prefer;
use super::query::check_identifier;
use crate::error::Error;
use crate::http::Request;

/// Optional behaviour of one Web API call. `Default` adds nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Impersonate this user: their Microsoft Entra object id (`CallerObjectId`).
    /// The application user needs the prvActOnBehalfOfAnotherUser privilege.
    pub caller_object_id: Option<String>,
    /// `MSCRM.BypassCustomPluginExecution: true` (needs prvBypassCustomPlugins).
    pub bypass_custom_plugins: bool,
    /// `MSCRM.SuppressDuplicateDetection: true|false`.
    pub suppress_duplicate_detection: Option<bool>,
    /// `MSCRM.SolutionUniqueName`: the unmanaged solution that gets new components.
    pub solution_unique_name: Option<String>,
    /// `Consistency: Strong`: read past the metadata cache.
    pub strong_consistency: bool,
    /// `Prefer: odata.include-annotations="<value>"`, e.g. `*` or
    /// `OData.Community.Display.V1.FormattedValue`.
    pub include_annotations: Option<String>,
    /// `Prefer: return=representation`: create/update answer with the row.
    pub return_representation: bool,
}

impl RequestOptions {
    /// Adds the option headers to `request`. Preferences already on the
    /// request (e.g. `odata.maxpagesize=10`) are kept in the one `Prefer`
    /// (see [`prefer::add`]).
    pub fn apply(&self, mut request: Request) -> Result<Request, Error> {
        if let Some(id) = &self.caller_object_id {
            let id = guid(id.trim()).ok_or_else(|| {
                Error::InvalidRequest(
                    "caller-object-id must be a GUID: the Microsoft Entra object id of the user to impersonate"
                        .into(),
                )
            })?;
            set_header(&mut request, "CallerObjectId", id);
        }
        if self.bypass_custom_plugins {
            set_header(
                &mut request,
                "MSCRM.BypassCustomPluginExecution",
                "true".into(),
            );
        }
        if let Some(suppress) = self.suppress_duplicate_detection {
            set_header(
                &mut request,
                "MSCRM.SuppressDuplicateDetection",
                suppress.to_string(),
            );
        }
        if let Some(name) = &self.solution_unique_name {
            check_identifier("solution-unique-name", name)?;
            set_header(&mut request, "MSCRM.SolutionUniqueName", name.clone());
        }
        if self.strong_consistency {
            set_header(&mut request, "Consistency", "Strong".into());
        }
        let mut preferences = Vec::new();
        if self.return_representation {
            preferences.push(prefer::RETURN_REPRESENTATION.to_string());
        }
        if let Some(value) = &self.include_annotations {
            check_annotation_filter(value)?;
            preferences.push(prefer::include_annotations(value));
        }
        request = prefer::add(request, &preferences);
        Ok(request)
    }
}

/// Replaces every header of that name (case-insensitive) with one value.
fn set_header(request: &mut Request, name: &str, value: String) {
    request
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    request.headers.push((name.to_string(), value));
}

/// Annotation filters are (wildcarded, possibly excluded) qualified names:
/// anything else could end the quoted value or the header.
fn check_annotation_filter(value: &str) -> Result<(), Error> {
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._*-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidRequest(
            "include-annotations must be an annotation name or pattern such as * or \
             OData.Community.Display.V1.FormattedValue (letters, digits, '.', '_', '*', '-')"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn get() -> Request {
        Request::new(Method::Get, "https://o/api/data/v9.2/accounts")
    }

    fn headers(r: &Request) -> Vec<(&str, &str)> {
        r.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn default_options_add_nothing() {
        let req = get().header("Prefer", "odata.maxpagesize=10");
        assert_eq!(RequestOptions::default().apply(req.clone()).unwrap(), req);
    }

    #[test]
    fn every_option_becomes_its_header() {
        let options = RequestOptions {
            caller_object_id: Some("{0000000A-0000-0000-0000-000000000001}".into()),
            bypass_custom_plugins: true,
            suppress_duplicate_detection: Some(false),
            solution_unique_name: Some("MySolution_1".into()),
            strong_consistency: true,
            include_annotations: Some("OData.Community.Display.V1.FormattedValue".into()),
            return_representation: true,
        };
        let req = options.apply(get()).unwrap();
        assert_eq!(
            headers(&req),
            [
                ("CallerObjectId", "0000000a-0000-0000-0000-000000000001"),
                ("MSCRM.BypassCustomPluginExecution", "true"),
                ("MSCRM.SuppressDuplicateDetection", "false"),
                ("MSCRM.SolutionUniqueName", "MySolution_1"),
                ("Consistency", "Strong"),
                (
                    "Prefer",
                    "return=representation,odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\""
                ),
            ]
        );
    }

    #[test]
    fn preferences_merge_into_one_prefer_header() {
        let cases: [(&[&str], bool, Option<&str>, &str); 5] = [
            (
                &["odata.maxpagesize=10"],
                true,
                Some("*"),
                "odata.maxpagesize=10,return=representation,odata.include-annotations=\"*\"",
            ),
            (
                &["odata.maxpagesize=10", "return=minimal"],
                true,
                None,
                "odata.maxpagesize=10,return=representation",
            ),
            (
                &["odata.include-annotations=\"a,b\", odata.maxpagesize=5"],
                false,
                Some("-*"),
                "odata.maxpagesize=5,odata.include-annotations=\"-*\"",
            ),
            (
                &["return=representation"],
                true,
                None,
                "return=representation",
            ),
            (
                &[],
                false,
                Some("Microsoft.Dynamics.CRM.*"),
                "odata.include-annotations=\"Microsoft.Dynamics.CRM.*\"",
            ),
        ];
        for (existing, representation, annotations, expected) in cases {
            let mut req = get();
            for value in existing {
                req = req.header("prefer", *value);
            }
            let options = RequestOptions {
                return_representation: representation,
                include_annotations: annotations.map(str::to_string),
                ..RequestOptions::default()
            };
            let req = options.apply(req).unwrap();
            let prefer: Vec<_> = headers(&req)
                .into_iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("prefer"))
                .collect();
            assert_eq!(prefer, [("Prefer", expected)], "{existing:?}");
        }
    }

    #[test]
    fn bad_option_values_are_invalid_requests_naming_the_option() {
        let cases = [
            (
                RequestOptions {
                    caller_object_id: Some("not-a-guid".into()),
                    ..RequestOptions::default()
                },
                "caller-object-id",
            ),
            (
                RequestOptions {
                    solution_unique_name: Some("My Solution\r\nX: y".into()),
                    ..RequestOptions::default()
                },
                "solution-unique-name",
            ),
        ];
        let mut cases = cases.to_vec();
        for bad in [
            "",
            "\"*",
            "*\",return=minimal",
            "a,b",
            "a\r\nX: y",
            "a b",
            "é",
        ] {
            cases.push((
                RequestOptions {
                    include_annotations: Some(bad.into()),
                    ..RequestOptions::default()
                },
                "include-annotations",
            ));
        }
        for (options, name) in cases {
            assert!(
                matches!(options.apply(get()), Err(Error::InvalidRequest(m)) if m.starts_with(name)),
                "{options:?}"
            );
        }
    }

    #[test]
    fn option_headers_replace_earlier_ones_of_the_same_name() {
        let options = RequestOptions {
            strong_consistency: true,
            ..RequestOptions::default()
        };
        let req = options
            .apply(get().header("consistency", "Eventual"))
            .unwrap();
        assert_eq!(headers(&req), [("Consistency", "Strong")]);
    }
}
