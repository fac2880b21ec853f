//! Microsoft's clouds: which Entra ID login hosts issue tokens for which
//! Dataverse domains. A discovered authority must belong to the org's cloud,
//! so a hostile answer at `Url` cannot redirect our credential elsewhere.

/// One sovereign or commercial cloud.
#[derive(Debug, PartialEq, Eq)]
pub struct Cloud {
    pub name: &'static str,
    /// Dataverse host suffixes of this cloud.
    pub dataverse_suffixes: &'static [&'static str],
    /// Its Entra ID login hosts; the first is the default authority host.
    pub login_hosts: &'static [&'static str],
}

/// Most specific suffixes first.
pub const CLOUDS: &[Cloud] = &[
    Cloud {
        name: "US Government (GCC High)",
        dataverse_suffixes: &[".crm.microsoftdynamics.us"],
        login_hosts: &["login.microsoftonline.us"],
    },
    Cloud {
        name: "US Government (DoD)",
        dataverse_suffixes: &[".crm.appsplatform.us"],
        login_hosts: &["login.microsoftonline.us"],
    },
    Cloud {
        name: "China (operated by 21Vianet)",
        dataverse_suffixes: &[".crm.dynamics.cn"],
        login_hosts: &["login.chinacloudapi.cn", "login.partner.microsoftonline.cn"],
    },
    Cloud {
        // crm, crm2 … crm21 regions, and GCC (crm9), which uses commercial Entra ID.
        name: "commercial",
        dataverse_suffixes: &[".dynamics.com"],
        login_hosts: &["login.microsoftonline.com"],
    },
];

/// Every Entra ID login host of every cloud.
pub fn all_login_hosts() -> impl Iterator<Item = &'static str> {
    CLOUDS.iter().flat_map(|c| c.login_hosts.iter().copied())
}

/// The cloud an org host (lower-case, no port) belongs to, if it is a
/// Microsoft Dataverse domain.
pub fn of_org_host(host: &str) -> Option<&'static Cloud> {
    CLOUDS.iter().find(|cloud| {
        cloud
            .dataverse_suffixes
            .iter()
            .any(|suffix| host.ends_with(suffix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataverse_domains_map_to_their_clouds_login_hosts() {
        let cases = [
            (
                "contoso.crm.dynamics.com",
                Some("login.microsoftonline.com"),
            ),
            (
                "contoso.crm4.dynamics.com",
                Some("login.microsoftonline.com"),
            ),
            (
                "agency.crm9.dynamics.com",
                Some("login.microsoftonline.com"),
            ),
            (
                "agency.crm.microsoftdynamics.us",
                Some("login.microsoftonline.us"),
            ),
            (
                "agency.crm.appsplatform.us",
                Some("login.microsoftonline.us"),
            ),
            ("contoso.crm.dynamics.cn", Some("login.chinacloudapi.cn")),
            ("crm.contoso.example", None),
            ("evil-dynamics.com.example", None),
        ];
        for (host, login) in cases {
            assert_eq!(of_org_host(host).map(|c| c.login_hosts[0]), login, "{host}");
        }
        assert_eq!(all_login_hosts().count(), 5);
    }
}
