//! Wire DTOs of the Genesys Cloud API (docs/genesys-api.md sections 1-6), and their conversions into
//! domain types. Requests serialise exactly the documented fields and omit absent optionals;
//! responses accept every field as optional and ignore unknown ones.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use intervals_domain::{
    AggregateQuery, Dimension, DomainError, MetricRow, Queue, ResponseRows, Stats, TimeWindow, User,
    STORABLE_DIMENSIONS,
};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
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

/// An aggregates response of either family (a synchronous answer or a page of a job's results),
/// read from the reply's body without copying its strings: what the client reads rows and the
/// next page's cursor from ([`read_rows`]).
pub(crate) trait AggregatePage<'a>: Deserialize<'a> {
    /// The cursor of the next page of a job's results; `None` on the last page and on a
    /// synchronous answer.
    fn take_cursor(&mut self) -> Option<String>;

    /// `results` (empty when absent: nothing matched).
    fn results(&self) -> &[DataContainerDto<'a>];
}

/// `ConversationAggregateQueryResponse` and `ConversationAsyncAggregateQueryResponse` (the latter
/// adds `cursor`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct AggregateResponseDto<'a> {
    #[serde(borrow)]
    pub(crate) results: Option<Vec<DataContainerDto<'a>>>,
    pub(crate) cursor: Option<String>,
}

impl<'a> AggregatePage<'a> for AggregateResponseDto<'a> {
    fn take_cursor(&mut self) -> Option<String> {
        self.cursor.take()
    }

    fn results(&self) -> &[DataContainerDto<'a>] {
        self.results.as_deref().unwrap_or_default()
    }
}

/// `UserAggregateQueryResponse` and `UserAsyncAggregateQueryResponse` (the latter adds `cursor`),
/// section 5: the results of the conversation response (grouped by `userId`, the status in each
/// value's `qualifier`, kept as it comes, known or not), plus `systemToOrganizationMappings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct UserAggregateResponseDto<'a> {
    /// System presence (`ON_QUEUE`) -> the org presence ids behind it (what a
    /// `tOrganizationPresence` qualifier is). Not needed for rows: read leniently, so that a
    /// mapping of another shape never costs the rows.
    #[serde(deserialize_with = "lenient")]
    pub(crate) system_to_organization_mappings: Option<BTreeMap<String, Vec<String>>>,
    #[serde(borrow)]
    pub(crate) results: Option<Vec<DataContainerDto<'a>>>,
    pub(crate) cursor: Option<String>,
}

impl<'a> AggregatePage<'a> for UserAggregateResponseDto<'a> {
    fn take_cursor(&mut self) -> Option<String> {
        self.cursor.take()
    }

    fn results(&self) -> &[DataContainerDto<'a>] {
        self.results.as_deref().unwrap_or_default()
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
pub(crate) struct DataContainerDto<'a> {
    #[serde(borrow)]
    pub(crate) group: Option<GroupDto<'a>>,
    #[serde(borrow)]
    pub(crate) data: Option<Vec<StatisticalResponseDto<'a>>>,
}

/// `StatisticalResponse`: one bucket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StatisticalResponseDto<'a> {
    #[serde(borrow)]
    pub(crate) interval: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) metrics: Option<Vec<MetricDataDto<'a>>>,
}

/// `AggregateMetricData`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MetricDataDto<'a> {
    #[serde(borrow)]
    pub(crate) metric: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) qualifier: Option<Text<'a>>,
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

/// A JSON string of the body: borrowed from it, or copied when it holds escapes (`"a\"b"`) and so
/// differs from its bytes in the body. Accepts what a `String` accepts, with the same errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(PhantomData<&'a str>);

        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(TextVisitor(PhantomData))
    }
}

/// A `group` object (dimension -> value), its entries as they come. Read as a map of JSON values
/// would be (what it was before: `BTreeMap<String, serde_json::Value>`): the last entry of a name
/// wins, `null` is no value, and a value other than a string is its JSON text (`7`, `true`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupDto<'a>(pub(crate) Vec<(Text<'a>, Option<Cow<'a, str>>)>);

impl GroupDto<'_> {
    /// The value of dimension `name`, if the group has one.
    pub(crate) fn value_of(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| **k == *name).and_then(|(_, v)| v.as_deref())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for GroupDto<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GroupVisitor<'a>(PhantomData<&'a str>);

        impl<'de: 'a, 'a> Visitor<'de> for GroupVisitor<'a> {
            type Value = GroupDto<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(16));
                while let Some((name, GroupValue(value))) = map.next_entry::<Text<'a>, GroupValue<'a>>()? {
                    entries.push((name, value));
                }
                Ok(GroupDto(entries))
            }
        }

        deserializer.deserialize_map(GroupVisitor(PhantomData))
    }
}

/// One value of a `group` object, as [`GroupDto`] keeps it.
struct GroupValue<'a>(Option<Cow<'a, str>>);

impl GroupValue<'_> {
    /// A value other than a string, as `serde_json::Value` has it.
    fn json(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => GroupValue(None),
            serde_json::Value::String(s) => GroupValue(Some(Cow::Owned(s))),
            other => GroupValue(Some(Cow::Owned(other.to_string()))),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for GroupValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor<'a>(PhantomData<&'a str>);

        // What `serde_json::Value`'s own visitor does, except that a string is kept borrowed.
        impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
            type Value = GroupValue<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(GroupValue(Some(Cow::Borrowed(v))))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(GroupValue(Some(Cow::Owned(v.to_owned()))))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(GroupValue(Some(Cow::Owned(v))))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(GroupValue(None))
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(GroupValue(None))
            }

            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
                GroupValue::deserialize(deserializer)
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(GroupValue::json(serde_json::Value::Bool(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(GroupValue::json(serde_json::Value::from(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(GroupValue::json(serde_json::Value::from(v)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(GroupValue::json(serde_json::Value::from(v)))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                serde_json::Value::deserialize(SeqAccessDeserializer::new(seq)).map(GroupValue::json)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                serde_json::Value::deserialize(MapAccessDeserializer::new(map)).map(GroupValue::json)
            }
        }

        deserializer.deserialize_any(ValueVisitor(PhantomData))
    }
}

/// A response that does not follow the contract (not a transport problem: retrying won't help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ContractError(pub(crate) String);

/// Why the rows of a response could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowsError {
    /// A bucket without an interval, a metric without a name: the response's shape breaks the
    /// contract.
    Contract(ContractError),
    /// What the domain refuses ([`ResponseRows`]): an unparsable interval, an unknown metric, a
    /// bucket outside the window or off the query's grid.
    Domain(DomainError),
}

impl From<ContractError> for RowsError {
    fn from(e: ContractError) -> Self {
        RowsError::Contract(e)
    }
}

impl From<DomainError> for RowsError {
    fn from(e: DomainError) -> Self {
        RowsError::Domain(e)
    }
}

/// The rows of `results` (those of an aggregates response of either family) built by `rows`,
/// straight from the borrowed DTOs. The contract is checked first, for the whole response, in
/// order (every bucket has an interval, then every metric of it a name): its first breach wins
/// over anything the domain would refuse. Then the domain's rules ([`ResponseRows`]).
pub(crate) fn read_rows(
    results: &[DataContainerDto<'_>],
    mut rows: ResponseRows<'_>,
) -> Result<Vec<MetricRow>, RowsError> {
    for container in results {
        for bucket in container.data.as_deref().unwrap_or_default() {
            let interval = bucket
                .interval
                .as_deref()
                .ok_or_else(|| ContractError("a results[].data[] element has no interval".into()))?;
            if bucket.metrics.iter().flatten().any(|m| m.metric.is_none()) {
                return Err(
                    ContractError(format!("a metrics[] element of bucket {interval} has no metric name")).into()
                );
            }
        }
    }
    for container in results {
        let group = container.group.as_ref();
        rows.group_with(|dimension| group.and_then(|g| g.value_of(dimension.as_str())));
        for bucket in container.data.as_deref().unwrap_or_default() {
            rows.bucket(bucket.interval.as_deref().unwrap_or_default())?;
            for m in bucket.metrics.as_deref().unwrap_or_default() {
                let stats = m.stats.map(Stats::from).unwrap_or_default();
                rows.metric(m.metric.as_deref().unwrap_or_default(), m.qualifier.as_deref(), stats)?;
            }
        }
    }
    Ok(rows.finish()?)
}

/// The rows of an aggregates response in one pass over its body, each row built as its metric is
/// read: no list per group or bucket, no copy of a string. `users`: the body is a users
/// aggregates response (`systemToOrganizationMappings` is one of its fields).
///
/// Only for the plain shape of a response, the one the API sends: objects (not arrays) with no
/// field twice, `group` before `data`, a non-null `interval` before `metrics`, every metric named
/// and known, every bucket inside the window. Anything else, and any error, gives `None`: the
/// caller then reads the body with the DTOs ([`read_rows`]), whose acceptance, errors and their
/// order are the contract. On the plain shape both give the same rows and cursor (a test compares
/// them).
pub(crate) fn stream_rows(body: &str, users: bool, rows: ResponseRows<'_>) -> Option<(Vec<MetricRow>, Option<String>)> {
    let mut state = Stream { rows, users };
    let mut de = serde_json::Deserializer::from_str(body);
    let cursor = PageSeed(&mut state).deserialize(&mut de).ok()?;
    de.end().ok()?;
    let rows = state.rows.finish().ok()?;
    Some((rows, cursor))
}

/// What the one-pass reading builds, and the response's family.
struct Stream<'q> {
    rows: ResponseRows<'q>,
    users: bool,
}

/// Ends the one-pass reading: the body is not of the plain shape (or breaks a rule).
fn off_plain<E: de::Error>() -> E {
    E::custom("not the plain shape of an aggregates response")
}

/// `null` (nothing) or what `S` reads.
struct Nullable<S>(S);

impl<'de, S: DeserializeSeed<'de, Value = ()>> DeserializeSeed<'de> for Nullable<S> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de, Value = ()>> Visitor<'de> for Nullable<S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("option")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.0.deserialize(deserializer)
    }
}

/// A response object: `results`, `cursor` and (users) `systemToOrganizationMappings`; the cursor.
struct PageSeed<'s, 'q>(&'s mut Stream<'q>);

impl<'de> DeserializeSeed<'de> for PageSeed<'_, '_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_, '_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an aggregates response")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut results, mut cursor, mut mappings) = (false, None, false);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key {
                "results" if !results => {
                    results = true;
                    map.next_value_seed(Nullable(Each(&mut *self.0, Container)))?;
                }
                "cursor" if cursor.is_none() => cursor = Some(map.next_value::<Option<String>>()?),
                "systemToOrganizationMappings" if self.0.users => {
                    if mappings {
                        return Err(off_plain());
                    }
                    mappings = true;
                    map.next_value::<de::IgnoredAny>()?;
                }
                "results" | "cursor" => return Err(off_plain()),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(cursor.flatten())
    }
}

/// How one element of a list is read into the stream.
trait Element: Copy {
    fn read<'de, D: Deserializer<'de>>(self, stream: &mut Stream<'_>, deserializer: D) -> Result<(), D::Error>;
}

/// A list whose every element `E` reads.
struct Each<'s, 'q, E>(&'s mut Stream<'q>, E);

impl<'de, E: Element> DeserializeSeed<'de> for Each<'_, '_, E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, E: Element> Visitor<'de> for Each<'_, '_, E> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Each(stream, element) = self;
        while seq.next_element_seed(One(&mut *stream, element))?.is_some() {}
        Ok(())
    }
}

/// One element of a list.
struct One<'s, 'q, E>(&'s mut Stream<'q>, E);

impl<'de, E: Element> DeserializeSeed<'de> for One<'_, '_, E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.1.read(self.0, deserializer)
    }
}

/// A `results[]` element: `group`, then `data`.
#[derive(Clone, Copy)]
struct Container;

/// A `data[]` element: `interval`, then `metrics`.
#[derive(Clone, Copy)]
struct Bucket;

/// A `metrics[]` element, read as its DTO (it borrows its strings).
#[derive(Clone, Copy)]
struct Metric;

/// The fields of an object, for one of the elements above.
struct Fields<'s, 'q, E>(&'s mut Stream<'q>, E);

impl Element for Container {
    fn read<'de, D: Deserializer<'de>>(self, stream: &mut Stream<'_>, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(Fields(stream, self))
    }
}

impl<'de> Visitor<'de> for Fields<'_, '_, Container> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct DataContainerDto")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut group, mut data) = (false, false);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key {
                "group" if !group && !data => {
                    group = true;
                    let values: Option<GroupDto<'de>> = map.next_value()?;
                    self.0.rows.group_with(|d| values.as_ref().and_then(|g| g.value_of(d.as_str())));
                }
                "data" if group && !data => {
                    data = true;
                    map.next_value_seed(Nullable(Each(&mut *self.0, Bucket)))?;
                }
                "group" | "data" => return Err(off_plain()),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl Element for Bucket {
    fn read<'de, D: Deserializer<'de>>(self, stream: &mut Stream<'_>, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(Fields(stream, self))
    }
}

impl<'de> Visitor<'de> for Fields<'_, '_, Bucket> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct StatisticalResponseDto")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut interval, mut metrics) = (false, false);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key {
                "interval" if !interval && !metrics => {
                    interval = true;
                    let Some(text) = map.next_value::<Option<Text<'de>>>()? else { return Err(off_plain()) };
                    self.0.rows.bucket(&text).map_err(|_| off_plain())?;
                }
                "metrics" if interval && !metrics => {
                    metrics = true;
                    map.next_value_seed(Nullable(Each(&mut *self.0, Metric)))?;
                }
                "interval" | "metrics" => return Err(off_plain()),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        if !interval {
            return Err(off_plain());
        }
        Ok(())
    }
}

impl Element for Metric {
    fn read<'de, D: Deserializer<'de>>(self, stream: &mut Stream<'_>, deserializer: D) -> Result<(), D::Error> {
        let m = MetricDataDto::deserialize(deserializer)?;
        let Some(name) = m.metric else { return Err(off_plain()) };
        let stats = m.stats.map(Stats::from).unwrap_or_default();
        stream.rows.metric(&name, m.qualifier.as_deref(), stats).map_err(|_| off_plain())
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
    use std::sync::Arc;

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

    /// The rows of `page` (parsed already) to `q`, within `window` when given.
    fn page_rows<'a>(
        page: &impl AggregatePage<'a>,
        q: &AggregateQuery,
        window: Option<TimeWindow>,
    ) -> Result<Vec<MetricRow>, RowsError> {
        let rows = match window {
            Some(w) => ResponseRows::within(q, w),
            None => ResponseRows::new(q),
        };
        read_rows(page.results(), rows)
    }

    fn contract_error(result: Result<Vec<MetricRow>, RowsError>) -> String {
        match result {
            Err(RowsError::Contract(e)) => e.0,
            other => panic!("not a contract error: {other:?}"),
        }
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
        })
        .to_string();
        let dto: UserAggregateResponseDto<'_> = serde_json::from_str(&body).unwrap();
        assert_eq!(
            dto.system_to_organization_mappings.as_ref().unwrap()["ON_QUEUE"],
            ["e08eaf1b-ee47-4fa9-a231-1200e284798f"]
        );
        let q = status_query(Filters::none());
        let rows = page_rows(&dto, &q, Some(window())).unwrap();
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
        let mut dto: UserAggregateResponseDto<'_> =
            serde_json::from_str(r#"{"systemToOrganizationMappings": {"ON_QUEUE": "x"}, "cursor": "c2"}"#).unwrap();
        assert!(dto.system_to_organization_mappings.is_none());
        assert_eq!(dto.take_cursor().as_deref(), Some("c2"));
        assert!(dto.results().is_empty());
        assert_eq!(page_rows(&dto, &q, Some(window())), Ok(vec![]));
        let dto: UserAggregateResponseDto<'_> = serde_json::from_str("{}").unwrap();
        assert!(dto.results().is_empty());
        // What breaks the contract for conversations breaks it for users.
        let dto: UserAggregateResponseDto<'_> =
            serde_json::from_str(r#"{"results": [{"group": {}, "data": [{"metrics": []}]}]}"#).unwrap();
        assert!(contract_error(page_rows(&dto, &q, Some(window()))).contains("no interval"));
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
        })
        .to_string();
        let dto: AggregateResponseDto<'_> = serde_json::from_str(&body).unwrap();
        let q = query(Filters::none());
        let rows = page_rows(&dto, &q, None).unwrap();
        assert_eq!(rows.len(), 3, "tAnswered was not asked for; empty stats give no row");
        let handle = rows.iter().find(|r| r.metric() == MetricName::parse("tHandle").unwrap()).unwrap();
        assert_eq!(handle.group(), ["6d9f1a2e-0000-4000-8000-000000000001", "voice"]);
        assert_eq!(handle.stats().count, Some(5));
        assert_eq!(handle.stats().sum, Some(1_450_300.0));
        assert_eq!(handle.bucket().to_iso_interval(), "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z");
        assert!(rows.iter().all(|r| Arc::ptr_eq(r.shared_group(), rows[0].shared_group())), "one group, shared");
    }

    #[test]
    fn absent_results_is_an_empty_response() {
        let dto: AggregateResponseDto<'_> = serde_json::from_str("{}").unwrap();
        assert!(dto.results().is_empty());
        assert_eq!(page_rows(&dto, &query(Filters::none()), None), Ok(vec![]));
    }

    #[test]
    fn a_bucket_without_interval_breaks_the_contract() {
        let dto: AggregateResponseDto<'_> =
            serde_json::from_str(r#"{"results": [{"group": {}, "data": [{"metrics": []}]}]}"#).unwrap();
        assert!(contract_error(page_rows(&dto, &query(Filters::none()), None)).contains("no interval"));
    }

    /// The reading of aggregates responses before rows were built from borrowed DTOs: owned DTOs,
    /// their conversion into the domain's `AggregateResponse`, and the rows made from that as
    /// `AggregateResponse::into_rows_within` made them. Kept to compare with, response by response.
    mod reference {
        use std::collections::BTreeMap;

        use intervals_domain::{
            AggregateQuery, AggregateResponse, BucketData, DomainError, GroupResult, MetricData, MetricName, MetricRow,
            Stats, TimeWindow,
        };
        use serde::Deserialize;

        use super::super::{ContractError, StatsDto};

        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(default, rename_all = "camelCase")]
        pub(super) struct AggregateResponseDto {
            pub(super) results: Option<Vec<DataContainerDto>>,
            pub(super) cursor: Option<String>,
        }

        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(default, rename_all = "camelCase")]
        pub(super) struct UserAggregateResponseDto {
            #[serde(deserialize_with = "super::super::lenient")]
            pub(super) system_to_organization_mappings: Option<BTreeMap<String, Vec<String>>>,
            pub(super) results: Option<Vec<DataContainerDto>>,
            pub(super) cursor: Option<String>,
        }

        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(default)]
        pub(super) struct DataContainerDto {
            pub(super) group: Option<BTreeMap<String, serde_json::Value>>,
            pub(super) data: Option<Vec<StatisticalResponseDto>>,
        }

        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(default)]
        pub(super) struct StatisticalResponseDto {
            pub(super) interval: Option<String>,
            pub(super) metrics: Option<Vec<MetricDataDto>>,
        }

        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(default)]
        pub(super) struct MetricDataDto {
            pub(super) metric: Option<String>,
            pub(super) qualifier: Option<String>,
            pub(super) stats: Option<StatsDto>,
        }

        pub(super) fn response_of(results: Option<Vec<DataContainerDto>>) -> Result<AggregateResponse, ContractError> {
            let results =
                results.unwrap_or_default().into_iter().map(group_result).collect::<Result<_, ContractError>>()?;
            Ok(AggregateResponse { results })
        }

        fn group_result(dto: DataContainerDto) -> Result<GroupResult, ContractError> {
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
            let data = dto.data.unwrap_or_default().into_iter().map(bucket_data).collect::<Result<_, _>>()?;
            Ok(GroupResult { group, data })
        }

        fn bucket_data(dto: StatisticalResponseDto) -> Result<BucketData, ContractError> {
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
                    Ok(MetricData {
                        metric,
                        qualifier: m.qualifier,
                        stats: m.stats.map(Stats::from).unwrap_or_default(),
                    })
                })
                .collect::<Result<_, ContractError>>()?;
            Ok(BucketData { interval, metrics })
        }

        /// `into_rows` and, with a window, `into_rows_within`, as they were.
        pub(super) fn rows(
            response: AggregateResponse,
            query: &AggregateQuery,
            window: Option<TimeWindow>,
        ) -> Result<Vec<MetricRow>, DomainError> {
            let mut rows = Vec::new();
            for result in response.results {
                let group: Vec<String> = query
                    .group_by()
                    .iter()
                    .map(|d| {
                        result.group.iter().find(|(k, _)| k == d.as_str()).map(|(_, v)| v.clone()).unwrap_or_default()
                    })
                    .collect();
                for bucket in result.data {
                    let window = TimeWindow::parse_iso_interval(&bucket.interval)?;
                    for m in bucket.metrics {
                        let metric = MetricName::parse(&m.metric).map_err(|_| {
                            DomainError::BadResponse(format!("unknown metric {:?} in response", m.metric))
                        })?;
                        if !query.metrics().contains(&metric) || m.stats.is_empty() {
                            continue;
                        }
                        rows.push(MetricRow::new(group.clone(), window, metric, m.qualifier, m.stats));
                    }
                }
            }
            let Some(window) = window else { return Ok(rows) };
            let (granularity, tz) = (query.granularity(), query.time_zone());
            for row in &rows {
                let bucket = row.bucket();
                let why = if !window.covers(&bucket) {
                    Some("lies outside it")
                } else if !bucket.is_aligned(granularity, tz) || granularity.next(bucket.start(), tz) != bucket.end() {
                    Some("is not one bucket of the query's granularity")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(DomainError::BucketOutsideWindow {
                        window: window.to_string(),
                        bucket: bucket.to_string(),
                        why,
                    });
                }
            }
            Ok(rows)
        }
    }

    /// What reading `body` gives: a parse error's text, a contract error, a domain error, or rows.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Unparsable(String),
        Contract(String),
        Domain(DomainError),
        Rows(Vec<MetricRow>, Option<String>),
    }

    /// `body` read as the client reads it: in one pass when it has the plain shape, else with the
    /// DTOs; and whether it was one pass.
    fn read_now(body: &str, users: bool, q: &AggregateQuery, window: Option<TimeWindow>) -> (Outcome, bool) {
        let rows = || match window {
            Some(w) => ResponseRows::within(q, w),
            None => ResponseRows::new(q),
        };
        if let Some((rows, cursor)) = stream_rows(body, users, rows()) {
            return (Outcome::Rows(rows, cursor), true);
        }
        let outcome = if users {
            read_dtos::<UserAggregateResponseDto<'_>>(body, rows())
        } else {
            read_dtos::<AggregateResponseDto<'_>>(body, rows())
        };
        (outcome, false)
    }

    fn read_dtos<'a, P: AggregatePage<'a>>(body: &'a str, rows: ResponseRows<'_>) -> Outcome {
        let mut page: P = match serde_json::from_str(body) {
            Ok(p) => p,
            Err(e) => return Outcome::Unparsable(e.to_string()),
        };
        let cursor = page.take_cursor();
        match read_rows(page.results(), rows) {
            Ok(rows) => Outcome::Rows(rows, cursor),
            Err(RowsError::Contract(e)) => Outcome::Contract(e.0),
            Err(RowsError::Domain(e)) => Outcome::Domain(e),
        }
    }

    fn read_before(body: &str, users: bool, q: &AggregateQuery, window: Option<TimeWindow>) -> Outcome {
        let parsed = if users {
            serde_json::from_str::<reference::UserAggregateResponseDto>(body).map(|p| (p.results, p.cursor))
        } else {
            serde_json::from_str::<reference::AggregateResponseDto>(body).map(|p| (p.results, p.cursor))
        };
        let (results, cursor) = match parsed {
            Ok(p) => p,
            Err(e) => return Outcome::Unparsable(e.to_string()),
        };
        let response = match reference::response_of(results) {
            Ok(r) => r,
            Err(e) => return Outcome::Contract(e.0),
        };
        match reference::rows(response, q, window) {
            Ok(rows) => Outcome::Rows(rows, cursor),
            Err(e) => Outcome::Domain(e),
        }
    }

    /// Responses of every shape the reading has rules for, well-formed or not.
    fn tricky_bodies() -> Vec<String> {
        const IN: &str = r#""interval": "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z""#;
        const IN2: &str = r#""interval": "2025-03-10T09:30:00Z/2025-03-10T10:00:00Z""#;
        const OUT: &str = r#""interval": "2025-03-09T09:00:00.000Z/2025-03-09T09:30:00.000Z""#;
        const OFF: &str = r#""interval": "2025-03-10T09:00:00.000Z/2025-03-10T10:00:00.000Z""#;
        const ST: &str = r#""stats": {"count": 2, "sum": 1500.5, "min": 500, "max": 1000.5}"#;
        let bucket = |interval: &str, metrics: &str| format!(r#"{{{interval}, "metrics": [{metrics}]}}"#);
        let handle = format!(r#"{{"metric": "tHandle", {ST}}}"#);
        let acw = format!(r#"{{"metric": "tAcw", {ST}}}"#);
        let user = r#""userId": "6d9f1a2e-0000-4000-8000-000000000001""#;
        let one =
            |group: &str, buckets: &str| format!(r#"{{"results": [{{"group": {{{group}}}, "data": [{buckets}]}}]}}"#);
        let plain = bucket(IN, &format!("{handle}, {acw}"));
        vec![
            // Well-formed, in every field order.
            one(&format!(r#"{user}, "mediaType": "voice""#), &plain),
            format!(
                r#"{{"results": [{{"data": [{plain}], "group": {{{user}, "mediaType": "chat"}}}}], "cursor": "c"}}"#
            ),
            format!(r#"{{"cursor": "", "results": [{{"data": [{{"metrics": [{handle}], {IN}}}]}}]}}"#),
            one(user, &format!("{plain}, {}", bucket(IN2, &acw))),
            // Groups: absent, null, null values, repeated names, values of other types, escapes.
            format!(r#"{{"results": [{{"group": null, "data": [{plain}]}}, {{"data": [{plain}]}}]}}"#),
            one(r#""userId": null, "mediaType": "voice""#, &plain),
            one(r#""userId": "a", "userId": "b", "mediaType": "voice", "mediaType": null"#, &plain),
            one(r#""userId": 7, "mediaType": true"#, &plain),
            one(r#""userId": 1.5e3, "mediaType": -0.0"#, &plain),
            one(r#""userId": {"b": [1, null], "a": "x"}, "mediaType": [true, "v"]"#, &plain),
            one(r#""us\u0065rId": "a\"b,c\\d\/e\u00e9\ud83d\ude00", "mediaType": "line\nbreak""#, &plain),
            one(r#""userId": "", "queueId": "q""#, &plain),
            // Metrics: escaped names and qualifiers, qualifiers, unrequested, empty or absent stats.
            one(user, &bucket(IN, &format!(r#"{{"metric": "t\u0048andle", "qualifier": "a\"b", {ST}}}"#))),
            one(user, &bucket(IN, &format!(r#"{{"metric": "tHandle", "qualifier": "q1", {ST}}}, {handle}"#))),
            one(user, &bucket(IN, &format!(r#"{{"metric": " tHandle ", {ST}}}"#))),
            one(user, &bucket(IN, &format!(r#"{{"metric": "tAnswered", {ST}}}, {handle}"#))),
            one(user, &bucket(IN, r#"{"metric": "tHandle", "stats": {}}, {"metric": "tAcw", "stats": null}"#)),
            one(user, &bucket(IN, r#"{"metric": "tAcw"}, {"metric": "tHandle", "stats": {"count": -1}}"#)),
            one(user, &bucket(IN, r#"{"metric": "tHandle", "stats": {"count": 2.5, "ratio": 0.5, "p50": 1}}"#)),
            one(user, &bucket(IN, r#"{"metric": "tHandle", "stats": {"count": 1e300, "target": 1}}"#)),
            one(user, &format!(r#"{{{IN}, "metrics": null}}, {{{IN2}}}"#)),
            // Unknown fields anywhere.
            format!(r#"{{"x": {{"y": [1, 2]}}, "results": [{{"z": null, "data": [{plain}]}}], "w": "v"}}"#),
            // The contract: a bucket without interval, a metric without name (named by its bucket,
            // wherever the interval is in the object), in order.
            one(user, r#"{"metrics": []}"#),
            one(user, r#"{"interval": null, "metrics": [{"stats": {}}]}"#),
            one(user, &bucket(IN, r#"{"qualifier": "q", "stats": {"count": 1}}"#)),
            one(user, &format!(r#"{{"metrics": [{{"metric": null}}], {IN}}}"#)),
            one(user, r#"{"metrics": [{"metric": null}], "interval": "a\/b"}"#),
            // The domain: unknown metric, bad interval, buckets outside the window or off the grid.
            one(user, &bucket(IN, r#"{"metric": "tNope", "stats": {}}"#)),
            one(user, &bucket(r#""interval": "yesterday""#, &handle)),
            one(user, &bucket(r#""interval": "2025-03-10T10:00:00Z/2025-03-10T09:00:00Z""#, &handle)),
            one(user, &bucket(OUT, &handle)),
            one(user, &bucket(OFF, &handle)),
            one(user, &bucket(OUT, r#"{"metric": "tHandle", "stats": {}}"#)),
            one(user, &bucket(r#""interval": "2025-03-10T10:30:00+01:00/2025-03-10T11:00:00+01:00""#, &handle)),
            // Precedence: a later contract breach wins over an earlier domain refusal, which wins
            // over an earlier bucket outside the window.
            one(user, &format!("{}, {}", bucket(IN, r#"{"metric": "tNope"}"#), bucket(IN2, r#"{"stats": {}}"#))),
            one(user, &format!("{}, {}", bucket(OUT, &handle), bucket(IN2, r#"{"metric": "tNope"}"#))),
            one(user, &format!("{}, {}", bucket(OUT, &handle), bucket(r#""interval": "x""#, &handle))),
            format!(r#"{{"results": [{{"data": [{}]}}, {{"data": [{{"metrics": []}}]}}]}}"#, bucket(OUT, &handle)),
            // Not the contract's types, repeated fields, not JSON.
            r#"{"results": {}}"#.to_owned(),
            r#"{"results": [{"group": []}]}"#.to_owned(),
            r#"{"results": [{"group": {"userId": "a"}, "data": "x"}]}"#.to_owned(),
            r#"{"results": [{"group": {"userId": 1, "x": }}]}"#.to_owned(),
            one(user, &bucket(r#""interval": 7"#, &handle)),
            one(user, &bucket(IN, r#"{"metric": 5}"#)),
            one(user, &bucket(IN, r#"{"metric": "tHandle", "qualifier": ["q"]}"#)),
            one(user, &bucket(IN, r#"{"metric": "tHandle", "stats": {"sum": "1"}}"#)),
            one(user, &bucket(IN, r#"{"metric": "tHandle", "metric": "tAcw"}"#)),
            format!(r#"{{"results": [{{"data": [{plain}], "data": []}}]}}"#),
            r#"{"results": null, "cursor": null}"#.to_owned(),
            r#"{"cursor": 3}"#.to_owned(),
            "{}".to_owned(),
            "[]".to_owned(),
            // The users response's own field: any JSON, but once.
            format!(
                r#"{{"systemToOrganizationMappings": {{"ON_QUEUE": ["x"]}}, "results": [{{"group": {{{user}}}, "data": [{plain}]}}]}}"#
            ),
            format!(
                r#"{{"results": [{{"group": {{{user}}}, "data": [{plain}]}}], "systemToOrganizationMappings": 7}}"#
            ),
            r#"{"systemToOrganizationMappings": null, "systemToOrganizationMappings": {}}"#.to_owned(),
            r#"{"results": [{"data": [{"interval": "a/b""#.to_owned(),
            "not json".to_owned(),
        ]
    }

    #[test]
    fn rows_read_in_one_pass_or_from_borrowed_dtos_are_what_the_owned_reading_gave() {
        let utc = AggregateQuery::new(
            AggregateQuery::parse_metrics("tHandle,tAcw").unwrap(),
            vec![Dimension::USER_ID, Dimension::MEDIA_TYPE, Dimension::QUEUE_ID],
            Granularity::Pt30m,
            Tz::UTC,
            Filters::none(),
        )
        .unwrap();
        let queries = [query(Filters::none()), status_query(Filters::none()), utc];
        let mut outcomes = std::collections::BTreeSet::new();
        let (mut one_pass, mut total) = (0, 0);
        for body in tricky_bodies() {
            for users in [false, true] {
                for q in &queries {
                    for within in [None, Some(window())] {
                        let ((now, streamed), before) =
                            (read_now(&body, users, q, within), read_before(&body, users, q, within));
                        assert_eq!(now, before, "users: {users}, {body}");
                        total += 1;
                        one_pass += usize::from(streamed);
                        outcomes.insert(match now {
                            Outcome::Unparsable(_) => "unparsable",
                            Outcome::Contract(_) => "contract",
                            Outcome::Domain(DomainError::BucketOutsideWindow { .. }) => "outside",
                            Outcome::Domain(_) => "domain",
                            Outcome::Rows(rows, _) if rows.is_empty() => "no rows",
                            Outcome::Rows(..) => "rows",
                        });
                    }
                }
            }
        }
        assert_eq!(outcomes.len(), 6, "every kind of outcome is compared: {outcomes:?}");
        assert!(one_pass * 3 > total, "most plain bodies are read in one pass: {one_pass} of {total}");
        assert!(one_pass < total);
    }

    #[test]
    fn the_plain_shape_is_read_in_one_pass() {
        let q = query(Filters::none());
        let plain = r#"{"results": [{"group": {"userId": "u", "mediaType": "voice"}, "data": [
            {"interval": "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z", "metrics": [
                {"metric": "tHandle", "stats": {"count": 1, "sum": 5}}]}]}], "cursor": "next"}"#;
        let (rows, cursor) = stream_rows(plain, false, ResponseRows::within(&q, window())).unwrap();
        assert_eq!((rows.len(), cursor.as_deref()), (1, Some("next")));
        // Not the plain shape: left to the DTOs.
        for other in [
            r#"{"results": [{"data": [], "group": {}}]}"#,
            r#"{"results": [{"group": {}, "data": [{"metrics": [], "interval": "a/b"}]}]}"#,
            r#"{"results": [{"group": {}, "data": [{"interval": "x"}]}]}"#,
            r#"{"results": [], "results": []}"#,
            r#"{"results": [["g", []]]}"#,
            r#"{"systemToOrganizationMappings": {}, "systemToOrganizationMappings": {}}"#,
        ] {
            let users = other.contains("system");
            assert!(stream_rows(other, users, ResponseRows::within(&q, window())).is_none(), "{other}");
        }
    }

    /// A queue query's answer (docs/genesys-api.md, "The queue side"): an observation metric's
    /// `ratio`, `numerator`, `denominator` and `target` are kept, read in one pass or from the DTOs, and
    /// a group without the queueId key (non-ACD work) is the empty value.
    #[test]
    fn observation_statistics_are_kept() {
        let q = AggregateQuery::new(
            AggregateQuery::parse_metrics("nOffered,tAnswered,oServiceLevel").unwrap(),
            vec![Dimension::QUEUE_ID, Dimension::MEDIA_TYPE],
            Granularity::Pt30m,
            Tz::UTC,
            Filters::none(),
        )
        .unwrap();
        let body = r#"{"results": [{"group": {"queueId": "q1", "mediaType": "voice"}, "data": [
            {"interval": "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z", "metrics": [
                {"metric": "nOffered", "stats": {"count": 4}},
                {"metric": "tAnswered", "stats": {"max": 9000, "min": 1000, "count": 3, "sum": 15000}},
                {"metric": "oServiceLevel", "stats": {"ratio": 0.5, "numerator": 2, "denominator": 4, "target": 0.8}}]}]},
            {"group": {"mediaType": "voice"}, "data": [
            {"interval": "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z", "metrics": [
                {"metric": "tAnswered", "stats": {"max": 1, "min": 1, "count": 1, "sum": 1}}]}]}]}"#;
        let (rows, _) = stream_rows(body, false, ResponseRows::within(&q, window())).expect("the plain shape");
        let dto: AggregateResponseDto<'_> = serde_json::from_str(body).unwrap();
        assert_eq!(page_rows(&dto, &q, Some(window())).unwrap(), rows, "one pass and the DTOs agree");
        let service = rows.iter().find(|r| r.metric().as_str() == "oServiceLevel").expect("oServiceLevel");
        assert_eq!(
            *service.stats(),
            Stats {
                ratio: Some(0.5),
                numerator: Some(2.0),
                denominator: Some(4.0),
                target: Some(0.8),
                ..Stats::default()
            }
        );
        let groups: Vec<&[String]> = rows.iter().map(|r| r.group()).collect();
        assert_eq!(groups.last().unwrap(), &["".to_owned(), "voice".to_owned()], "no queueId: the empty value");
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let body = r#"{"results": [{"group": {"userId": "plain", "mediaType": "a\"b"}, "data": [
            {"interval": "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z", "metrics": [
                {"metric": "tHandle", "qualifier": "x\u0041", "stats": {"count": 1}}]}]}]}"#;
        let dto: AggregateResponseDto<'_> = serde_json::from_str(body).unwrap();
        let container = &dto.results()[0];
        let group = container.group.as_ref().unwrap();
        assert!(matches!(group.0[0].0 .0, Cow::Borrowed("userId")));
        assert!(matches!(group.0[0].1, Some(Cow::Borrowed("plain"))));
        assert!(matches!(group.0[1].1, Some(Cow::Owned(ref s)) if s == "a\"b"), "an escaped string is copied");
        let bucket = &container.data.as_ref().unwrap()[0];
        assert!(matches!(bucket.interval.as_ref().unwrap().0, Cow::Borrowed(_)));
        let metric = &bucket.metrics.as_ref().unwrap()[0];
        assert!(matches!(metric.metric.as_ref().unwrap().0, Cow::Borrowed("tHandle")));
        assert_eq!(metric.qualifier.as_deref(), Some("xA"));
        let rows = page_rows(&dto, &query(Filters::none()), Some(window())).unwrap();
        assert_eq!(rows[0].group(), ["plain", "a\"b"]);
        assert_eq!(rows[0].metric_key(), "tHandle:xA");
    }

    #[test]
    fn a_group_is_shared_by_its_rows_and_qualifiers_by_theirs() {
        let body = json!({"results": [
            {"group": {"userId": "u1"}, "data": [
                {"interval": "2025-03-10T09:00:00Z/2025-03-10T09:30:00Z", "metrics": [
                    {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {"sum": 1}},
                    {"metric": "tAgentRoutingStatus", "qualifier": "INTERACTING", "stats": {"sum": 2}}]},
                {"interval": "2025-03-10T09:30:00Z/2025-03-10T10:00:00Z", "metrics": [
                    {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {"sum": 3}}]}]},
            {"group": {"userId": "u2"}, "data": [
                {"interval": "2025-03-10T09:00:00Z/2025-03-10T09:30:00Z", "metrics": [
                    {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {"sum": 4}}]}]}
        ]})
        .to_string();
        let dto: UserAggregateResponseDto<'_> = serde_json::from_str(&body).unwrap();
        let rows = page_rows(&dto, &status_query(Filters::none()), Some(window())).unwrap();
        assert_eq!(rows.len(), 4);
        let group = |i: usize| rows[i].shared_group();
        assert!(Arc::ptr_eq(group(0), group(1)) && Arc::ptr_eq(group(0), group(2)), "one allocation per group");
        assert!(!Arc::ptr_eq(group(0), group(3)));
        assert_eq!((rows[0].group(), rows[3].group()), (&["u1".to_owned()][..], &["u2".to_owned()][..]));
        let qualifier = |i: usize| rows[i].qualifier().unwrap().as_ptr();
        assert_eq!(qualifier(0), qualifier(2), "IDLE once for the response");
        assert_eq!(qualifier(0), qualifier(3));
        assert_ne!(qualifier(0), qualifier(1));
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
