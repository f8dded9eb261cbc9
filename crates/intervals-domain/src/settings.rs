//! One settings path for *what to read*: the defaults and the presets exist once, here, and both
//! binaries build their queries through [`QuerySpec::build`] from what their user gave (the CLI
//! from flags and its config file, the daemon from an org's table), so a default, a preset or a rule
//! cannot differ between them. Each binary names a failed field in its own words
//! ([`SpecField`]: `--group-by` for the CLI, `group_by` for the daemon).

use std::fmt;

use crate::{parse_time_zone, AggregateQuery, DomainError, Filters, Granularity, QuerySet};

/// The bucket size when none is given.
pub const DEFAULT_GRANULARITY: Granularity = Granularity::Pt30m;
/// The time zone when none is given.
pub const DEFAULT_TIME_ZONE: &str = "UTC";
/// The group-by when neither it nor a preset is given: the agent's grain.
pub const DEFAULT_GROUP_BY: &[&str] = &["userId", "mediaType"];

/// A named bundle of group-by and metrics (`extract --preset queue`, the daemon's
/// `preset = "queue"`). An explicit metric list or group-by still wins over the preset's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Per agent and media type: handle, after-call work, hold and talk time, answered count.
    Agent,
    /// [`Preset::Agent`] and the agents' time in each routing status and system presence.
    Utilization,
    /// Per queue and media type: offered, answered, abandoned, waits, the service level, and the
    /// handling figures of the interactions the queue delivered.
    Queue,
}

impl Preset {
    /// Every preset, in the order `--help` lists them.
    pub const ALL: [Preset; 3] = [Preset::Agent, Preset::Utilization, Preset::Queue];

    /// `agent`, `utilization` or `queue` (case-insensitive).
    pub fn parse(input: &str) -> Result<Preset, DomainError> {
        let wanted = input.trim();
        Preset::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(wanted)).ok_or_else(|| {
            DomainError::UnknownPreset {
                input: input.to_owned(),
                known: Preset::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
            }
        })
    }

    /// The name users type.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Agent => "agent",
            Preset::Utilization => "utilization",
            Preset::Queue => "queue",
        }
    }

    /// The preset's group-by, in order.
    pub fn group_by(self) -> &'static [&'static str] {
        match self {
            Preset::Agent | Preset::Utilization => DEFAULT_GROUP_BY,
            Preset::Queue => &["queueId", "mediaType"],
        }
    }

    /// The preset's metrics.
    pub fn metrics(self) -> Vec<&'static str> {
        match self {
            Preset::Agent => crate::DEFAULT_METRICS.to_vec(),
            Preset::Utilization => crate::DEFAULT_METRICS.iter().chain(crate::UTILIZATION_METRICS).copied().collect(),
            Preset::Queue => QUEUE_METRICS.to_vec(),
        }
    }

    /// One line for `--help` and the dry run: `queue: by queueId,mediaType: nOffered,tAnswered,...`.
    pub fn describe(self) -> String {
        format!("{}: by {}: {}", self.name(), self.group_by().join(","), self.metrics().join(","))
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The queue preset's metrics: what a WFM planner or supervisor asks of a queue per interval
/// (offered, answered and their wait, abandoned and short abandons, waits, answered over the
/// service-level target and the service level itself, flow-outs), and the handling of what was
/// answered (handle, talk, hold, after-call work, transfers).
pub const QUEUE_METRICS: &[&str] = &[
    "nOffered",
    "tAnswered",
    "tAbandon",
    "tShortAbandon",
    "tWait",
    "nOverSla",
    "oServiceLevel",
    "tFlowOut",
    "tHandle",
    "tTalkComplete",
    "tHeldComplete",
    "tAcw",
    "nTransferred",
];

/// What a user gave for the queries of one extraction or one daemon org: each `None` takes the
/// preset's value when a preset is given, else the default. Lists are comma-separated.
#[derive(Debug, Clone, Default)]
pub struct QuerySpec<'a> {
    pub preset: Option<&'a str>,
    pub metrics: Option<&'a str>,
    pub group_by: Option<&'a str>,
    pub granularity: Option<&'a str>,
    pub time_zone: Option<&'a str>,
    /// The preset used when none is given (`--demo` reads utilization).
    pub default_preset: Option<Preset>,
}

/// The field of a [`QuerySpec`] a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecField {
    Preset,
    Metrics,
    GroupBy,
    Granularity,
    TimeZone,
    /// The metrics and the group-by (or the filters) together.
    Query,
}

/// A [`QuerySpec`] that does not make queries: which field, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct SpecError {
    pub field: SpecField,
    #[source]
    pub error: DomainError,
}

/// `result`'s value, or `None` with its error noted as a problem of `field`.
fn check<T>(problems: &mut Vec<SpecError>, field: SpecField, result: Result<T, DomainError>) -> Option<T> {
    result.map_err(|error| problems.push(SpecError { field, error })).ok()
}

/// A [`QuerySpec`] made into queries, and the preset that filled what was not given.
#[derive(Debug, Clone)]
pub struct BuiltQueries {
    pub queries: QuerySet,
    pub preset: Option<Preset>,
}

impl QuerySpec<'_> {
    /// The queries: one per metric family ([`QuerySet`]), each with `filters`. Every field is
    /// checked, so that all problems are reported at once (never empty when `Err`, in field order).
    pub fn build(&self, filters: Filters) -> Result<BuiltQueries, Vec<SpecError>> {
        let mut problems = Vec::new();
        let preset = check(&mut problems, SpecField::Preset, self.preset.map(Preset::parse).transpose())
            .flatten()
            .or(self.default_preset);
        let metrics = match self.metrics {
            Some(m) => m.to_owned(),
            None => preset.map_or_else(|| crate::DEFAULT_METRICS.join(","), |p| p.metrics().join(",")),
        };
        let metrics = check(&mut problems, SpecField::Metrics, AggregateQuery::parse_metrics(&metrics));
        let group_by = match self.group_by {
            Some(g) => g.to_owned(),
            None => preset.map_or(DEFAULT_GROUP_BY, Preset::group_by).join(","),
        };
        let group_by = check(&mut problems, SpecField::GroupBy, AggregateQuery::parse_group_by(&group_by));
        let granularity =
            check(&mut problems, SpecField::Granularity, self.granularity.map(Granularity::parse).transpose());
        let time_zone =
            check(&mut problems, SpecField::TimeZone, parse_time_zone(self.time_zone.unwrap_or(DEFAULT_TIME_ZONE)));
        let (Some(metrics), Some(group_by), Some(granularity), Some(time_zone)) =
            (metrics, group_by, granularity, time_zone)
        else {
            return Err(problems);
        };
        let queries = check(
            &mut problems,
            SpecField::Query,
            QuerySet::new(metrics, group_by, granularity.unwrap_or(DEFAULT_GRANULARITY), time_zone, filters),
        );
        match queries {
            Some(queries) if problems.is_empty() => Ok(BuiltQueries { queries, preset }),
            _ => Err(problems),
        }
    }
}
