//! What is asked of the API: metrics, grouping, bucket size, zone and filters.

use std::sync::Arc;

use chrono_tz::Tz;

use crate::error::DomainError;
use crate::granularity::Granularity;
use crate::names::{Dimension, MetricFamily, MetricName, USER_STATUS_METRICS};

/// Dimensions this tool can group by and store (the `agent_intervals` key columns).
pub const STORABLE_DIMENSIONS: [Dimension; 3] = [Dimension::USER_ID, Dimension::MEDIA_TYPE, Dimension::QUEUE_ID];

/// Media types seen in Genesys analytics.
pub const MEDIA_TYPES: &[&str] = &["voice", "chat", "email", "callback", "message", "cobrowse", "screenshare", "video"];

/// Dimension filters, ANDed across dimensions and ORed within one (e.g. voice or chat).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    media_types: Vec<String>,
    queue_ids: Vec<String>,
    user_ids: Vec<String>,
}

impl Filters {
    /// No filter: everything.
    pub fn none() -> Self {
        Filters::default()
    }

    /// Builds filters, validating media types and queue ids (UUIDs).
    pub fn new(media_types: &[String], queue_ids: &[String]) -> Result<Self, DomainError> {
        let mut media: Vec<String> = Vec::new();
        for m in media_types.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
            if !MEDIA_TYPES.contains(&m) {
                return Err(DomainError::InvalidFilter {
                    input: m.to_owned(),
                    hint: format!("media types are {}", MEDIA_TYPES.join(", ")),
                });
            }
            if !media.iter().any(|x| x == m) {
                media.push(m.to_owned());
            }
        }
        let mut queues: Vec<String> = Vec::new();
        for q in queue_ids.iter().map(|q| q.trim()).filter(|q| !q.is_empty()) {
            if !is_uuid(q) {
                return Err(DomainError::InvalidFilter {
                    input: q.to_owned(),
                    hint: "queue ids are UUIDs such as 2f6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b11".to_owned(),
                });
            }
            let q = q.to_ascii_lowercase();
            if !queues.contains(&q) {
                queues.push(q);
            }
        }
        media.sort();
        queues.sort();
        Ok(Filters { media_types: media, queue_ids: queues, user_ids: Vec::new() })
    }

    /// The same filters, also keeping only these agents (user ids are UUIDs; any number: a source
    /// that can take only so many per request sends several).
    pub fn with_user_ids(self, user_ids: &[String]) -> Result<Self, DomainError> {
        let mut users: Vec<String> = Vec::new();
        for u in user_ids.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            if !is_uuid(u) {
                return Err(DomainError::InvalidFilter {
                    input: u.to_owned(),
                    hint: "user ids are UUIDs such as 6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f".to_owned(),
                });
            }
            users.push(u.to_ascii_lowercase());
        }
        users.sort();
        users.dedup();
        Ok(Filters { user_ids: users, ..self })
    }

    /// The part of these filters a users-aggregate query can apply: the user ids alone (it has no
    /// media type or queue).
    pub fn users_only(&self) -> Filters {
        Filters { user_ids: self.user_ids.clone(), ..Filters::default() }
    }

    /// Media types to keep; empty = all.
    pub fn media_types(&self) -> &[String] {
        &self.media_types
    }

    /// Queue ids to keep; empty = all.
    pub fn queue_ids(&self) -> &[String] {
        &self.queue_ids
    }

    /// User ids to keep; empty = all.
    pub fn user_ids(&self) -> &[String] {
        &self.user_ids
    }

    /// The filter values for `dimension` (empty = unfiltered).
    pub fn values_for(&self, dimension: Dimension) -> &[String] {
        match dimension.as_str() {
            "mediaType" => &self.media_types,
            "queueId" => &self.queue_ids,
            "userId" => &self.user_ids,
            _ => &[],
        }
    }

    /// Whether a row with these dimension values passes the filters.
    pub fn accepts(&self, dimension: Dimension, value: &str) -> bool {
        let allowed = self.values_for(dimension);
        allowed.is_empty() || allowed.iter().any(|v| v == value)
    }
}

/// One aggregate query, valid by construction: known metric and dimension names, no duplicates,
/// every metric of one [`MetricFamily`] (one endpoint), and a user-status query grouped by userId
/// alone and filtered by user ids only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AggregateQuery {
    family: MetricFamily,
    metrics: Vec<MetricName>,
    group_by: Vec<Dimension>,
    granularity: Granularity,
    time_zone: Tz,
    filters: Filters,
}

impl AggregateQuery {
    /// Builds a query. `group_by` must be a non-empty ordered subset of userId, mediaType, queueId
    /// (exactly `[userId]` for status metrics), and the metrics one family ([`QuerySet`] splits a
    /// list of both). Queue figures ([`crate::QUEUE_ONLY_METRICS`]) have no agent: a query of one is
    /// neither grouped by userId nor filtered by user id.
    pub fn new(
        metrics: Vec<MetricName>,
        group_by: Vec<Dimension>,
        granularity: Granularity,
        time_zone: Tz,
        filters: Filters,
    ) -> Result<Self, DomainError> {
        if metrics.is_empty() {
            return Err(DomainError::NoMetrics);
        }
        if let Some(dup) = first_duplicate(&metrics) {
            return Err(DomainError::Duplicate { what: "metric", name: dup.to_string() });
        }
        let family = metrics[0].family();
        if let Some(other) = metrics.iter().find(|m| m.family() != family) {
            return Err(DomainError::MixedFamilies { first: metrics[0].to_string(), other: other.to_string() });
        }
        if group_by.is_empty() {
            return Err(DomainError::InvalidGroupBy {
                input: String::new(),
                hint: "group by at least one of userId, mediaType, queueId".to_owned(),
            });
        }
        if let Some(dup) = first_duplicate(&group_by) {
            return Err(DomainError::Duplicate { what: "group-by dimension", name: dup.to_string() });
        }
        if let Some(other) = group_by.iter().find(|d| !STORABLE_DIMENSIONS.contains(d)) {
            return Err(DomainError::InvalidGroupBy {
                input: other.to_string(),
                hint: "it is a valid Genesys dimension, but genesys-intervals groups and stores only \
                       userId, mediaType and queueId"
                    .to_owned(),
            });
        }
        if let Some(queue_only) = metrics.iter().find(|m| m.is_queue_only()) {
            let how = if group_by.contains(&Dimension::USER_ID) {
                Some("grouped by userId")
            } else if !filters.user_ids.is_empty() {
                Some("filtered by user id")
            } else {
                None
            };
            if let Some(how) = how {
                return Err(DomainError::QueueMetricPerAgent { metric: queue_only.to_string(), how });
            }
        }
        if family == MetricFamily::UserStatus {
            if group_by != [Dimension::USER_ID] {
                return Err(status_group_by(&group_by));
            }
            if filters != filters.users_only() {
                return Err(DomainError::InvalidFilter {
                    input: [filters.media_types.join(","), filters.queue_ids.join(",")].join(" ").trim().to_owned(),
                    hint: "status metrics have no media type or queue: filter them by user id only".to_owned(),
                });
            }
        }
        Ok(AggregateQuery { family, metrics, group_by, granularity, time_zone, filters })
    }

    /// The endpoint family of every metric of this query.
    pub fn family(&self) -> MetricFamily {
        self.family
    }

    /// Parses comma-separated metric names (`tHandle,tAcw`).
    pub fn parse_metrics(list: &str) -> Result<Vec<MetricName>, DomainError> {
        split_list(list).map(MetricName::parse).collect()
    }

    /// Parses comma-separated dimension names (`userId,mediaType`).
    pub fn parse_group_by(list: &str) -> Result<Vec<Dimension>, DomainError> {
        split_list(list).map(Dimension::parse).collect()
    }

    /// Requested metrics, in request order.
    pub fn metrics(&self) -> &[MetricName] {
        &self.metrics
    }

    /// Grouping dimensions, in order (also the CSV column order).
    pub fn group_by(&self) -> &[Dimension] {
        &self.group_by
    }

    /// Bucket size.
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// Zone of bucket boundaries.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// Dimension filters.
    pub fn filters(&self) -> &Filters {
        &self.filters
    }

    /// What this query reads, for people and for the store's record of queries:
    /// `conversation: tHandle, tAcw by userId, mediaType; PT30M in UTC; media voice`.
    pub fn describe(&self) -> String {
        let names = |items: &mut dyn Iterator<Item = &str>| items.collect::<Vec<_>>().join(", ");
        let mut out = format!(
            "{}: {} by {}; {} in {}",
            self.family,
            names(&mut self.metrics.iter().map(|m| m.as_str())),
            names(&mut self.group_by.iter().map(|d| d.as_str())),
            self.granularity,
            self.time_zone.name()
        );
        for (what, values) in [
            ("media", &self.filters.media_types),
            ("queues", &self.filters.queue_ids),
            ("users", &self.filters.user_ids),
        ] {
            match values.len() {
                0 => {}
                1..=3 => out.push_str(&format!("; {what} {}", values.join(", "))),
                n => out.push_str(&format!("; {n} {what}")),
            }
        }
        out
    }

    /// A stable identifier of what this query reads (not of when): two queries with the same
    /// fingerprint produce the same rows for the same window. Checkpoints are keyed on it.
    pub fn fingerprint(&self) -> String {
        let mut metrics: Vec<&str> = self.metrics.iter().map(|m| m.as_str()).collect();
        metrics.sort_unstable();
        let group: Vec<&str> = self.group_by.iter().map(|d| d.as_str()).collect();
        let mut canonical = format!(
            "v1|{}|{}|{}|{}|{}|{}",
            self.granularity,
            self.time_zone.name(),
            group.join(","),
            metrics.join(","),
            self.filters.media_types.join(","),
            self.filters.queue_ids.join(","),
        );
        // Only when filtered by user, so the fingerprints (and checkpoints) of earlier versions hold.
        if !self.filters.user_ids.is_empty() {
            canonical.push_str("|u:");
            canonical.push_str(&self.filters.user_ids.join(","));
        }
        format!("{:016x}", fnv1a(canonical.as_bytes()))
    }
}

fn status_group_by(group_by: &[Dimension]) -> DomainError {
    DomainError::InvalidGroupBy {
        input: group_by.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(","),
        hint: format!(
            "status metrics ({}) are read per agent: the users aggregates API groups by userId alone, so \
             --group-by must include userId",
            USER_STATUS_METRICS.join(", ")
        ),
    }
}

/// What one extraction reads: one [`AggregateQuery`] per metric family named, the conversation
/// query first. A window of the plan is one request per query, each with its own fingerprint and
/// checkpoints, so either can be re-read or resumed alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySet {
    queries: Vec<Arc<AggregateQuery>>,
}

impl QuerySet {
    /// The requests one window takes: one per query, times the batches of at most `batch` user ids
    /// a filter by user is sent in (the API's limit of predicates per request).
    pub fn requests_per_window(&self, batch: usize) -> usize {
        self.queries().iter().map(|q| q.filters().user_ids().len().div_ceil(batch.max(1)).max(1)).sum()
    }

    /// Splits `metrics` by family. Conversation metrics keep `group_by` and every filter; status
    /// metrics are grouped by userId alone (`group_by` must include userId) and keep the user-id
    /// filter only (the users API has no media type or queue).
    pub fn new(
        metrics: Vec<MetricName>,
        group_by: Vec<Dimension>,
        granularity: Granularity,
        time_zone: Tz,
        filters: Filters,
    ) -> Result<Self, DomainError> {
        // A name given twice is refused by `AggregateQuery::new` (both copies are of one family).
        if metrics.is_empty() {
            return Err(DomainError::NoMetrics);
        }
        let (conversation, status): (Vec<MetricName>, Vec<MetricName>) =
            metrics.into_iter().partition(|m| m.family() == MetricFamily::Conversation);
        if !status.is_empty() && !group_by.contains(&Dimension::USER_ID) {
            return Err(status_group_by(&group_by));
        }
        let mut queries = Vec::with_capacity(2);
        if !conversation.is_empty() {
            let query = AggregateQuery::new(conversation, group_by, granularity, time_zone, filters.clone())?;
            queries.push(Arc::new(query));
        } else if let Some(dup) = first_duplicate(&group_by) {
            return Err(DomainError::Duplicate { what: "group-by dimension", name: dup.to_string() });
        }
        if !status.is_empty() {
            let query =
                AggregateQuery::new(status, vec![Dimension::USER_ID], granularity, time_zone, filters.users_only())?;
            queries.push(Arc::new(query));
        }
        Ok(QuerySet { queries })
    }

    /// A set of one query.
    pub fn single(query: AggregateQuery) -> Self {
        QuerySet { queries: vec![Arc::new(query)] }
    }

    /// The queries, conversation first; one or two.
    pub fn queries(&self) -> &[Arc<AggregateQuery>] {
        &self.queries
    }

    /// The query whose group-by names every dimension of the set (the conversation query when
    /// there is one): fixed-column outputs (CSV, Parquet) take their columns from it, and rows of the
    /// other query are empty in the dimensions it lacks.
    pub fn layout(&self) -> &Arc<AggregateQuery> {
        &self.queries[0]
    }

    /// The query of `family`, if the set has one.
    pub fn of_family(&self, family: MetricFamily) -> Option<&Arc<AggregateQuery>> {
        self.queries.iter().find(|q| q.family() == family)
    }

    /// Every metric, conversation first.
    pub fn metrics(&self) -> impl Iterator<Item = MetricName> + '_ {
        self.queries.iter().flat_map(|q| q.metrics().iter().copied())
    }

    /// Bucket size (the same for every query).
    pub fn granularity(&self) -> Granularity {
        self.layout().granularity()
    }

    /// Zone of bucket boundaries (the same for every query).
    pub fn time_zone(&self) -> Tz {
        self.layout().time_zone()
    }
}

fn split_list(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn first_duplicate<T: PartialEq + Copy>(items: &[T]) -> Option<T> {
    items.iter().enumerate().find(|(i, x)| items[..*i].contains(x)).map(|(_, x)| *x)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Whether `s` looks like a UUID (8-4-4-4-12 hex digits).
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}
