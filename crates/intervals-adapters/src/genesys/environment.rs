//! Genesys Cloud environments (regions) and the two base URLs derived from them.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use super::error::ConfigError;

/// SDK region names (docs/genesys-api.md section 1.2) and their environment domains. Any other domain
/// is accepted as well: Genesys adds regions over time.
const REGIONS: &[(&str, &str)] = &[
    ("us_east_1", "mypurecloud.com"),
    ("us_east_2", "use2.us-gov-pure.cloud"),
    ("us_west_2", "usw2.pure.cloud"),
    ("ca_central_1", "cac1.pure.cloud"),
    ("sa_east_1", "sae1.pure.cloud"),
    ("mx_central_1", "mxc1.pure.cloud"),
    ("eu_west_1", "mypurecloud.ie"),
    ("eu_west_2", "euw2.pure.cloud"),
    ("eu_central_1", "mypurecloud.de"),
    ("eu_central_2", "euc2.pure.cloud"),
    ("eusc_de_east_1", "edee1.eusc-pure.cloud"),
    ("me_central_1", "mec1.pure.cloud"),
    ("ap_south_1", "aps1.pure.cloud"),
    ("ap_southeast_1", "apse1.pure.cloud"),
    ("ap_southeast_2", "mypurecloud.com.au"),
    ("ap_northeast_1", "mypurecloud.jp"),
    ("ap_northeast_2", "apne2.pure.cloud"),
    ("ap_northeast_3", "apne3.pure.cloud"),
];

/// Where the API and the login service are: `https://api.<env>` and `https://login.<env>`, or
/// explicit URL overrides (the simulator, a proxy). Base URLs never end with `/`.
#[derive(Clone, PartialEq, Eq)]
pub struct Environment {
    api: Url,
    login: Url,
}

impl Environment {
    /// Parses an environment domain (`mypurecloud.ie`) or an SDK region name (`eu_west_1`,
    /// `eu-west-1`, any case). A leading `api.`, `login.` or `apps.` is tolerated.
    pub fn parse(input: &str) -> Result<Self, ConfigError> {
        let domain = environment_domain(input)?;
        let api = Url::parse(&format!("https://api.{domain}")).map_err(|e| bad_env(input, &e.to_string()))?;
        let login = Url::parse(&format!("https://login.{domain}")).map_err(|e| bad_env(input, &e.to_string()))?;
        Ok(Environment { api, login })
    }

    /// Both services at explicit base URLs.
    pub fn from_urls(api_url: &str, login_url: &str) -> Result<Self, ConfigError> {
        Ok(Environment { api: check_url("API URL", api_url)?, login: check_url("login URL", login_url)? })
    }

    /// The API at `api_url`; the login service at the same URL with a leading `api.` in the host
    /// replaced by `login.` (the Genesys layout), or at the very same URL otherwise (the
    /// simulator serves both).
    pub fn from_api_url(api_url: &str) -> Result<Self, ConfigError> {
        let api = check_url("API URL", api_url)?;
        let mut login = api.clone();
        if let Some(Host::Domain(host)) = api.host() {
            if let Some(rest) = host.strip_prefix("api.") {
                login.set_host(Some(&format!("login.{rest}"))).map_err(|e| ConfigError::InvalidUrl {
                    what: "API URL",
                    url: api_url.to_owned(),
                    hint: e.to_string(),
                })?;
            }
        }
        Ok(Environment { api, login })
    }

    /// What the CLI and daemon accept: an environment, overridden by `api_url` and/or
    /// `login_url`. With only `api_url`, the login URL is derived from it
    /// ([`Environment::from_api_url`]).
    pub fn resolve(
        environment: Option<&str>,
        api_url: Option<&str>,
        login_url: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let (environment, api_url, login_url) = (nonblank(environment), nonblank(api_url), nonblank(login_url));
        let mut env = match (environment, api_url) {
            (_, Some(api)) => Environment::from_api_url(api)?,
            (Some(env), None) => Environment::parse(env)?,
            (None, None) => return Err(ConfigError::NoEnvironment),
        };
        if let Some(login) = login_url {
            env.login = check_url("login URL", login)?;
        }
        Ok(env)
    }

    /// The API base URL, without a trailing `/` (`https://api.mypurecloud.ie`).
    pub fn api_url(&self) -> &str {
        self.api.as_str().trim_end_matches('/')
    }

    /// The login service base URL, without a trailing `/` (`https://login.mypurecloud.ie`).
    pub fn login_url(&self) -> &str {
        self.login.as_str().trim_end_matches('/')
    }

    /// The token endpoint (`https://login.mypurecloud.ie/oauth/token`).
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.login_url())
    }

    /// The API's origin (scheme, host, port), used to keep paging links on the same host.
    pub(crate) fn api(&self) -> &Url {
        &self.api
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment").field("api", &self.api_url()).field("login", &self.login_url()).finish()
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_url())
    }
}

fn nonblank(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn bad_env(input: &str, hint: &str) -> ConfigError {
    ConfigError::InvalidEnvironment { input: input.to_owned(), hint: hint.to_owned() }
}

fn environment_domain(input: &str) -> Result<String, ConfigError> {
    let s = input.trim().to_ascii_lowercase();
    if s.is_empty() {
        return Err(bad_env(input, "it is empty; use a domain such as mypurecloud.ie or a region such as eu-west-1"));
    }
    if s.contains("://") || s.contains('/') {
        return Err(bad_env(
            input,
            "give the environment as a domain such as mypurecloud.ie; use the API URL / login URL settings for URLs",
        ));
    }
    let region = s.replace('-', "_");
    if let Some((_, domain)) = REGIONS.iter().find(|(name, _)| *name == region) {
        return Ok((*domain).to_owned());
    }
    let domain = ["api.", "login.", "apps."].iter().find_map(|p| s.strip_prefix(p)).unwrap_or(&s).to_owned();
    let valid = domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !valid {
        let regions: Vec<String> = REGIONS.iter().map(|(r, _)| r.replace('_', "-")).collect();
        return Err(bad_env(
            input,
            &format!("use a domain such as mypurecloud.ie or one of the regions {}", regions.join(", ")),
        ));
    }
    Ok(domain)
}

fn check_url(what: &'static str, input: &str) -> Result<Url, ConfigError> {
    let bad = |hint: String| ConfigError::InvalidUrl { what, url: input.to_owned(), hint };
    let url = Url::parse(input.trim()).map_err(|e| bad(format!("{e}; expected e.g. https://api.mypurecloud.ie")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials do not belong in the URL".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a base URL has no query or fragment".to_owned()));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(ConfigError::InsecureUrl { what, url: input.to_owned() }),
        other => return Err(bad(format!("unsupported scheme {other:?}; use https"))),
    }
    if url.host().is_none() {
        return Err(bad("no host".to_owned()));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_give_api_and_login_hosts() {
        let env = Environment::parse("mypurecloud.ie").unwrap();
        assert_eq!(env.api_url(), "https://api.mypurecloud.ie");
        assert_eq!(env.login_url(), "https://login.mypurecloud.ie");
        assert_eq!(env.token_url(), "https://login.mypurecloud.ie/oauth/token");
        let env = Environment::parse(" API.usw2.pure.cloud ").unwrap();
        assert_eq!(env.api_url(), "https://api.usw2.pure.cloud");
        // A domain not in the table is fine: Genesys adds regions.
        assert_eq!(Environment::parse("xyz9.pure.cloud").unwrap().login_url(), "https://login.xyz9.pure.cloud");
    }

    #[test]
    fn region_names_are_aliases() {
        for (alias, api) in [
            ("us-east-1", "https://api.mypurecloud.com"),
            ("us_east_1", "https://api.mypurecloud.com"),
            ("eu-west-1", "https://api.mypurecloud.ie"),
            ("EU_CENTRAL_1", "https://api.mypurecloud.de"),
            ("ap-southeast-2", "https://api.mypurecloud.com.au"),
            ("us-east-2", "https://api.use2.us-gov-pure.cloud"),
            ("eusc-de-east-1", "https://api.edee1.eusc-pure.cloud"),
        ] {
            assert_eq!(Environment::parse(alias).unwrap().api_url(), api, "{alias}");
        }
    }

    #[test]
    fn bad_environments_are_explained() {
        for input in ["", "mypurecloud", "https://api.mypurecloud.ie", "eu-west-9", "my purecloud.ie"] {
            let err = Environment::parse(input).unwrap_err();
            assert!(matches!(err, ConfigError::InvalidEnvironment { .. }), "{input}: {err}");
        }
        assert!(Environment::parse("eu-west-9").unwrap_err().to_string().contains("eu-west-1"));
    }

    #[test]
    fn url_overrides() {
        let env = Environment::resolve(Some("mypurecloud.ie"), None, Some("https://login.example.org/")).unwrap();
        assert_eq!(env.api_url(), "https://api.mypurecloud.ie");
        assert_eq!(env.login_url(), "https://login.example.org");
        let env = Environment::resolve(None, Some("http://127.0.0.1:8080"), None).unwrap();
        assert_eq!(env.api_url(), "http://127.0.0.1:8080");
        assert_eq!(env.login_url(), "http://127.0.0.1:8080");
        let env = Environment::resolve(Some("mypurecloud.de"), Some("https://api.proxy.example"), None).unwrap();
        assert_eq!(env.login_url(), "https://login.proxy.example");
        let env = Environment::from_urls("http://[::1]:9/base/", "http://localhost:9").unwrap();
        assert_eq!(env.api_url(), "http://[::1]:9/base");
        assert_eq!(Environment::resolve(None, None, None).unwrap_err(), ConfigError::NoEnvironment);
        assert_eq!(Environment::resolve(Some(" "), Some(""), None).unwrap_err(), ConfigError::NoEnvironment);
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let err = Environment::from_api_url("http://api.mypurecloud.ie").unwrap_err();
        assert!(matches!(err, ConfigError::InsecureUrl { .. }));
        assert!(err.to_string().contains("must use https"), "{err}");
        assert!(Environment::from_urls("https://a.example", "http://10.0.0.1").is_err());
        assert!(Environment::from_api_url("ftp://127.0.0.1").is_err());
        assert!(Environment::from_api_url("https://user:pw@api.example").is_err());
        assert!(Environment::from_api_url("not a url").is_err());
    }
}
