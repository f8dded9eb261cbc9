//! Wire DTOs of the Genesys Cloud API (docs/genesys-api.md sections 1-6), and their conversions into
//! domain types. Requests serialise exactly the documented fields and omit absent optionals;
//! responses accept every field as optional and ignore unknown ones.

use std::collections::BTreeMap;

use intervals_domain::{
    AggregateQuery, AggregateResponse, BucketData, Dimension, GroupResult, MetricData, Queue, Stats, TimeWindow, User,
    STORABLE_DIMENSIONS,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::MAX_USER_PREDICATES;

// ---------------------------------------------------------------------------------------------
// Requests

/// `ConversationAggregationQuery` (section 2.1), plus `pageSize` for the async job variant
/// (`ConversationAsyncAggregationQuery`, section 4); also `UserAggregationQuery` and
/// `UserAsyncAggregationQuery` (section 5), the same fields less `queryType`, `sortMetric` and
/// `limit`, which [`AggregationQueryDto::batches`] never sets (nor `flattenMultivaluedDimensions`,
/// `views` or `alternateTimeDimension`), so a query of either family serialises to what its
/// endpoint accepts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AggregationQueryDto {
    pub(crate) interval: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) granularity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) time_zone: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) group_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) filter: Option<FilterDto>,
    pub(crate) metrics: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) flatten_multivalued_dimensions: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) views: Vec<ViewDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) alternate_time_dimension: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) query_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sort_metric: Option<SortMetricDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<u32>,
    /// Async jobs only: results per page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) page_size: Option<u32>,
}

/// `ConversationAggregateQueryFilter` / `...Clause` (section 2.2). A clause has no `clauses`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FilterDto {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) predicates: Vec<PredicateDto>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) clauses: Vec<ClauseDto>,
}

/// `ConversationAggregateQueryClause`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ClauseDto {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) predicates: Vec<PredicateDto>,
}

/// `ConversationAggregateQueryPredicate`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PredicateDto {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dimension: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) operator: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) range: Option<RangeDto>,
}

/// `NumericRange`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RangeDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gt: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gte: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lt: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lte: Option<f64>,
}

/// `ConversationAggregationView`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ViewDto {
    pub(crate) target: String,
    pub(crate) name: String,
    pub(crate) function: &'static str,
    pub(crate) range: RangeDto,
}

/// `sortMetric` (topN / bottomN only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SortMetricDto {
    pub(crate) name: String,
    pub(crate) function: &'static str,
}

impl AggregationQueryDto {
    /// The requests for `query` over `window`: interval, granularity, timeZone, groupBy, the filter
    /// (an and-filter with one or-clause of `matches` predicates per filtered dimension), metrics.
    ///
    /// One request, or, when the query keeps more than [`MAX_USER_PREDICATES`] user ids, one per
    /// batch of at most that many (in the filter's order: `ceil(n / 100)` requests), each filtered
    /// by its batch of user ids and by the query's other filters. The batches are disjoint sets of
    /// users, so their rows joined are exactly the rows of the whole query.
    pub(crate) fn batches(query: &AggregateQuery, window: TimeWindow) -> Vec<AggregationQueryDto> {
        let users = query.filters().user_ids();
        if users.is_empty() {
            return vec![AggregationQueryDto::for_users(query, window, users)];
        }
        users.chunks(MAX_USER_PREDICATES).map(|batch| AggregationQueryDto::for_users(query, window, batch)).collect()
    }

    /// The request for `query` over `window` with `users` (a batch of the query's user ids) in
    /// place of its user-id filter.
    fn for_users(query: &AggregateQuery, window: TimeWindow, users: &[String]) -> Self {
        let clauses: Vec<ClauseDto> = STORABLE_DIMENSIONS
            .iter()
            .filter_map(|dimension| {
                let values =
                    if *dimension == Dimension::USER_ID { users } else { query.filters().values_for(*dimension) };
                (!values.is_empty()).then(|| ClauseDto {
                    kind: "or",
                    predicates: values
                        .iter()
                        .map(|value| PredicateDto {
                            kind: Some("dimension"),
                            dimension: Some(dimension.as_str().to_owned()),
                            operator: Some("matches"),
                            value: Some(value.clone()),
                            range: None,
                        })
                        .collect(),
                })
            })
            .collect();
        let filter = (!clauses.is_empty()).then_some(FilterDto { kind: "and", predicates: Vec::new(), clauses });
        AggregationQueryDto {
            interval: window.to_iso_interval(),
            granularity: Some(query.granularity().as_iso().to_owned()),
            time_zone: Some(query.time_zone().name().to_owned()),
            group_by: query.group_by().iter().map(|d| d.as_str().to_owned()).collect(),
            filter,
            metrics: query.metrics().iter().map(|m| m.as_str().to_owned()).collect(),
            flatten_multivalued_dimensions: None,
            views: Vec::new(),
            alternate_time_dimension: None,
            query_type: None,
            sort_metric: None,
            limit: None,
            page_size: None,
        }
    }

    /// The async job variant with `pageSize`.
    pub(crate) fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = Some(page_size);
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Responses: aggregates

/// An aggregates response of either family (a synchronous answer or a page of a job's results):
/// what the client reads rows and the next page's cursor from.
pub(crate) trait AggregatePage: DeserializeOwned + TryInto<AggregateResponse, Error = ContractError> {
    /// The cursor of the next page of a job's results; `None` on the last page and on a
    /// synchronous answer.
    fn take_cursor(&mut self) -> Option<String>;
}

/// `ConversationAggregateQueryResponse` and `ConversationAsyncAggregateQueryResponse` (the latter
/// adds `cursor`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct AggregateResponseDto {
    pub(crate) results: Option<Vec<DataContainerDto>>,
    pub(crate) cursor: Option<String>,
}

impl AggregatePage for AggregateResponseDto {
    fn take_cursor(&mut self) -> Option<String> {
        self.cursor.take()
    }
}

/// `UserAggregateQueryResponse` and `UserAsyncAggregateQueryResponse` (the latter adds `cursor`),
/// section 5: the results of the conversation response (grouped by `userId`, the status in each
/// value's `qualifier`, kept as it comes, known or not), plus `systemToOrganizationMappings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct UserAggregateResponseDto {
    /// System presence (`ON_QUEUE`) -> the org presence ids behind it (what a
    /// `tOrganizationPresence` qualifier is). Not needed for rows: read leniently, so that a
    /// mapping of another shape never costs the rows.
    #[serde(deserialize_with = "lenient")]
    pub(crate) system_to_organization_mappings: Option<BTreeMap<String, Vec<String>>>,
    pub(crate) results: Option<Vec<DataContainerDto>>,
    pub(crate) cursor: Option<String>,
}

impl AggregatePage for UserAggregateResponseDto {
    fn take_cursor(&mut self) -> Option<String> {
        self.cursor.take()
    }
}

/// `T`, or `None` when the value (valid JSON: anything else still fails the parse) has another shape.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// `ConversationAggregateDataContainer` and `UserAggregateDataContainer`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DataContainerDto {
    pub(crate) group: Option<BTreeMap<String, serde_json::Value>>,
    pub(crate) data: Option<Vec<StatisticalResponseDto>>,
}

/// `StatisticalResponse`: one bucket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StatisticalResponseDto {
    pub(crate) interval: Option<String>,
    pub(crate) metrics: Option<Vec<MetricDataDto>>,
}

/// `AggregateMetricData`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MetricDataDto {
    pub(crate) metric: Option<String>,
    pub(crate) qualifier: Option<String>,
    pub(crate) stats: Option<StatsDto>,
}

/// `StatisticalSummary`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct StatsDto {
    pub(crate) max: Option<f64>,
    pub(crate) min: Option<f64>,
    pub(crate) count: Option<f64>,
    pub(crate) sum: Option<f64>,
    pub(crate) ratio: Option<f64>,
    pub(crate) numerator: Option<f64>,
    pub(crate) denominator: Option<f64>,
    pub(crate) target: Option<f64>,
}

/// A response that does not follow the contract (not a transport problem: retrying won't help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ContractError(pub(crate) String);

impl TryFrom<AggregateResponseDto> for AggregateResponse {
    type Error = ContractError;

    fn try_from(dto: AggregateResponseDto) -> Result<Self, Self::Error> {
        response_of(dto.results)
    }
}

impl TryFrom<UserAggregateResponseDto> for AggregateResponse {
    type Error = ContractError;

    fn try_from(dto: UserAggregateResponseDto) -> Result<Self, Self::Error> {
        response_of(dto.results)
    }
}

/// The `results` of an aggregates response of either family (absent: nothing matched).
fn response_of(results: Option<Vec<DataContainerDto>>) -> Result<AggregateResponse, ContractError> {
    let results = results.unwrap_or_default().into_iter().map(GroupResult::try_from).collect::<Result<_, _>>()?;
    Ok(AggregateResponse { results })
}

impl TryFrom<DataContainerDto> for GroupResult {
    type Error = ContractError;

    fn try_from(dto: DataContainerDto) -> Result<Self, Self::Error> {
        let group = dto
            .group
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some((k, s)),
                other => Some((k, other.to_string())),
            })
            .collect();
        let data = dto.data.unwrap_or_default().into_iter().map(BucketData::try_from).collect::<Result<_, _>>()?;
        Ok(GroupResult { group, data })
    }
}

impl TryFrom<StatisticalResponseDto> for BucketData {
    type Error = ContractError;

    fn try_from(dto: StatisticalResponseDto) -> Result<Self, Self::Error> {
        let interval =
            dto.interval.ok_or_else(|| ContractError("a results[].data[] element has no interval".into()))?;
        let metrics = dto
            .metrics
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let metric = m.metric.ok_or_else(|| {
                    ContractError(format!("a metrics[] element of bucket {interval} has no metric name"))
                })?;
                Ok(MetricData { metric, qualifier: m.qualifier, stats: m.stats.map(Stats::from).unwrap_or_default() })
            })
            .collect::<Result<_, ContractError>>()?;
        Ok(BucketData { interval, metrics })
    }
}

impl From<StatsDto> for Stats {
    fn from(dto: StatsDto) -> Self {
        Stats {
            count: dto.count.filter(|c| c.is_finite() && *c >= 0.0).map(|c| c.round() as u64),
            sum: dto.sum,
            min: dto.min,
            max: dto.max,
            ratio: dto.ratio,
            numerator: dto.numerator,
            denominator: dto.denominator,
            target: dto.target,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses: async jobs (section 4)

/// `AsyncQueryResponse`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct AsyncQueryResponseDto {
    pub(crate) job_id: Option<String>,
}

/// `AsyncQueryStatus`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct AsyncQueryStatusDto {
    pub(crate) state: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) expiration_date: Option<String>,
    pub(crate) submission_date: Option<String>,
    pub(crate) completion_date: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Responses: users and queues (section 6)

/// The paging envelope shared by `UserEntityListing` and `QueueEntityListing`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct EntityListingDto<T> {
    pub(crate) entities: Option<Vec<T>>,
    pub(crate) page_size: Option<u32>,
    pub(crate) page_number: Option<u32>,
    pub(crate) total: Option<u64>,
    pub(crate) page_count: Option<u32>,
    pub(crate) next_uri: Option<String>,
}

impl<T> Default for EntityListingDto<T> {
    fn default() -> Self {
        EntityListingDto {
            entities: None,
            page_size: None,
            page_number: None,
            total: None,
            page_count: None,
            next_uri: None,
        }
    }
}

/// `DomainEntityRef` as used for `division`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DivisionDto {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
}

/// The `User` fields this tool keeps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UserDto {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) division: Option<DivisionDto>,
}

/// The `Queue` fields this tool keeps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct QueueDto {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) division: Option<DivisionDto>,
}

impl TryFrom<UserDto> for User {
    type Error = ContractError;

    fn try_from(dto: UserDto) -> Result<Self, Self::Error> {
        let id = dto.id.filter(|id| !id.is_empty()).ok_or_else(|| ContractError("a user has no id".into()))?;
        let division = dto.division.unwrap_or_default();
        Ok(User {
            id,
            name: dto.name.unwrap_or_default(),
            email: dto.email,
            state: dto.state.unwrap_or_else(|| "unknown".to_owned()),
            division_id: division.id,
            division_name: division.name,
        })
    }
}

impl TryFrom<QueueDto> for Queue {
    type Error = ContractError;

    fn try_from(dto: QueueDto) -> Result<Self, Self::Error> {
        let id = dto.id.filter(|id| !id.is_empty()).ok_or_else(|| ContractError("a queue has no id".into()))?;
        let division = dto.division.unwrap_or_default();
        Ok(Queue { id, name: dto.name.unwrap_or_default(), division_id: division.id, division_name: division.name })
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and tokens

/// `ErrorBody` (section 3.3); every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ErrorBodyDto {
    pub(crate) message: Option<String>,
    pub(crate) code: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) context_id: Option<String>,
    pub(crate) message_with_params: Option<String>,
    pub(crate) details: Option<Vec<ErrorDetailDto>>,
    pub(crate) errors: Option<Vec<ErrorBodyDto>>,
    pub(crate) limit: Option<LimitDto>,
    /// The token endpoint's `error` / `error_description` (section 1.1, unsure).
    pub(crate) error: Option<String>,
    #[serde(rename = "error_description")]
    pub(crate) error_description: Option<String>,
    pub(crate) description: Option<String>,
}

/// `Detail`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ErrorDetailDto {
    pub(crate) error_code: Option<String>,
    pub(crate) field_name: Option<String>,
}

/// `Limit`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LimitDto {
    pub(crate) key: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) value: Option<f64>,
}

/// The token response (section 1.1). No `Debug`: it holds the token.
#[derive(Deserialize)]
pub(crate) struct TokenResponseDto {
    pub(crate) access_token: Option<String>,
    pub(crate) expires_in: Option<f64>,
}

#[cfg(test)]
mod tests {
    use intervals_domain::{Dimension, Filters, Granularity, MetricName, Tz};
    use serde_json::json;

    use super::*;

    fn window() -> TimeWindow {
        TimeWindow::parse_iso_interval("2025-03-10T00:00:00Z/2025-03-11T00:00:00Z").unwrap()
    }

    fn query(filters: Filters) -> AggregateQuery {
        AggregateQuery::new(
            AggregateQuery::parse_metrics("tHandle,tAcw,nConnected").unwrap(),
            vec![Dimension::USER_ID, Dimension::MEDIA_TYPE],
            Granularity::Pt30m,
            "Europe/Dublin".parse::<Tz>().unwrap(),
            filters,
        )
        .unwrap()
    }

    fn status_query(filters: Filters) -> AggregateQuery {
        AggregateQuery::new(
            AggregateQuery::parse_metrics("tAgentRoutingStatus,tSystemPresence").unwrap(),
            vec![Dimension::USER_ID],
            Granularity::Pt30m,
            "Europe/Dublin".parse::<Tz>().unwrap(),
            filters,
        )
        .unwrap()
    }

    /// The one request of a query with at most 100 user ids.
    fn only(mut batches: Vec<AggregationQueryDto>) -> AggregationQueryDto {
        assert_eq!(batches.len(), 1);
        batches.remove(0)
    }

    /// `n` distinct user ids, sorted as `Filters` keeps them.
    fn user_ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("6f1e2d3c-4b5a-4968-8776-{i:012x}")).collect()
    }

    fn predicate(dimension: &str, value: &str) -> serde_json::Value {
        json!({"type": "dimension", "dimension": dimension, "operator": "matches", "value": value})
    }

    #[test]
    fn request_without_filters_omits_absent_optionals() {
        let body = serde_json::to_value(only(AggregationQueryDto::batches(&query(Filters::none()), window()))).unwrap();
        assert_eq!(
            body,
            json!({
                "interval": "2025-03-10T00:00:00.000Z/2025-03-11T00:00:00.000Z",
                "granularity": "PT30M",
                "timeZone": "Europe/Dublin",
                "groupBy": ["userId", "mediaType"],
                "metrics": ["tHandle", "tAcw", "nConnected"]
            })
        );
    }

    #[test]
    fn filters_become_an_and_filter_of_or_clauses() {
        let filters = Filters::new(
            &["voice".to_owned(), "chat".to_owned()],
            &["2F6C1B1E-3C39-4B5E-9B61-0A8A7D6C2B11".to_owned()],
        )
        .unwrap();
        let body =
            serde_json::to_value(only(AggregationQueryDto::batches(&query(filters), window())).with_page_size(500))
                .unwrap();
        assert_eq!(
            body["filter"],
            json!({
                "type": "and",
                "clauses": [
                    {"type": "or", "predicates": [predicate("mediaType", "chat"), predicate("mediaType", "voice")]},
                    {"type": "or", "predicates": [predicate("queueId", "2f6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b11")]}
                ]
            })
        );
        assert_eq!(body["pageSize"], json!(500));
    }

    #[test]
    fn user_ids_are_one_more_or_clause_beside_the_other_dimensions() {
        let filters = Filters::new(&["voice".to_owned()], &["2F6C1B1E-3C39-4B5E-9B61-0A8A7D6C2B11".to_owned()])
            .unwrap()
            .with_user_ids(&user_ids(2))
            .unwrap();
        let body = serde_json::to_value(only(AggregationQueryDto::batches(&query(filters), window()))).unwrap();
        assert_eq!(
            body["filter"],
            json!({
                "type": "and",
                "clauses": [
                    {"type": "or", "predicates": [
                        predicate("userId", "6f1e2d3c-4b5a-4968-8776-000000000000"),
                        predicate("userId", "6f1e2d3c-4b5a-4968-8776-000000000001")
                    ]},
                    {"type": "or", "predicates": [predicate("mediaType", "voice")]},
                    {"type": "or", "predicates": [predicate("queueId", "2f6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b11")]}
                ]
            })
        );
    }

    #[test]
    fn a_status_query_is_grouped_by_user_alone_with_no_conversation_only_field() {
        let filters = Filters::none().with_user_ids(&user_ids(1)).unwrap();
        let body = serde_json::to_value(only(AggregationQueryDto::batches(&status_query(filters), window()))).unwrap();
        assert_eq!(
            body,
            json!({
                "interval": "2025-03-10T00:00:00.000Z/2025-03-11T00:00:00.000Z",
                "granularity": "PT30M",
                "timeZone": "Europe/Dublin",
                "groupBy": ["userId"],
                "filter": {"type": "and", "clauses": [
                    {"type": "or", "predicates": [predicate("userId", "6f1e2d3c-4b5a-4968-8776-000000000000")]}
                ]},
                "metrics": ["tAgentRoutingStatus", "tSystemPresence"]
            })
        );
        let unfiltered = only(AggregationQueryDto::batches(&status_query(Filters::none()), window()));
        assert_eq!(unfiltered.filter, None);
    }

    #[test]
    fn more_than_100_user_ids_are_sent_in_batches_of_at_most_100() {
        let ids = user_ids(250);
        for q in [
            query(Filters::new(&["chat".to_owned()], &[]).unwrap().with_user_ids(&ids).unwrap()),
            status_query(Filters::none().with_user_ids(&ids).unwrap()),
        ] {
            let batches = AggregationQueryDto::batches(&q, window());
            let users: Vec<Vec<String>> = batches
                .iter()
                .map(|b| {
                    let clauses = &b.filter.as_ref().unwrap().clauses;
                    assert_eq!(clauses[0].predicates[0].dimension.as_deref(), Some("userId"));
                    clauses[0].predicates.iter().map(|p| p.value.clone().unwrap()).collect()
                })
                .collect();
            assert_eq!(users.iter().map(Vec::len).collect::<Vec<_>>(), [100, 100, 50]);
            assert_eq!(users.concat(), ids, "disjoint batches, every id once, in order");
            for b in &batches {
                let mut rest = b.clone();
                rest.filter.as_mut().unwrap().clauses.remove(0);
                let mut first = batches[0].clone();
                first.filter.as_mut().unwrap().clauses.remove(0);
                assert_eq!(rest, first, "the batches differ only in their user ids");
            }
        }
        let exactly_100 = status_query(Filters::none().with_user_ids(&user_ids(100)).unwrap());
        assert_eq!(AggregationQueryDto::batches(&exactly_100, window()).len(), 1);
        let exactly_101 = status_query(Filters::none().with_user_ids(&user_ids(101)).unwrap());
        assert_eq!(AggregationQueryDto::batches(&exactly_101, window()).len(), 2);
    }

    #[test]
    fn a_users_response_converts_into_qualified_rows_leniently() {
        let body = json!({
            "systemToOrganizationMappings": {"ON_QUEUE": ["e08eaf1b-ee47-4fa9-a231-1200e284798f"], "BREAK": []},
            "someFutureField": {"x": 1},
            "results": [{
                "group": {"userId": "6d9f1a2e-0000-4000-8000-000000000001"},
                "data": [{
                    "interval": "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z",
                    "metrics": [
                        {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {"sum": 600000, "count": 2}},
                        {"metric": "tAgentRoutingStatus", "qualifier": "INTERACTING",
                         "stats": {"sum": 1200000, "p95": 7, "median": 3.5}},
                        {"metric": "tSystemPresence", "qualifier": "SOMETHING_NEW", "stats": {"sum": 1800000}},
                        {"metric": "tSystemPresence", "qualifier": "AWAY", "stats": {}}
                    ]
                }]
            }]
        });
        let dto: UserAggregateResponseDto = serde_json::from_value(body).unwrap();
        assert_eq!(
            dto.system_to_organization_mappings.as_ref().unwrap()["ON_QUEUE"],
            ["e08eaf1b-ee47-4fa9-a231-1200e284798f"]
        );
        let q = status_query(Filters::none());
        let rows = AggregateResponse::try_from(dto).unwrap().into_rows_within(&q, window()).unwrap();
        let keys: Vec<(String, Option<f64>)> = rows.iter().map(|r| (r.metric_key(), r.stats().sum)).collect();
        assert_eq!(
            keys,
            [
                ("tAgentRoutingStatus:IDLE".to_owned(), Some(600_000.0)),
                ("tAgentRoutingStatus:INTERACTING".to_owned(), Some(1_200_000.0)),
                ("tSystemPresence:SOMETHING_NEW".to_owned(), Some(1_800_000.0)),
            ],
            "an unknown qualifier is kept as it comes; empty stats give no row"
        );
        assert_eq!(rows[0].group(), ["6d9f1a2e-0000-4000-8000-000000000001"]);
        assert_eq!(rows[0].stats().count, Some(2));

        // No results, a mapping of another shape, a cursor: an empty page.
        let mut dto: UserAggregateResponseDto =
            serde_json::from_value(json!({"systemToOrganizationMappings": {"ON_QUEUE": "x"}, "cursor": "c2"})).unwrap();
        assert!(dto.system_to_organization_mappings.is_none());
        assert_eq!(dto.take_cursor().as_deref(), Some("c2"));
        assert!(AggregateResponse::try_from(dto).unwrap().results.is_empty());
        let dto: UserAggregateResponseDto = serde_json::from_str("{}").unwrap();
        assert!(AggregateResponse::try_from(dto).unwrap().results.is_empty());
        // What breaks the contract for conversations breaks it for users.
        let dto: UserAggregateResponseDto =
            serde_json::from_value(json!({"results": [{"group": {}, "data": [{"metrics": []}]}]})).unwrap();
        assert!(AggregateResponse::try_from(dto).unwrap_err().0.contains("no interval"));
    }

    #[test]
    fn the_documented_example_response_converts_into_rows() {
        let body = json!({
          "results": [{
              "group": { "userId": "6d9f1a2e-0000-4000-8000-000000000001", "mediaType": "voice" },
              "data": [{
                  "interval": "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z",
                  "metrics": [
                    { "metric": "nConnected",    "stats": { "count": 6 } },
                    { "metric": "tAcw",          "stats": { "max": 61000,  "min": 4200,  "count": 5, "sum": 118400 } },
                    { "metric": "tAnswered",     "stats": { "max": 9100,   "min": 1200,  "count": 6, "sum": 21400 } },
                    { "metric": "tHandle",       "stats": { "max": 612000, "min": 95000, "count": 5, "sum": 1450300 } },
                    { "metric": "tHandle", "qualifier": "q", "stats": {} }
                  ]
              }]
          }, { "group": { "userId": "u2" } }]
        });
        let dto: AggregateResponseDto = serde_json::from_value(body).unwrap();
        let q = query(Filters::none());
        let rows = AggregateResponse::try_from(dto).unwrap().into_rows(&q).unwrap();
        assert_eq!(rows.len(), 3, "tAnswered was not asked for; empty stats give no row");
        let handle = rows.iter().find(|r| r.metric() == MetricName::parse("tHandle").unwrap()).unwrap();
        assert_eq!(handle.group(), ["6d9f1a2e-0000-4000-8000-000000000001", "voice"]);
        assert_eq!(handle.stats().count, Some(5));
        assert_eq!(handle.stats().sum, Some(1_450_300.0));
        assert_eq!(handle.bucket().to_iso_interval(), "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z");
    }

    #[test]
    fn absent_results_is_an_empty_response() {
        let dto: AggregateResponseDto = serde_json::from_str("{}").unwrap();
        assert!(AggregateResponse::try_from(dto).unwrap().results.is_empty());
    }

    #[test]
    fn a_bucket_without_interval_breaks_the_contract() {
        let dto: AggregateResponseDto =
            serde_json::from_value(json!({"results": [{"group": {}, "data": [{"metrics": []}]}]})).unwrap();
        assert!(AggregateResponse::try_from(dto).unwrap_err().0.contains("no interval"));
    }

    #[test]
    fn users_and_queues_convert() {
        let listing: EntityListingDto<UserDto> = serde_json::from_value(json!({
            "entities": [{"id": "u1", "name": "Ann", "state": "deleted", "division": {"id": "d1", "name": "Home"},
                          "selfUri": "/api/v2/users/u1"}],
            "pageSize": 100, "pageNumber": 1, "total": 1, "pageCount": 1
        }))
        .unwrap();
        let user = User::try_from(listing.entities.unwrap().remove(0)).unwrap();
        assert_eq!(user.state, "deleted");
        assert_eq!(user.division_name.as_deref(), Some("Home"));
        assert!(User::try_from(UserDto::default()).is_err());
        let queue = Queue::try_from(QueueDto { id: Some("q1".into()), name: None, division: None }).unwrap();
        assert_eq!(queue.name, "");
    }
}
