//! Host name resolution of the client: the system's resolver (as reqwest's default), except that a
//! name under `.invalid` fails at once without a query (RFC 6761 section 6.4: such names never
//! resolve), and every failure is a [`DnsFailure`] naming the host, which the client finds in a
//! transport error's chain ([`dns_failure`]) to say "cannot resolve the host" and, for the login
//! host before the first token, to stop at once instead of retrying.

use std::error::Error;
use std::fmt;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The system resolver (`getaddrinfo`, on tokio's blocking pool), `.invalid` answered locally.
#[derive(Debug, Default)]
pub(crate) struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let reserved = host.trim_end_matches('.').to_ascii_lowercase();
            if reserved == "invalid" || reserved.ends_with(".invalid") {
                let why = "names under .invalid never resolve (RFC 6761)".to_owned();
                return Err(Box::new(DnsFailure { host, why }) as Box<dyn Error + Send + Sync>);
            }
            let looked_up = tokio::net::lookup_host((host.as_str(), 0)).await.map(|a| a.collect::<Vec<_>>());
            match looked_up {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(e) => Err(Box::new(DnsFailure { host, why: e.to_string() }) as Box<dyn Error + Send + Sync>),
            }
        })
    }
}

/// A host name that did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnsFailure {
    /// The name looked up.
    pub(crate) host: String,
    /// What the resolver said.
    pub(crate) why: String,
}

impl fmt::Display for DnsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot resolve the host {}: {}", self.host, self.why)
    }
}

impl Error for DnsFailure {}

/// The [`DnsFailure`] somewhere in `err`'s chain of sources, if any.
pub(crate) fn dns_failure<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a DnsFailure> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(failure) = e.downcast_ref::<DnsFailure>() {
            return Some(failure);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn invalid_names_fail_without_a_query_and_the_failure_is_found_in_a_chain() {
        for host in ["login.nonexistent.invalid", "x.INVALID.", "invalid"] {
            let err = match SystemResolver.resolve(host.parse().unwrap()).await {
                Ok(_) => panic!("{host} resolved"),
                Err(e) => e,
            };
            let failure = dns_failure(err.as_ref()).expect("a DnsFailure");
            assert_eq!(failure.host, host);
            assert!(failure.to_string().contains("RFC 6761"), "{failure}");
        }
        let resolved: Vec<_> = SystemResolver.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(!resolved.is_empty());
    }
}
