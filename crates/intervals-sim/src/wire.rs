//! Wire formats (serde): the aggregate query requests (conversation and user) and their validation
//! into a [`Spec`], the responses, `ErrorBody`, token, job and entity-listing bodies
//! (docs/genesys-api.md sections 1-7).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use intervals_domain::{
    parse_time_zone, Dimension, Granularity, MetricFamily, MetricName, TimeWindow, Tz, USER_STATUS_METRICS,
};

use crate::engine::{is_service_level, Acc, Dim, Expr, GroupOut, Pred, Spec};
use crate::org::{media_by_name, Org, QueueInfo, MEDIA_SETTINGS};
use crate::status::{ORG_PRESENCE, PRESENCE};

// ---------------------------------------------------------------------------------------------
// Request

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QueryRequest {
    interval: Option<String>,
    granularity: Option<String>,
    time_zone: Option<String>,
    group_by: Option<Vec<String>>,
    filter: Option<FilterDto>,
    metrics: Option<Vec<String>>,
    flatten_multivalued_dimensions: Option<bool>,
    views: Option<Vec<serde_json::Value>>,
    alternate_time_dimension: Option<String>,
    query_type: Option<String>,
    sort_metric: Option<serde_json::Value>,
    limit: Option<i64>,
    page_size: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterDto {
    #[serde(rename = "type")]
    kind: Option<String>,
    predicates: Option<Vec<PredicateDto>>,
    clauses: Option<Vec<ClauseDto>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClauseDto {
    #[serde(rename = "type")]
    kind: Option<String>,
    predicates: Option<Vec<PredicateDto>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PredicateDto {
    #[serde(rename = "type")]
    kind: Option<String>,
    dimension: Option<String>,
    property_type: Option<String>,
    property: Option<String>,
    metric: Option<String>,
    operator: Option<String>,
    value: Option<String>,
    range: Option<serde_json::Value>,
}

/// A validated aggregate query (synchronous or job).
#[derive(Debug, Clone)]
pub(crate) struct ParsedQuery {
    pub(crate) spec: Spec,
    pub(crate) interval: TimeWindow,
    pub(crate) page_size: Option<usize>,
}

/// Largest `pageSize` of an aggregate job.
pub(crate) const MAX_JOB_PAGE_SIZE: i64 = 10_000;

/// Most `userId` predicates one user aggregation query may carry.
pub(crate) const MAX_USER_PREDICATES: usize = 100;

/// Parses and validates a `ConversationAggregationQuery` (`family` = conversation) or a
/// `UserAggregationQuery` (user status), plus `pageSize` when `job`. The error is the 400 message.
pub(crate) fn parse_query(body: &[u8], org: &Org, family: MetricFamily, job: bool) -> Result<ParsedQuery, String> {
    let request: QueryRequest = serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))?;
    if request.page_size.is_some() && !job {
        return Err("Invalid request body: unknown field `pageSize` (it belongs to aggregate jobs only)".to_owned());
    }
    if family == MetricFamily::UserStatus {
        let conversation_only = [
            ("queryType", request.query_type.is_some()),
            ("sortMetric", request.sort_metric.is_some()),
            ("limit", request.limit.is_some()),
        ];
        if let Some((field, _)) = conversation_only.iter().find(|(_, present)| *present) {
            return Err(format!(
                "Invalid request body: unknown field `{field}` (a user aggregation query has no queryType, \
                 sortMetric or limit)"
            ));
        }
    }
    let interval_text = request.interval.as_deref().map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| {
        "interval is required: an ISO-8601 interval such as 2025-03-10T00:00:00.000Z/2025-03-11T00:00:00.000Z"
            .to_owned()
    })?;
    let interval = TimeWindow::parse_iso_interval(interval_text).map_err(|e| e.to_string())?;
    let tz: Tz = match request.time_zone.as_deref() {
        None => Tz::UTC,
        Some(name) => parse_time_zone(name).map_err(|e| e.to_string())?,
    };
    let buckets = match request.granularity.as_deref() {
        None => vec![interval],
        Some(text) => match Granularity::parse(text) {
            Ok(g) => interval.buckets(g, tz),
            Err(e) if looks_like_iso_duration(text) => {
                return Err(format!(
                    "granularity {text} is not supported by the simulator: use PT15M, PT30M, PT1H or P1D ({e})"
                ))
            }
            Err(e) => return Err(e.to_string()),
        },
    };

    let mut metrics: Vec<MetricName> = Vec::new();
    for name in request.metrics.as_deref().unwrap_or_default() {
        let m = MetricName::parse(name).map_err(|e| e.to_string())?;
        if m.family() != family {
            return Err(wrong_family(m, family));
        }
        if !metrics.contains(&m) {
            metrics.push(m);
        }
    }
    if metrics.is_empty() {
        return Err("metrics is required: name at least one metric, e.g. [\"tHandle\", \"tAcw\"]".to_owned());
    }

    let mut group_by: Vec<Dim> = Vec::new();
    for name in request.group_by.as_deref().unwrap_or_default() {
        let d = Dimension::parse(name).map_err(|e| format!("groupBy: {e}"))?;
        if family == MetricFamily::UserStatus && d != Dimension::USER_ID {
            return Err(format!(
                "groupBy dimension {d} is not valid for a user aggregation query: the only dimension is userId"
            ));
        }
        let dim = Dim::from_dimension(d).ok_or_else(|| {
            format!(
                "groupBy dimension {d} is not supported by the simulator: it groups by any of userId, mediaType, \
                 queueId"
            )
        })?;
        if !group_by.contains(&dim) {
            group_by.push(dim);
        }
    }

    let filter = match request.filter {
        None => None,
        Some(f) => Some(compile_filter(f, org, family)?),
    };

    if request.views.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err("views are not supported by the simulator".to_owned());
    }
    match request.query_type.as_deref() {
        None | Some("groupBy") => {}
        Some(q @ ("topN" | "bottomN")) => return Err(format!("queryType {q} is not supported by the simulator")),
        Some(other) => return Err(format!("invalid queryType {other:?}: use groupBy, topN or bottomN")),
    }
    match request.alternate_time_dimension.as_deref() {
        None | Some("eventTime") => {}
        Some(other) => {
            return Err(format!("invalid alternateTimeDimension {other:?}: the only allowed value is eventTime"))
        }
    }
    if let Some(limit) = request.limit {
        if limit < 1 {
            return Err(format!("limit must be positive, got {limit}"));
        }
    }
    let _ = (request.flatten_multivalued_dimensions, request.sort_metric);
    let page_size = match request.page_size {
        None => None,
        Some(n) if (1..=MAX_JOB_PAGE_SIZE).contains(&n) => Some(n as usize),
        Some(n) => return Err(format!("pageSize must be between 1 and {MAX_JOB_PAGE_SIZE}, got {n}")),
    };
    Ok(ParsedQuery { spec: Spec { family, group_by, metrics, buckets, filter }, interval, page_size })
}

/// The 400 message for a valid metric sent to the other family's endpoint.
fn wrong_family(m: MetricName, family: MetricFamily) -> String {
    match family {
        MetricFamily::Conversation => format!(
            "invalid metric {m} for a conversation aggregation query: it is a user status metric, queried with \
             POST /api/v2/analytics/users/aggregates/query"
        ),
        MetricFamily::UserStatus => format!(
            "invalid metric {m} for a user aggregation query: use {} (conversation metrics are queried with POST \
             /api/v2/analytics/conversations/aggregates/query)",
            USER_STATUS_METRICS.join(", ")
        ),
    }
}

/// Whether `s` has the shape of an ISO-8601 duration (`P1M`, `PT5M`, `P1DT12H`, ...).
fn looks_like_iso_duration(s: &str) -> bool {
    let upper = s.trim().to_ascii_uppercase();
    let Some(rest) = upper.strip_prefix('P') else { return false };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let parts_ok = |part: &str, units: &str| -> bool {
        let mut digits = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                digits += 1;
            } else if units.contains(c) && digits > 0 {
                digits = 0;
            } else {
                return false;
            }
        }
        digits == 0
    };
    let any = !date.is_empty() || time.is_some_and(|t| !t.is_empty());
    any && parts_ok(date, "YMWD") && time.is_none_or(|t| !t.is_empty() && parts_ok(t, "HMS"))
}

fn junction(kind: Option<&str>, what: &str) -> Result<bool, String> {
    match kind {
        Some("and") => Ok(true),
        Some("or") => Ok(false),
        None => Err(format!("{what}.type is required: \"and\" or \"or\"")),
        Some(other) => Err(format!("invalid {what}.type {other:?}: use \"and\" or \"or\"")),
    }
}

fn compile_filter(f: FilterDto, org: &Org, family: MetricFamily) -> Result<Expr, String> {
    let all = junction(f.kind.as_deref(), "filter")?;
    let predicates = f.predicates.unwrap_or_default();
    let clauses = f.clauses.unwrap_or_default();
    if predicates.is_empty() && clauses.is_empty() {
        return Err("filter needs at least one predicate or clause".to_owned());
    }
    if family == MetricFamily::UserStatus {
        let count = predicates.len() + clauses.iter().map(|c| c.predicates.as_ref().map_or(0, Vec::len)).sum::<usize>();
        if count > MAX_USER_PREDICATES {
            return Err(format!(
                "the filter has {count} predicates, more than the {MAX_USER_PREDICATES} a user aggregation query \
                 allows: query at most {MAX_USER_PREDICATES} users at a time"
            ));
        }
    }
    let compile = |p: PredicateDto| compile_predicate(p, org, family);
    let predicates = predicates.into_iter().map(compile).collect::<Result<Vec<_>, _>>()?;
    let clauses = clauses
        .into_iter()
        .map(|c| {
            let all = junction(c.kind.as_deref(), "clause")?;
            let predicates = c.predicates.unwrap_or_default();
            if predicates.is_empty() {
                return Err("a filter clause needs at least one predicate".to_owned());
            }
            let predicates = predicates.into_iter().map(compile).collect::<Result<Vec<_>, _>>()?;
            Ok(Expr { all, predicates, clauses: Vec::new() })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Expr { all, predicates, clauses })
}

fn compile_predicate(p: PredicateDto, org: &Org, family: MetricFamily) -> Result<Pred, String> {
    match p.kind.as_deref() {
        None | Some("dimension") => {}
        Some(k @ ("property" | "metric")) => {
            return Err(format!("{k} predicates are not supported by the simulator: use dimension predicates"))
        }
        Some(other) => return Err(format!("invalid predicate type {other:?}: use dimension, property or metric")),
    }
    if p.property.is_some() || p.property_type.is_some() || p.metric.is_some() {
        return Err("property and metric predicates are not supported by the simulator".to_owned());
    }
    if p.range.is_some() {
        return Err("a dimension predicate takes a value, not a range".to_owned());
    }
    let name = p.dimension.as_deref().ok_or("a dimension predicate needs a dimension")?;
    let dimension = Dimension::parse(name).map_err(|e| format!("filter: {e}"))?;
    if family == MetricFamily::UserStatus && dimension != Dimension::USER_ID {
        return Err(format!(
            "filtering on {dimension} is not valid for a user aggregation query: its predicates may only use userId"
        ));
    }
    let operator = p.operator.as_deref().unwrap_or("matches");
    let value = p.value.as_deref();
    let exists = match operator {
        "matches" => None,
        "exists" => Some(true),
        "notExists" => Some(false),
        other => return Err(format!("invalid predicate operator {other:?}: use matches, exists or notExists")),
    };
    let unsupported = || {
        format!(
            "filtering on {dimension} is not supported by the simulator: it filters on userId, mediaType, queueId, \
             purpose, direction and divisionId"
        )
    };
    let value = match exists {
        Some(e) => {
            return Ok(match dimension.as_str() {
                "queueId" => Pred::QueueExists(e),
                "userId" | "mediaType" | "purpose" | "direction" | "divisionId" => Pred::Const(e),
                _ => return Err(unsupported()),
            })
        }
        None => value.ok_or_else(|| format!("the matches predicate on {dimension} needs a value"))?,
    };
    Ok(match dimension.as_str() {
        "userId" => Pred::User(org.agent_by_id(value)),
        "mediaType" => Pred::Media(media_by_name(value)),
        "queueId" => Pred::Queue(org.queue_by_id(value)),
        "purpose" => Pred::Acd(match value {
            "agent" | "acd" => Some(true),
            "user" => Some(false),
            _ => None,
        }),
        "direction" => Pred::Const(value == "inbound"),
        "divisionId" => Pred::Const(value.eq_ignore_ascii_case(&org.division_id)),
        _ => return Err(unsupported()),
    })
}

// ---------------------------------------------------------------------------------------------
// Aggregate response
//
// Written by hand rather than through serde: responses run to tens of megabytes and this keeps
// serving cheap even in debug builds. Key order follows section 2.5.

/// The `interval` strings of a spec's buckets, formatted once per query.
pub(crate) fn interval_strings(spec: &Spec) -> Vec<String> {
    spec.buckets.iter().map(TimeWindow::to_iso_interval).collect()
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_stats(out: &mut String, metric: MetricName, acc: &Acc) {
    if is_service_level(metric) {
        // An observation metric: a ratio and its parts, no count or sum (docs/genesys-api.md, "The
        // queue side"); the target when every interaction counted had the same one.
        let stats = acc.stats(metric);
        let number = |x: Option<f64>| x.map(|x| serde_json::Number::from_f64(x).expect("finite").to_string());
        let _ = write!(
            out,
            "{{\"ratio\":{},\"numerator\":{},\"denominator\":{}",
            number(stats.ratio).unwrap_or_default(),
            acc.sum,
            acc.count
        );
        if let Some(target) = number(stats.target) {
            let _ = write!(out, ",\"target\":{target}");
        }
        out.push('}');
    } else if metric.family() == MetricFamily::UserStatus {
        let _ = write!(out, "{{\"sum\":{}}}", acc.sum);
    } else if metric.is_timer() {
        let _ = write!(out, "{{\"max\":{},\"min\":{},\"count\":{},\"sum\":{}}}", acc.max, acc.min, acc.count, acc.sum);
    } else {
        let _ = write!(out, "{{\"count\":{}}}", acc.count);
    }
}

/// One `ConversationAggregateDataContainer` (or `UserAggregateDataContainer`) as JSON:
/// `{"group": {...}, "data": [...]}`, `group` left out when no dimension has a value.
pub(crate) fn write_result(out: &mut String, g: &GroupOut, intervals: &[String]) {
    out.push('{');
    if g.values.iter().any(|(_, v)| v.is_some()) {
        out.push_str("\"group\":{");
        let mut first = true;
        for (dim, value) in &g.values {
            if let Some(v) = value {
                if !first {
                    out.push(',');
                }
                first = false;
                push_json_string(out, dim.name());
                out.push(':');
                push_json_string(out, v);
            }
        }
        out.push_str("},");
    }
    out.push_str("\"data\":[");
    for (i, b) in g.buckets.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"interval\":\"");
        out.push_str(&intervals[b.index as usize]);
        out.push_str("\",\"metrics\":[");
        for (j, m) in b.metrics.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"metric\":\"");
            out.push_str(m.metric.as_str());
            if let Some(q) = m.qualifier {
                out.push_str("\",\"qualifier\":");
                push_json_string(out, q);
                out.push_str(",\"stats\":");
            } else {
                out.push_str("\",\"stats\":");
            }
            push_stats(out, m.metric, &m.acc);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push_str("]}");
}

/// The start of a response body of `family`, up to where `results` would begin: `{` for
/// conversations, `{"systemToOrganizationMappings":{...}` for users (no trailing comma).
pub(crate) fn response_head(family: MetricFamily) -> String {
    let mut out = String::from("{");
    if family == MetricFamily::UserStatus {
        out.push_str("\"systemToOrganizationMappings\":{");
        for (i, (system, org)) in PRESENCE.iter().zip(ORG_PRESENCE).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{system}\":[\"{org}\"]");
        }
        out.push('}');
    }
    out
}

/// The `ConversationAggregateQueryResponse` / `UserAggregateQueryResponse` body; `results` is left
/// out when nothing matched.
pub(crate) fn response_body(spec: &Spec, groups: &[GroupOut]) -> Vec<u8> {
    let mut out = response_head(spec.family);
    if groups.is_empty() {
        out.push('}');
        return out.into_bytes();
    }
    let intervals = interval_strings(spec);
    out.reserve(64 + groups.len() * 512);
    if spec.family == MetricFamily::UserStatus {
        out.push(',');
    }
    out.push_str("\"results\":[");
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_result(&mut out, g, &intervals);
    }
    out.push_str("]}");
    out.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Errors, tokens, jobs, listings

/// The API's `ErrorBody` (section 3.3) in the key order of section 7.3.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody<'a> {
    pub(crate) message: &'a str,
    pub(crate) code: &'a str,
    pub(crate) status: u16,
    pub(crate) context_id: &'a str,
    pub(crate) details: [(); 0],
    pub(crate) errors: [(); 0],
}

/// `/oauth/token` success.
#[derive(Serialize)]
pub(crate) struct TokenResponse<'a> {
    pub(crate) access_token: &'a str,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: u64,
}

/// `/oauth/token` failure (OAuth style).
#[derive(Serialize)]
pub(crate) struct TokenError<'a> {
    pub(crate) error: &'a str,
    pub(crate) description: &'a str,
    pub(crate) error_description: &'a str,
}

/// `AsyncQueryResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AsyncQueryResponse<'a> {
    pub(crate) job_id: &'a str,
}

/// `AsyncQueryStatus`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AsyncQueryStatus {
    pub(crate) state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_message: Option<String>,
    pub(crate) expiration_date: String,
    pub(crate) submission_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) completion_date: Option<String>,
}

/// `{id, name, selfUri}` of a division.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DivisionDto<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) self_uri: String,
}

/// `User`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserDto<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) division: DivisionDto<'a>,
    pub(crate) email: &'a str,
    pub(crate) state: &'a str,
    pub(crate) username: &'a str,
    pub(crate) version: u32,
    pub(crate) self_uri: String,
}

/// `Queue`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueueDto<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) division: DivisionDto<'a>,
    pub(crate) member_count: u32,
    pub(crate) joined_member_count: u32,
    pub(crate) media_settings: MediaSettingsDto,
    pub(crate) self_uri: String,
}

/// `QueueMediaSettings`: one entry per media type (`call` is the voice media type), in the order
/// of [`MEDIA_SETTINGS`].
#[derive(Serialize)]
pub(crate) struct MediaSettingsDto(serde_json::Map<String, serde_json::Value>);

impl MediaSettingsDto {
    /// The settings of `queue`: its service-level target per media type, and an alerting timeout.
    pub(crate) fn of(queue: &QueueInfo) -> MediaSettingsDto {
        let mut map = serde_json::Map::new();
        for (media, level) in MEDIA_SETTINGS.iter().zip(queue.service_levels) {
            let setting = serde_json::json!({
                "alertingTimeoutSeconds": 8,
                "serviceLevel": {"percentage": level.percentage(), "durationMs": level.duration_ms},
            });
            map.insert((*media).to_owned(), setting);
        }
        MediaSettingsDto(map)
    }
}

/// The paging envelope of `UserEntityListing` / `QueueEntityListing`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listing<T> {
    pub(crate) entities: Vec<T>,
    pub(crate) page_size: usize,
    pub(crate) page_number: usize,
    pub(crate) total: usize,
    pub(crate) page_count: usize,
    pub(crate) first_uri: String,
    pub(crate) self_uri: String,
    pub(crate) last_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) previous_uri: Option<String>,
}
