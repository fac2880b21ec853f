//! Connection strings and structured settings: every key, its checks, and
//! the messages that never show the secret.

use super::*;

const SECRET: &str = "S3cr3t!Value";
const THUMB: &str = "0123456789ABCDEF0123456789ABCDEF01234567";
const ORG: &str = "https://contoso.crm.dynamics.com";
const APP: &str = "00000000-0000-0000-0000-0000000000a1";
/// Url and ClientId; tests add the rest.
const BASE: &str =
    "Url=https://contoso.crm.dynamics.com/;ClientId=00000000-0000-0000-0000-0000000000a1";

fn ok(s: &str) -> Settings {
    parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(s: &str) -> String {
    match parse(s) {
        Err(Error::InvalidSettings(m)) => m,
        other => panic!("{s:?}: expected InvalidSettings, got {other:?}"),
    }
}

fn secret_of(s: &Settings) -> &str {
    match &s.credential {
        Credential::ClientSecret(secret) => secret.expose(),
        other => panic!("expected a client secret, got {other:?}"),
    }
}

/// (thumbprint, store name, password)
fn certificate_of(s: &Settings) -> (&str, Option<&str>, Option<&str>) {
    match &s.credential {
        Credential::Certificate {
            thumbprint,
            store_name,
            password,
        } => (
            thumbprint.as_str(),
            store_name.as_deref(),
            password.as_ref().map(Secret::expose),
        ),
        other => panic!("expected a certificate, got {other:?}"),
    }
}

fn with_secret(s: &str) -> String {
    format!("{BASE};ClientSecret={SECRET};{s}")
}

#[test]
fn a_typical_service_client_string_parses() {
    let s = ok(&format!(
        "AuthType=ClientSecret;SkipDiscovery=true;Url={ORG}/;Secret={SECRET};\
             ClientId={APP};RequireNewInstance=true"
    ));
    let expected = Settings {
        org_url: ORG.to_string(),
        client_id: APP.to_string(),
        credential: Credential::ClientSecret(Secret::new(SECRET)),
        tenant_id: None,
        authority: None,
        trusted_authority_hosts: vec![],
        require_new_instance: true,
        allow_http_loopback: false,
    };
    assert_eq!(s, expected);
}

#[test]
fn a_multi_line_string_parses() {
    let s = ok(&format!(
        "AuthType=Certificate;\n  Url={ORG};\n  ClientId={APP};\n  Thumbprint={THUMB};\n"
    ));
    assert_eq!((s.org_url.as_str(), certificate_of(&s).0), (ORG, THUMB));
}

#[test]
fn every_url_alias_sets_the_org_url() {
    for key in ["ServiceUri", "Service Uri", "Url", "Server"] {
        let s = ok(&format!(
            "{key}=https://contoso.crm.dynamics.com/;ClientId={APP};ClientSecret={SECRET}"
        ));
        assert_eq!(s.org_url, ORG, "{key}");
    }
}

#[test]
fn every_client_id_alias_sets_the_client_id() {
    for key in ["ClientId", "AppId", "ApplicationId"] {
        let s = ok(&format!("Url={ORG};{key}={APP};ClientSecret={SECRET}"));
        assert_eq!(s.client_id, APP, "{key}");
    }
}

#[test]
fn every_auth_type_alias_is_read() {
    for key in ["AuthType", "AuthenticationType"] {
        let s = ok(&format!(
            "{BASE};{key}=Certificate;Thumbprint={THUMB};Secret=x"
        ));
        assert_eq!(certificate_of(&s).0, THUMB, "{key}");
    }
}

#[test]
fn every_client_secret_alias_sets_the_secret() {
    for key in ["ClientSecret", "Secret"] {
        let s = ok(&format!("{BASE};AuthType=ClientSecret;{key}={SECRET}"));
        assert_eq!(secret_of(&s), SECRET, "{key}");
    }
}

#[test]
fn every_thumbprint_store_name_and_password_alias_sets_the_certificate() {
    for thumb_key in ["CertificateThumbprint", "Thumbprint"] {
        for store_key in ["CertificateStoreName", "StoreName"] {
            for password_key in ["CertificatePassword", "CertPassword"] {
                let s = ok(&format!(
                    "{BASE};AuthType=Certificate;{thumb_key}={THUMB};{store_key}=My;\
                         {password_key}={SECRET}"
                ));
                assert_eq!(
                    certificate_of(&s),
                    (THUMB, Some("My"), Some(SECRET)),
                    "{thumb_key} {store_key} {password_key}"
                );
            }
        }
    }
}

#[test]
fn every_tenant_alias_sets_the_tenant_id() {
    for key in ["TenantId", "Tenant"] {
        let s = ok(&with_secret(&format!("{key}=contoso.onmicrosoft.com")));
        assert_eq!(
            s.tenant_id.as_deref(),
            Some("contoso.onmicrosoft.com"),
            "{key}"
        );
    }
}

#[test]
fn earlier_aliases_beat_later_ones_when_both_are_non_empty() {
    let cases: &[(&str, &str)] = &[
        (
            "Url=https://b.crm.dynamics.com;ServiceUri=https://a.crm.dynamics.com",
            "https://a.crm.dynamics.com",
        ),
        (
            "Server=https://b.crm.dynamics.com;Service Uri=https://a.crm.dynamics.com",
            "https://a.crm.dynamics.com",
        ),
        (
            "Server=https://b.crm.dynamics.com;Url=https://a.crm.dynamics.com",
            "https://a.crm.dynamics.com",
        ),
    ];
    for (urls, expected) in cases {
        let s = ok(&format!("{urls};ClientId={APP};Secret={SECRET}"));
        assert_eq!(s.org_url, *expected, "{urls}");
    }
    let s = ok(&format!(
        "Url={ORG};ApplicationId=c;AppId=b;ClientId=a;Secret=second;ClientSecret=first"
    ));
    assert_eq!((s.client_id.as_str(), secret_of(&s)), ("a", "first"));
    let s = ok(&format!(
        "{BASE};Thumbprint={};CertificateThumbprint={THUMB};StoreName=Root;\
             CertificateStoreName=My",
        "F".repeat(40)
    ));
    assert_eq!(certificate_of(&s).0, THUMB);
    assert_eq!(certificate_of(&s).1, Some("My"));
}

#[test]
fn an_empty_alias_falls_through_to_the_next() {
    for urls in [
        "ServiceUri=;Url=https://contoso.crm.dynamics.com",
        "ServiceUri='';Url=https://contoso.crm.dynamics.com",
        "ServiceUri='   ';Url=https://contoso.crm.dynamics.com",
        "Url=https://contoso.crm.dynamics.com;ServiceUri=",
    ] {
        let s = ok(&format!("{urls};ClientId={APP};Secret={SECRET}"));
        assert_eq!(s.org_url, ORG, "{urls}");
    }
    let s = ok(&format!("{BASE};ClientSecret=' ';Secret={SECRET}"));
    assert_eq!(secret_of(&s), SECRET);
}

#[test]
fn keys_are_case_insensitive() {
    let s = ok(&format!(
        "url={ORG};CLIENTID={APP};clientsecret={SECRET};AUTHTYPE=ClientSecret;\
             tenantid=t1;requirenewinstance=FALSE"
    ));
    assert_eq!(
        (s.client_id.as_str(), secret_of(&s), s.tenant_id.as_deref()),
        (APP, SECRET, Some("t1"))
    );
    assert!(!s.require_new_instance);
    let s = ok(&format!("SERVICE URI={ORG};appid={APP};SECRET={SECRET}"));
    assert_eq!(s.org_url, ORG);
}

#[test]
fn auth_type_values_are_case_insensitive() {
    for value in ["clientsecret", "CLIENTSECRET", " ClientSecret "] {
        let s = ok(&format!(
            "{BASE};AuthType={value};Secret={SECRET};Thumbprint={THUMB}"
        ));
        assert_eq!(secret_of(&s), SECRET, "{value}");
    }
    for value in ["certificate", "CERTIFICATE", "'Certificate'"] {
        let s = ok(&format!(
            "{BASE};AuthType={value};Secret={SECRET};Thumbprint={THUMB}"
        ));
        assert_eq!(certificate_of(&s).0, THUMB, "{value}");
    }
}

#[test]
fn the_last_duplicate_key_wins() {
    let s = ok(&format!(
        "Url=https://old.crm.dynamics.com;{BASE};Secret=old;secret={SECRET};ClientId=x;\
             CLIENTID={APP}"
    ));
    assert_eq!(
        (s.org_url.as_str(), s.client_id.as_str(), secret_of(&s)),
        (ORG, APP, SECRET)
    );
}

#[test]
fn an_empty_value_removes_an_earlier_one() {
    let m = err(&format!(
        "{BASE};ClientSecret={SECRET};ClientSecret=;AuthType=ClientSecret"
    ));
    assert!(m.starts_with("ClientSecret is required"), "{m}");
    let s = ok(&with_secret("TenantId=t1;TenantId="));
    assert_eq!(s.tenant_id, None);
}

#[test]
fn quoted_values_may_hold_semicolons_and_doubled_quotes() {
    let cases = [
        ("'a;b'", "a;b"),
        ("\"a;b\"", "a;b"),
        ("'it''s'", "it's"),
        ("\"say \"\"hi\"\"\"", "say \"hi\""),
        ("'  padded  '", "  padded  "),
        ("\"S3cr3t!Value\"  ", SECRET),
    ];
    for (quoted, expected) in cases {
        let s = ok(&format!(
            "{BASE};ClientSecret={quoted};AuthType=ClientSecret"
        ));
        // validate trims the secret (see there), so compare trimmed.
        assert_eq!(secret_of(&s), expected.trim(), "{quoted}");
    }
}

#[test]
fn double_equals_in_a_key_is_a_literal_equals_and_unknown() {
    // "Client==Secret" is the key "Client=Secret": not ClientSecret.
    let m = err(&format!(
        "{BASE};AuthType=ClientSecret;Client==Secret={SECRET}"
    ));
    assert!(m.starts_with("ClientSecret is required"), "{m}");
    // '=' in an unquoted value is literal: base64 secrets end in '='.
    let s = ok(&format!(
        "{BASE};ClientSecret=abc+/==;AuthType=ClientSecret"
    ));
    assert_eq!(secret_of(&s), "abc+/==");
}

#[test]
fn whitespace_around_keys_and_values_is_trimmed() {
    let s = ok(&format!(
        "  Url =  {ORG}/  ;\t ClientId = {APP} ;  Service Uri  = {ORG} ; Secret = {SECRET} "
    ));
    assert_eq!(
        (s.org_url.as_str(), s.client_id.as_str(), secret_of(&s)),
        (ORG, APP, SECRET)
    );
}

#[test]
fn trailing_and_duplicate_semicolons_are_ignored() {
    for s in [
        format!(";;{BASE};;ClientSecret={SECRET};;;"),
        format!("{BASE};ClientSecret={SECRET};"),
        format!(" ; {BASE} ; ; ClientSecret={SECRET} ; "),
    ] {
        assert_eq!(secret_of(&ok(&s)), SECRET, "{s}");
    }
}

#[test]
fn syntax_errors_name_the_position_and_a_known_key() {
    let cases: &[(&str, &str)] = &[
        (
            "Url=https://contoso.crm.dynamics.com/;ClientId=x;ClientSecret='S3cr3t!Value",
            "connection string: unterminated quote in the value of 'ClientSecret' starting at position 63",
        ),
        (
            "Url=x;Secret=\"abc\"def",
            "connection string: unexpected text at position 19 after the closing quote of the value of 'Secret'",
        ),
        (
            "Url=x;ClientId",
            "connection string: key 'ClientId' at position 7 has no '='",
        ),
        (
            "Url=x;=y",
            "connection string: '=' at position 7 has no key before it",
        ),
    ];
    for (input, start) in cases {
        let m = err(input);
        assert!(m.starts_with(start), "{input}: {m}");
    }
}

#[test]
fn syntax_errors_do_not_name_unknown_keys() {
    // A secret with an unquoted ';' leaves a fragment that looks like a key.
    for (input, fragment) in [
        ("ClientSecret=abc;defGhi;Url=x", "defGhi"),
        ("Url=x;Sekrit='abc", "Sekrit"),
        ("Url=x;Sekrit='a'b", "Sekrit"),
    ] {
        let m = err(input);
        assert!(
            m.starts_with("connection string:") && !m.contains(fragment),
            "{m}"
        );
    }
}

#[test]
fn missing_required_keys_are_named_with_their_aliases() {
    let cases = [
        (
            format!("ClientId={APP};ClientSecret={SECRET}"),
            "Url is required, e.g. Url=https://yourorg.crm.dynamics.com/ (aliases: ServiceUri, Service Uri, Server)",
        ),
        (
            format!("Url={ORG};ClientSecret={SECRET}"),
            "ClientId is required: the application (client) id of the app registration (aliases: AppId, ApplicationId)",
        ),
        (
            format!("{BASE};AuthType=ClientSecret;Thumbprint={THUMB}"),
            "ClientSecret is required for AuthType=ClientSecret (aliases: Secret)",
        ),
        (
            format!("{BASE};AuthType=Certificate;Secret={SECRET}"),
            "CertificateThumbprint is required for AuthType=Certificate (aliases: Thumbprint)",
        ),
        (
            BASE.to_string(),
            "AuthType is required (ClientSecret, Certificate, ManagedIdentity or WorkloadIdentity)",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(err(&input), expected, "{input}");
    }
}

#[test]
fn a_misspelt_key_is_mentioned_when_a_required_key_is_missing() {
    let cases = [
        (
            format!("{BASE};AuthType=ClientSecret;ClientSecert={SECRET}"),
            "'ClientSecert'",
        ),
        (format!("Uri={ORG};ClientId={APP};Secret={SECRET}"), "'Uri'"),
        (
            format!("Url={ORG};ClientID_={APP};Secret={SECRET}"),
            "'ClientID_'",
        ),
    ];
    for (input, key) in cases {
        let m = err(&input);
        assert!(
            m.contains(&format!("unknown key {key} — is it misspelt?")),
            "{m}"
        );
        assert!(!m.contains(SECRET), "{m}");
    }
}

#[test]
fn user_sign_in_auth_types_are_rejected_with_advice() {
    for (value, name) in [
        ("OAuth", "OAuth"),
        ("oauth", "OAuth"),
        ("AD", "AD"),
        ("Office365", "Office365"),
        ("IFD", "IFD"),
        ("Claims", "Claims"),
    ] {
        let m = err(&format!(
            "AuthType={value};Url={ORG};Username=u@contoso.com;Password={SECRET}"
        ));
        assert_eq!(
            m,
            format!(
                "AuthType={name} asks for user sign-in, which is not supported by a \
                     server-to-server client; use AuthType=ClientSecret or AuthType=Certificate \
                     with an app registration"
            )
        );
    }
}

#[test]
fn external_token_management_points_to_connect_with_token() {
    let m = err(&with_secret("AuthType=ExternalTokenManagement"));
    assert!(
        m.contains("ExternalTokenManagement") && m.contains("connect-with-token"),
        "{m}"
    );
}

#[test]
fn an_unknown_auth_type_is_named_with_the_supported_values() {
    let m = err(&with_secret("AuthType=Kerberos"));
    assert_eq!(
        m,
        "AuthType=Kerberos is not supported; use AuthType=ClientSecret, Certificate, \
         ManagedIdentity or WorkloadIdentity"
    );
    // Not a plain word: not echoed.
    let m = err(&with_secret("AuthType='S3cr3t!Value'"));
    assert!(m.contains("(not shown)") && !m.contains(SECRET), "{m}");
}

#[test]
fn auth_type_is_inferred_from_the_only_credential_given() {
    assert_eq!(secret_of(&ok(&with_secret(""))), SECRET);
    let s = ok(&format!("{BASE};Thumbprint={THUMB}"));
    assert_eq!(certificate_of(&s), (THUMB, None, None));
}

#[test]
fn auth_type_cannot_be_inferred_from_both_credentials() {
    let m = err(&format!("{BASE};Secret={SECRET};Thumbprint={THUMB}"));
    assert!(m.starts_with("AuthType is missing and both"), "{m}");
}

#[test]
fn thumbprint_is_normalised_to_upper_case_hex() {
    let expected = "AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12";
    for input in [
        "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",
        "AB:12:CD:34:EF:56:AB:12:CD:34:EF:56:AB:12:CD:34:EF:56:AB:12",
        "ab 12 cd 34 ef 56 ab 12 cd 34 ef 56 ab 12 cd 34 ef 56 ab 12",
        "\u{200E}ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12",
        "'  ab12 CD34 ef56 AB12 cd34 EF56 ab12 CD34 ef56 AB12 '",
    ] {
        let s = ok(&format!("{BASE};AuthType=Certificate;Thumbprint={input}"));
        assert_eq!(certificate_of(&s).0, expected, "{input}");
    }
}

#[test]
fn bad_thumbprints_are_rejected() {
    let cases = [
        ("ab12", "40 hex digits; it has 4"),
        (&"A".repeat(41), "it has 41"),
        (&"A".repeat(64), "SHA-256"),
        (
            "G123456789ABCDEF0123456789ABCDEF01234567",
            "other characters",
        ),
        (
            "01-23-45-67-89-AB-CD-EF-01-23-45-67-89-AB-CD-EF-01-23-45-67",
            "other characters",
        ),
        ("' : : '", "CertificateThumbprint is required"),
    ];
    for (input, part) in cases {
        let m = err(&format!("{BASE};AuthType=Certificate;Thumbprint={input}"));
        assert!(
            m.contains("CertificateThumbprint") && m.contains(part),
            "{input}: {m}"
        );
    }
}

#[test]
fn tenant_id_and_authority_extensions_are_read() {
    let s = ok(&with_secret(
        " TenantId = 72f988bf-86f1-41af-91ab-2d7cd011db47 ",
    ));
    assert_eq!(
        s.tenant_id.as_deref(),
        Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
    );
    assert_eq!(s.authority, None);
    let s = ok(&with_secret(
        "Authority=https://Login.MicrosoftOnline.us/contoso.onmicrosoft.com/",
    ));
    assert_eq!(
        s.authority.as_deref(),
        Some("https://login.microsoftonline.us/contoso.onmicrosoft.com")
    );
    assert_eq!(s.tenant_id, None);
}

#[test]
fn tenant_id_and_authority_together_are_rejected() {
    let m = err(&with_secret(
        "TenantId=t1;Authority=https://login.microsoftonline.com/t1",
    ));
    assert!(m.contains("either TenantId or Authority"), "{m}");
}

#[test]
fn bad_tenant_id_and_authority_are_rejected() {
    let cases = [
        ("TenantId=a/b", "TenantId must be"),
        ("Tenant='a b'", "TenantId must be"),
        (
            "Authority=http://login.microsoftonline.com/t",
            "Authority must use https://",
        ),
        (
            "Authority=https://login.microsoftonline.com",
            "Authority must include the tenant",
        ),
    ];
    for (extra, start) in cases {
        let m = err(&with_secret(extra));
        assert!(m.starts_with(start), "{extra}: {m}");
    }
}

#[test]
fn authority_host_list_is_split_trimmed_and_lower_cased() {
    let s = ok(&with_secret(
        "AuthorityHost= Login.Example.com , ,login.contoso.US,",
    ));
    assert_eq!(
        s.trusted_authority_hosts,
        ["login.example.com", "login.contoso.us"]
    );
    assert!(ok(&with_secret("")).trusted_authority_hosts.is_empty());
}

#[test]
fn a_bad_authority_host_is_rejected() {
    for hosts in ["https://login.example.com", "login.example.com/t", "a,b c"] {
        let m = err(&with_secret(&format!("AuthorityHost='{hosts}'")));
        assert!(
            m.starts_with("AuthorityHost must be host names"),
            "{hosts}: {m}"
        );
    }
}

#[test]
fn certificate_password_is_kept_as_a_secret() {
    let s = ok(&format!(
        "{BASE};Thumbprint={THUMB};CertPassword='{SECRET}'"
    ));
    assert_eq!(certificate_of(&s).2, Some(SECRET));
    assert!(!format!("{s:?}").contains(SECRET));
}

#[test]
fn require_new_instance_is_read_and_defaults_to_true() {
    let cases = [
        ("", true),
        ("RequireNewInstance=true", true),
        ("RequireNewInstance=False", false),
        ("RequireNewInstance= TRUE ", true),
    ];
    for (extra, expected) in cases {
        assert_eq!(
            ok(&with_secret(extra)).require_new_instance,
            expected,
            "{extra}"
        );
    }
    for bad in ["yes", "1", "S3cr3t!Value"] {
        let m = err(&with_secret(&format!("RequireNewInstance={bad}")));
        assert_eq!(m, "RequireNewInstance must be true or false");
    }
}

#[test]
fn service_client_keys_with_no_meaning_here_are_accepted_and_ignored() {
    let extra = format!(
        "SkipDiscovery=false;LoginPrompt=Never;RedirectUri=app://58145B91;ReplyUrl=http://localhost;\
             TokenCacheStorePath=c:\\cache;Username=u;User Name=u;UserId=u;User Id=u;Password={SECRET};\
             Domain=CONTOSO;HomeRealmUri=https://adfs.contoso.com;Home Realm Uri=x;Integrated Security=true"
    );
    let s = ok(&with_secret(&extra));
    assert_eq!(s, ok(&with_secret("")));
}

#[test]
fn unknown_keys_are_ignored() {
    let s = ok(&with_secret("Timeout=30;Foo Bar=baz;x==y=1"));
    assert_eq!(s, ok(&with_secret("")));
}

#[test]
fn url_problems_surface_through_parse_naming_url() {
    let cases = [
        (
            "Url=http://contoso.crm.dynamics.com",
            "Url must use https://, not http://",
        ),
        (
            "Url=contoso.crm.dynamics.com",
            "Url must be an absolute URL",
        ),
        ("Url=/api/data/v9.2", "Url must be an absolute URL"),
        (
            "ServiceUri='https://contoso.crm.dynamics.com:70000/'",
            "Url has an invalid port",
        ),
    ];
    for (url, start) in cases {
        let m = err(&format!("{url};ClientId={APP};Secret={SECRET}"));
        assert!(
            m.starts_with(start) && m.contains("https://yourorg.crm.dynamics.com/"),
            "{m}"
        );
    }
}

#[test]
fn url_path_is_dropped_and_port_kept_unless_443() {
    let cases = [
        ("https://Contoso.crm.dynamics.com/main.aspx?appid=1", ORG),
        ("https://contoso.crm.dynamics.com:443/", ORG),
        (
            "https://localhost:8443/api/data/v9.2/",
            "https://localhost:8443",
        ),
    ];
    for (url, expected) in cases {
        let s = ok(&format!("Url={url};ClientId={APP};Secret={SECRET}"));
        assert_eq!(s.org_url, expected, "{url}");
    }
}

/// Every error whose input holds a secret must not show it, nor (where a
/// `;` split it) a fragment of it.
#[test]
fn no_error_message_contains_a_secret_value() {
    let s = SECRET;
    let cases = [
        // syntax errors in and around secret values
        format!("{BASE};ClientSecret='{s}"),
        format!("{BASE};ClientSecret=\"{s}"),
        format!("{BASE};ClientSecret='{s}'x"),
        format!("{BASE};Secret=\"{s}\" {s}"),
        format!("{BASE};ClientSecret=S3cr3t!;Value"),
        format!("{BASE};ClientSecret=x;{s}"),
        format!("{s};{BASE}"),
        format!("{BASE};ClientSecret={s};=x"),
        format!("{BASE};CertificatePassword='{s}"),
        format!("{BASE};Password='{s}"),
        // semantic errors with a secret present
        format!("ClientId={APP};ClientSecret={s}"),
        format!("Url={ORG};Secret={s}"),
        format!("Url=http://contoso.crm.dynamics.com;ClientId={APP};Secret={s}"),
        format!("Url=https://u:{s}@contoso.crm.dynamics.com;ClientId={APP};Secret={s}"),
        format!("Url='https://contoso crm/{s}@x';ClientId={APP};Secret={s}"),
        format!("{BASE};AuthType=OAuth;Password={s}"),
        format!("{BASE};AuthType=OAuth;Secret={s}"),
        format!("{BASE};AuthType={s};Secret={s}"),
        format!("{BASE};AuthType=ExternalTokenManagement;Secret={s}"),
        format!("{BASE};AuthType=Certificate;Secret={s}"),
        format!("{BASE};AuthType=Certificate;Thumbprint={s};CertificatePassword={s}"),
        format!("{BASE};Thumbprint=abc;CertPassword={s}"),
        format!("{BASE};Secret={s};Thumbprint={THUMB}"),
        format!("{BASE};Secret={s};RequireNewInstance={s}"),
        format!("{BASE};Secret={s};TenantId={s}"),
        format!("{BASE};Secret={s};Authority={s}"),
        format!("{BASE};Secret={s};Authority=https://login.microsoftonline.com/{s}"),
        format!("{BASE};Secret={s};AuthorityHost={s}"),
        format!("{BASE};Secret={s};TenantId=t;Authority=https://login.microsoftonline.com/t"),
        format!("{BASE};AuthType=ClientSecret;ClientSecert={s};Password={s}"),
        format!("{BASE};AuthType=ClientSecret;{s}={s}"),
    ];
    for input in cases {
        let m = err(&input);
        for part in [SECRET, "S3cr3t", "Value"] {
            assert!(!m.contains(part), "input {input:?} gave {m:?}");
        }
    }
}

#[test]
fn debug_output_never_contains_a_secret() {
    for input in [
        with_secret("Password=S3cr3t!Value"),
        format!("{BASE};Thumbprint={THUMB};CertificatePassword={SECRET}"),
    ] {
        let s = ok(&input);
        let debug = format!("{s:?} {:?}", s.credential);
        assert!(!debug.contains(SECRET) && debug.contains("***"), "{debug}");
    }
}

fn field_by_field() -> Settings {
    Settings {
        org_url: " HTTPS://Contoso.CRM.dynamics.com:443/ ".to_string(),
        client_id: format!("  {APP}\n"),
        credential: Credential::Certificate {
            thumbprint: "ab:12:cd:34:ef:56:ab:12:cd:34:ef:56:ab:12:cd:34:ef:56:ab:12".to_string(),
            store_name: Some("  ".to_string()),
            password: Some(Secret::new("")),
        },
        tenant_id: Some(" contoso.onmicrosoft.com ".to_string()),
        authority: None,
        trusted_authority_hosts: vec![" Login.Example.COM".to_string()],
        require_new_instance: false,
        allow_http_loopback: false,
    }
}

#[test]
fn validate_normalises_settings_built_field_by_field() {
    let s = field_by_field().validate().unwrap();
    let expected = Settings {
        org_url: ORG.to_string(),
        client_id: APP.to_string(),
        credential: Credential::Certificate {
            thumbprint: "AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12".to_string(),
            store_name: None,
            password: None,
        },
        tenant_id: Some("contoso.onmicrosoft.com".to_string()),
        authority: None,
        trusted_authority_hosts: vec!["login.example.com".to_string()],
        require_new_instance: false,
        allow_http_loopback: false,
    };
    assert_eq!(s, expected);
    // Idempotent: a validated Settings validates to itself.
    assert_eq!(s.clone().validate(), Ok(s));
}

#[test]
fn validate_trims_whitespace_around_a_client_secret() {
    let s = Settings {
        credential: Credential::ClientSecret(Secret::new(format!(" {SECRET}\n"))),
        ..field_by_field()
    };
    assert_eq!(secret_of(&s.validate().unwrap()), SECRET);
}

#[test]
fn validate_rejects_empty_or_malformed_fields() {
    let cases: Vec<(Settings, &str)> = vec![
        (
            Settings {
                org_url: String::new(),
                ..field_by_field()
            },
            "Url is empty",
        ),
        (
            Settings {
                org_url: "http://x".into(),
                ..field_by_field()
            },
            "Url must use https://",
        ),
        (
            Settings {
                client_id: " ".into(),
                ..field_by_field()
            },
            "ClientId is required",
        ),
        (
            Settings {
                credential: Credential::ClientSecret(Secret::new(" \n")),
                ..field_by_field()
            },
            "ClientSecret is required for AuthType=ClientSecret (aliases: Secret)",
        ),
        (
            Settings {
                credential: Credential::Certificate {
                    thumbprint: String::new(),
                    store_name: None,
                    password: None,
                },
                ..field_by_field()
            },
            "CertificateThumbprint is required",
        ),
        (
            Settings {
                tenant_id: Some(" ".into()),
                ..field_by_field()
            },
            "TenantId is empty",
        ),
        (
            Settings {
                authority: Some("https://login.microsoftonline.com/t".into()),
                ..field_by_field()
            },
            "give either TenantId or Authority",
        ),
        (
            Settings {
                tenant_id: None,
                authority: Some("https://login.microsoftonline.com/t/oauth2/v2.0/token".into()),
                ..field_by_field()
            },
            "Authority must end at the tenant",
        ),
        (
            Settings {
                trusted_authority_hosts: vec!["".into()],
                ..field_by_field()
            },
            "AuthorityHost must be host names",
        ),
    ];
    for (settings, start) in cases {
        match settings.validate() {
            Err(Error::InvalidSettings(m)) => assert!(m.starts_with(start), "{m}"),
            other => panic!("expected InvalidSettings starting {start:?}, got {other:?}"),
        }
    }
}

#[test]
fn edit_distance_counts_single_character_edits() {
    let cases = [
        ("", "", 0),
        ("abc", "abc", 0),
        ("secert", "secret", 2),
        ("uri", "url", 1),
        ("a", "", 1),
        ("kitten", "sitting", 3),
    ];
    for (a, b, d) in cases {
        assert_eq!(edit_distance(a, b), d, "{a} {b}");
    }
}

#[test]
fn allow_http_loopback_admits_http_only_for_loopback_urls() {
    let http_url =
        |url: &str, extra: &str| format!("Url={url};ClientId={APP};Secret={SECRET};{extra}");
    // (connection string, Ok(origin) or the start of the error)
    let cases = [
        (
            http_url("http://127.0.0.1:8080/", "AllowHttpLoopback=true"),
            Ok("http://127.0.0.1:8080"),
        ),
        (
            http_url("http://localhost:9/", "allowhttploopback= TRUE "),
            Ok("http://localhost:9"),
        ),
        (
            http_url("http://[::1]:9/", "AllowHttpLoopback=true"),
            Ok("http://[::1]:9"),
        ),
        (
            http_url(
                "https://contoso.crm.dynamics.com/",
                "AllowHttpLoopback=true",
            ),
            Ok(ORG),
        ),
        (
            http_url("http://127.0.0.1:8080/", ""),
            Err("Url must use https://, not http://"),
        ),
        (
            http_url("http://127.0.0.1:8080/", "AllowHttpLoopback=false"),
            Err("Url must use https://, not http://"),
        ),
        (
            http_url("http://contoso.crm.dynamics.com/", "AllowHttpLoopback=true"),
            Err("Url may use http:// only for a loopback host"),
        ),
        (
            http_url("http://127.0.0.1/", "AllowHttpLoopback=yes"),
            Err("AllowHttpLoopback must be true or false"),
        ),
    ];
    for (input, expected) in cases {
        match expected {
            Ok(origin) => assert_eq!(ok(&input).org_url, origin, "{input}"),
            Err(start) => {
                let m = err(&input);
                assert!(m.starts_with(start), "{input}: {m}");
                assert!(!m.contains(SECRET), "{m}");
            }
        }
    }
    assert!(!ok(&with_secret("")).allow_http_loopback);
    assert!(ok(&with_secret("AllowHttpLoopback=true")).allow_http_loopback);
}

#[test]
fn allow_http_loopback_also_covers_an_explicit_authority() {
    let base = format!("Url=http://127.0.0.1:9/;ClientId={APP};Secret={SECRET}");
    let s = ok(&format!(
        "{base};AllowHttpLoopback=true;Authority=http://localhost:9/tenant"
    ));
    assert_eq!(s.authority.as_deref(), Some("http://localhost:9/tenant"));
    let m = err(&format!(
        "{BASE};Secret={SECRET};Authority=http://localhost:9/tenant"
    ));
    assert!(m.starts_with("Authority must use https://"), "{m}");
    let m = err(&format!(
        "{base};AllowHttpLoopback=true;Authority=http://login.microsoftonline.com/t"
    ));
    assert!(
        m.starts_with("Authority may use http:// only for a loopback host"),
        "{m}"
    );
}

const MI: &str = "AuthType=ManagedIdentity;Url=https://contoso.crm.dynamics.com/";
const WI: &str = "AuthType=WorkloadIdentity;Url=https://contoso.crm.dynamics.com/";

#[test]
fn a_managed_identity_needs_no_client_id_and_is_named_by_one_id_at_most() {
    let cases = [
        ("".to_string(), ManagedIdentityId::SystemAssigned, ""),
        (
            ";ClientId= c-1 ".to_string(),
            ManagedIdentityId::ClientId("c-1".into()),
            "c-1",
        ),
        (
            ";AppId=c-2".to_string(),
            ManagedIdentityId::ClientId("c-2".into()),
            "c-2",
        ),
        (
            ";ObjectId=o-1".to_string(),
            ManagedIdentityId::ObjectId("o-1".into()),
            "",
        ),
        (
            ";PrincipalId=o-2".to_string(),
            ManagedIdentityId::ObjectId("o-2".into()),
            "",
        ),
        (
            ";ResourceId=/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/n".to_string(),
            ManagedIdentityId::ResourceId("/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/n".into()),
            "",
        ),
    ];
    for (extra, id, client_id) in cases {
        let s = ok(&format!("{MI}{extra}"));
        assert_eq!(s.credential, Credential::ManagedIdentity(id), "{extra}");
        assert_eq!((s.org_url.as_str(), s.client_id.as_str()), (ORG, client_id));
    }
    assert!(matches!(
        ok("authtype=managedidentity;url=https://contoso.crm.dynamics.com").credential,
        Credential::ManagedIdentity(ManagedIdentityId::SystemAssigned)
    ));
}

#[test]
fn managed_identity_refuses_several_ids_a_tenant_and_a_bad_resource_id() {
    for extra in [
        ";ClientId=a;ObjectId=b",
        ";ObjectId=b;ResourceId=/subscriptions/x",
        ";ClientId=a;ResourceId=/subscriptions/x",
    ] {
        let m = err(&format!("{MI}{extra}"));
        assert!(m.contains("not several"), "{extra}: {m}");
    }
    for extra in [
        ";TenantId=t",
        ";Authority=https://login.microsoftonline.com/t",
        ";AuthorityHost=login.example",
    ] {
        let m = err(&format!("{MI}{extra}"));
        assert!(
            m.contains("do not apply to AuthType=ManagedIdentity"),
            "{extra}: {m}"
        );
    }
    let m = err(&format!("{MI};ResourceId=my-identity-{SECRET}"));
    assert!(m.contains("/subscriptions/") && !m.contains(SECRET), "{m}");
}

#[test]
fn a_workload_identity_reads_its_token_source() {
    let cases = [
        ("", FederatedTokenSource::File(None)),
        (";FederatedToken=File", FederatedTokenSource::File(None)),
        (
            ";TokenFile= /var/run/secrets/azure/tokens/azure-identity-token ",
            FederatedTokenSource::File(Some(
                "/var/run/secrets/azure/tokens/azure-identity-token".into(),
            )),
        ),
        (
            ";TokenFilePath=/t",
            FederatedTokenSource::File(Some("/t".into())),
        ),
        (
            ";FederatedTokenFile=/t",
            FederatedTokenSource::File(Some("/t".into())),
        ),
        (
            ";FederatedToken=githubactions",
            FederatedTokenSource::GitHubActions,
        ),
    ];
    for (extra, source) in cases {
        let s = ok(&format!("{WI};ClientId={APP};TenantId=t{extra}"));
        assert_eq!(
            s.credential,
            Credential::WorkloadIdentity(source),
            "{extra}"
        );
        assert_eq!(
            (s.client_id.as_str(), s.tenant_id.as_deref()),
            (APP, Some("t"))
        );
    }
    // ClientId and TenantId may come from the environment at connect.
    let s = ok(WI);
    assert_eq!((s.client_id.as_str(), s.tenant_id.as_deref()), ("", None));
}

#[test]
fn a_workload_identity_refuses_two_sources_and_unknown_ones_without_echoing() {
    let m = err(&format!("{WI};TokenFile=/t;FederatedToken=GitHubActions"));
    assert!(m.contains("not both"), "{m}");
    let m = err(&format!("{WI};FederatedToken={SECRET}"));
    assert!(m.contains("GitHubActions") && !m.contains(SECRET), "{m}");
}

#[test]
fn structured_settings_take_the_new_credentials_without_a_client_id() {
    let mut fields = ok(&format!("{MI};ObjectId=o"));
    fields.client_id = String::new();
    assert!(fields.validate().is_ok());
    let mut blank = ok(MI);
    blank.credential = Credential::ManagedIdentity(ManagedIdentityId::ClientId("  ".into()));
    assert!(
        matches!(blank.validate(), Err(Error::InvalidSettings(m)) if m.contains("ClientId is empty"))
    );
    let mut file = ok(WI);
    file.credential = Credential::WorkloadIdentity(FederatedTokenSource::File(Some(" ".into())));
    assert!(
        matches!(file.validate(), Err(Error::InvalidSettings(m)) if m.contains("TokenFile is empty"))
    );
}
