//! AggregateQuery and Filters: valid by construction, clear rejections, a stable fingerprint.

use std::collections::BTreeSet;

use intervals_domain::{
    is_uuid, AggregateQuery, Dimension, DomainError, Filters, Granularity, MetricFamily, MetricName, QuerySet, Tz,
    MEDIA_TYPES, METRICS, QUEUE_ONLY_METRICS, STORABLE_DIMENSIONS, USER_STATUS_METRICS, UTILIZATION_METRICS,
};
use proptest::prelude::*;

use crate::tz;

const QUEUE_A: &str = "2f6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b11";
const QUEUE_B: &str = "0b6e9b3a-8c3f-4a2e-9d7a-5a1f0c9e7d22";

fn metrics(list: &str) -> Vec<MetricName> {
    AggregateQuery::parse_metrics(list).unwrap_or_else(|e| panic!("{list}: {e}"))
}

fn group(list: &str) -> Vec<Dimension> {
    AggregateQuery::parse_group_by(list).unwrap_or_else(|e| panic!("{list}: {e}"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn filters(media: &[&str], queues: &[&str]) -> Filters {
    Filters::new(&strings(media), &strings(queues)).unwrap_or_else(|e| panic!("{media:?} {queues:?}: {e}"))
}

fn query(m: &str, g: &str, granularity: Granularity, zone: Tz, f: Filters) -> AggregateQuery {
    AggregateQuery::new(metrics(m), group(g), granularity, zone, f).unwrap_or_else(|e| panic!("{m} / {g}: {e}"))
}

fn base() -> AggregateQuery {
    query("tHandle,tAcw,tHeldComplete", "userId,mediaType", Granularity::Pt30m, Tz::UTC, Filters::none())
}

#[test]
fn comma_lists_parse_in_order() {
    let names = |v: Vec<MetricName>| v.iter().map(|m| m.as_str()).collect::<Vec<_>>();
    assert_eq!(names(metrics("tHandle,tAcw,tHeldComplete")), ["tHandle", "tAcw", "tHeldComplete"]);
    assert_eq!(names(metrics(" tHandle , tAcw ,,tHeldComplete, ")), ["tHandle", "tAcw", "tHeldComplete"]);
    assert_eq!(names(metrics("")), Vec::<&str>::new());
    let dims = group("userId, mediaType,queueId");
    assert_eq!(dims, [Dimension::USER_ID, Dimension::MEDIA_TYPE, Dimension::QUEUE_ID]);
    let err = AggregateQuery::parse_metrics("tHandle,tHold").unwrap_err();
    assert!(matches!(&err, DomainError::UnknownMetric { input, .. } if input == "tHold"), "{err:?}");
    let err = AggregateQuery::parse_group_by("agentId,mediaType").unwrap_err();
    assert!(err.to_string().contains("userId"), "{err}");
}

#[test]
fn valid_queries() {
    // (metrics, group by)
    let table: &[(&str, &str)] = &[
        ("tHandle", "userId"),
        ("tHandle,tAcw,tHeld,tHeldComplete,tTalk,tTalkComplete,nConnected,tAnswered", "userId,mediaType"),
        ("nOffered", "queueId"),
        ("tHandle", "mediaType"),
        ("tHandle,tAcw", "userId,mediaType,queueId"),
        ("tHandle", "queueId,userId"),
    ];
    for (m, g) in table {
        let zone = tz("Europe/Dublin");
        let f = filters(&["voice"], &[]);
        let q = query(m, g, Granularity::Pt15m, zone, f.clone());
        assert_eq!(q.metrics(), metrics(m).as_slice(), "request order kept");
        assert_eq!(q.group_by(), group(g).as_slice(), "groupBy order kept");
        assert_eq!(q.granularity(), Granularity::Pt15m);
        assert_eq!(q.time_zone(), zone);
        assert_eq!(q.filters(), &f);
    }
}

#[test]
fn invalid_queries_are_rejected_with_clear_messages() {
    // (metrics, group by, expected error, the message must contain)
    let table: &[(&str, &str, DomainError, &[&str])] = &[
        ("", "userId", DomainError::NoMetrics, &["no metrics", "tHandle"]),
        (
            "tHandle,tAcw,tHandle",
            "userId",
            DomainError::Duplicate { what: "metric", name: "tHandle".into() },
            &["metric tHandle is listed twice"],
        ),
        (
            "tHandle",
            "",
            DomainError::InvalidGroupBy {
                input: String::new(),
                hint: "group by at least one of userId, mediaType, queueId".into(),
            },
            &["userId, mediaType, queueId"],
        ),
        (
            "tHandle",
            "userId,userId",
            DomainError::Duplicate { what: "group-by dimension", name: "userId".into() },
            &["userId is listed twice"],
        ),
    ];
    for (m, g, want, must_say) in table {
        let err = AggregateQuery::new(metrics(m), group(g), Granularity::Pt30m, Tz::UTC, Filters::none()).expect_err(m);
        assert_eq!(&err, want, "{m} / {g}");
        let message = err.to_string();
        for needle in *must_say {
            assert!(message.contains(needle), "{m} / {g}: {needle:?} in {message}");
        }
    }
}

/// Queue figures have no agent: asked per agent (grouped by userId, or filtered by user id) they are
/// refused before anything is sent, with advice; grouped by queue or media type they are fine, and
/// so are the per-agent metrics a queue query also reads.
#[test]
fn queue_figures_are_not_asked_per_agent() {
    assert_eq!(QUEUE_ONLY_METRICS, ["nOffered", "tAbandon", "tShortAbandon", "tWait", "oServiceLevel", "nOverSla"]);
    let users = || Filters::none().with_user_ids(&strings(&[USER_A])).unwrap();
    /// The metric named and how it was asked, when refused.
    type Refused = Option<(&'static str, &'static str)>;
    // (metrics, group by, filters, refused)
    let table: Vec<(&str, &str, Filters, Refused)> = vec![
        ("nOffered", "userId", Filters::none(), Some(("nOffered", "grouped by userId"))),
        ("tHandle,tAbandon", "queueId,userId", Filters::none(), Some(("tAbandon", "grouped by userId"))),
        ("tShortAbandon", "userId,mediaType,queueId", Filters::none(), Some(("tShortAbandon", "grouped by userId"))),
        ("tWait,nOffered", "mediaType,userId", Filters::none(), Some(("tWait", "grouped by userId"))),
        ("oServiceLevel", "queueId,mediaType", users(), Some(("oServiceLevel", "filtered by user id"))),
        ("tAnswered,nOverSla", "queueId", users(), Some(("nOverSla", "filtered by user id"))),
        (
            "nOffered,tAnswered,tAbandon,tShortAbandon,tWait,nOverSla,oServiceLevel",
            "queueId,mediaType",
            Filters::none(),
            None,
        ),
        ("nOffered,tHandle,tTalkComplete,tHeldComplete,tAcw,nTransferred", "queueId", Filters::none(), None),
        ("oServiceLevel", "mediaType", filters(&["voice"], &[QUEUE_A]), None),
        // The per-agent side of the queue: answered, handled, flow-outs, the target.
        ("tAnswered,tHandle,tFlowOut,tAcd,oServiceTarget", "userId,mediaType", users(), None),
    ];
    for (m, g, f, refused) in table {
        let got = AggregateQuery::new(metrics(m), group(g), Granularity::Pt30m, Tz::UTC, f);
        match refused {
            None => assert!(got.is_ok(), "{m} / {g}: {got:?}"),
            Some((metric, how)) => {
                let err = got.expect_err(m);
                assert_eq!(err, DomainError::QueueMetricPerAgent { metric: metric.to_owned(), how }, "{m} / {g}");
                let message = err.to_string();
                for needle in
                    [metric, how, "queue figure with no agent", "--group-by queueId,mediaType", "--preset queue"]
                {
                    assert!(message.contains(needle), "{m} / {g}: {needle:?} in {message}");
                }
            }
        }
    }
    // A query set refuses them the same way (its conversation query is built by the same constructor).
    let err = set("tHandle,nOffered,tSystemPresence", "userId,mediaType", Filters::none()).expect_err("per agent");
    assert!(matches!(err, DomainError::QueueMetricPerAgent { .. }), "{err:?}");
    for m in QUEUE_ONLY_METRICS {
        let name = MetricName::parse(m).unwrap();
        assert!(name.is_queue_only() && name.family() == MetricFamily::Conversation, "{m}");
    }
    let observation: Vec<&str> =
        METRICS.iter().copied().filter(|m| MetricName::parse(m).unwrap().is_observation()).collect();
    assert!(
        observation.iter().all(|m| m.starts_with('o')) && observation.contains(&"oServiceLevel"),
        "{observation:?}"
    );
    assert!(!MetricName::parse("tHandle").unwrap().is_queue_only());
    assert!(!MetricName::parse("tAnswered").unwrap().is_queue_only(), "agents answer: tAnswered has a userId");
}

#[test]
fn only_user_media_and_queue_can_be_grouped_by() {
    for g in ["direction", "purpose", "conversationId", "userId,divisionId", "wrapUpCode,userId", "teamId"] {
        let err = AggregateQuery::new(metrics("tHandle"), group(g), Granularity::Pt30m, Tz::UTC, Filters::none())
            .expect_err(g);
        let DomainError::InvalidGroupBy { input, .. } = &err else { panic!("{g}: {err:?}") };
        assert!(g.contains(input.as_str()) && input != "userId", "{g}: names the offender, got {input}");
        let message = err.to_string();
        assert!(message.contains("userId, mediaType and queueId"), "{message}");
    }
    assert_eq!(STORABLE_DIMENSIONS, [Dimension::USER_ID, Dimension::MEDIA_TYPE, Dimension::QUEUE_ID]);
}

#[test]
fn filters_validate_media_types_and_queue_ids() {
    // (media types, queue ids, the message must contain)
    let bad: &[(&[&str], &[&str], &str)] = &[
        (&["phone"], &[], "voice, chat, email"),
        (&["Voice"], &[], "voice"),
        (&["voice", "sms"], &[], "media types are"),
        (&[], &["not-a-uuid"], "UUID"),
        (&[], &["2f6c1b1e3c394b5e9b610a8a7d6c2b11"], "UUID"),
        (&[], &["2f6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b1"], "UUID"),
        (&[], &["2f6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b111"], "UUID"),
        (&[], &["zf6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b11"], "UUID"),
        (&[], &[QUEUE_A, "Support"], "UUID"),
    ];
    for (media, queues, must_say) in bad {
        let err = Filters::new(&strings(media), &strings(queues)).expect_err("invalid filter");
        let DomainError::InvalidFilter { input, .. } = &err else { panic!("{err:?}") };
        assert!(media.contains(&input.as_str()) || queues.contains(&input.as_str()), "names the value: {input}");
        let message = err.to_string();
        assert!(message.contains(must_say), "{must_say:?} in {message}");
    }
    for m in MEDIA_TYPES {
        assert_eq!(filters(&[m], &[]).media_types(), [m.to_string()]);
    }
}

#[test]
fn filters_are_normalised() {
    let f = filters(&["voice", " chat ", "", "voice"], &[&QUEUE_A.to_ascii_uppercase(), QUEUE_B, QUEUE_A, " "]);
    assert_eq!(f.media_types(), ["chat", "voice"], "trimmed, deduplicated, sorted, blanks dropped");
    assert_eq!(f.queue_ids(), [QUEUE_B, QUEUE_A], "lower-cased, deduplicated, sorted");
    assert_eq!(f.values_for(Dimension::MEDIA_TYPE), f.media_types());
    assert_eq!(f.values_for(Dimension::QUEUE_ID), f.queue_ids());
    assert!(f.values_for(Dimension::USER_ID).is_empty());
    // (dimension, value, accepted)
    let table: &[(Dimension, &str, bool)] = &[
        (Dimension::MEDIA_TYPE, "voice", true),
        (Dimension::MEDIA_TYPE, "chat", true),
        (Dimension::MEDIA_TYPE, "email", false),
        (Dimension::QUEUE_ID, QUEUE_A, true),
        (Dimension::QUEUE_ID, "11111111-1111-1111-1111-111111111111", false),
        (Dimension::USER_ID, "anyone", true),
    ];
    for (d, value, want) in table {
        assert_eq!(f.accepts(*d, value), *want, "{d} = {value}");
        assert!(Filters::none().accepts(*d, value), "no filter accepts {d} = {value}");
    }
    assert_eq!(Filters::none(), Filters::default());
    assert_eq!(filters(&[], &[]), Filters::none());
}

#[test]
fn uuids() {
    let table: &[(&str, bool)] = &[
        (QUEUE_A, true),
        ("2F6C1B1E-3C39-4B5E-9B61-0A8A7D6C2B11", true),
        ("00000000-0000-0000-0000-000000000000", true),
        ("", false),
        ("2f6c1b1e3c394b5e9b610a8a7d6c2b11", false),
        ("2f6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b1", false),
        ("2f6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b11-", false),
        ("2f6c1b1e-3c394-b5e-9b61-0a8a7d6c2b11", false),
        ("gf6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b11", false),
        ("{2f6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b11}", false),
    ];
    for (s, want) in table {
        assert_eq!(is_uuid(s), *want, "{s:?}");
    }
}

#[test]
fn fingerprint_is_stable_and_ignores_metric_order() {
    let fp = base().fingerprint();
    assert_eq!(fp.len(), 16);
    assert!(fp.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{fp}");
    assert_eq!(base().fingerprint(), fp, "deterministic");
    // Pinned: checkpoints written by earlier runs are keyed on it, so it must not drift.
    assert_eq!(fp, "f30ba2f154f996ed");
    let reordered =
        query("tHeldComplete,tHandle,tAcw", "userId,mediaType", Granularity::Pt30m, Tz::UTC, Filters::none());
    assert_eq!(reordered.fingerprint(), fp);
    // Filter order and spelling do not matter either.
    let f1 = query("tHandle", "userId", Granularity::Pt30m, Tz::UTC, filters(&["voice", "chat"], &[QUEUE_A, QUEUE_B]));
    let f2 = query(
        "tHandle",
        "userId",
        Granularity::Pt30m,
        Tz::UTC,
        filters(&["chat", "voice", "chat"], &[QUEUE_B, &QUEUE_A.to_ascii_uppercase()]),
    );
    assert_eq!(f1.fingerprint(), f2.fingerprint());
}

#[test]
fn fingerprint_differs_for_what_changes_the_rows() {
    let dublin = tz("Europe/Dublin");
    let g = Granularity::Pt30m;
    let none = Filters::none;
    let variants: Vec<(&str, AggregateQuery)> = vec![
        ("base", base()),
        ("granularity", query("tHandle,tAcw,tHeldComplete", "userId,mediaType", Granularity::Pt15m, Tz::UTC, none())),
        ("P1D", query("tHandle,tAcw,tHeldComplete", "userId,mediaType", Granularity::P1d, Tz::UTC, none())),
        ("zone", query("tHandle,tAcw,tHeldComplete", "userId,mediaType", g, dublin, none())),
        ("group-by", query("tHandle,tAcw,tHeldComplete", "userId", g, Tz::UTC, none())),
        ("group-by+queue", query("tHandle,tAcw,tHeldComplete", "userId,mediaType,queueId", g, Tz::UTC, none())),
        ("metrics", query("tHandle,tAcw", "userId,mediaType", g, Tz::UTC, none())),
        ("metrics+", query("tHandle,tAcw,tHeldComplete,tTalk", "userId,mediaType", g, Tz::UTC, none())),
        ("media", query("tHandle,tAcw,tHeldComplete", "userId,mediaType", g, Tz::UTC, filters(&["voice"], &[]))),
        ("media2", query("tHandle,tAcw,tHeldComplete", "userId,mediaType", g, Tz::UTC, filters(&["chat"], &[]))),
        (
            "media3",
            query("tHandle,tAcw,tHeldComplete", "userId,mediaType", g, Tz::UTC, filters(&["voice", "chat"], &[])),
        ),
        ("queue", query("tHandle,tAcw,tHeldComplete", "userId,mediaType", g, Tz::UTC, filters(&[], &[QUEUE_A]))),
        ("queue2", query("tHandle,tAcw,tHeldComplete", "userId,mediaType", g, Tz::UTC, filters(&[], &[QUEUE_B]))),
    ];
    let mut seen = BTreeSet::new();
    for (name, q) in &variants {
        assert!(seen.insert(q.fingerprint()), "{name}: fingerprint collides with another variant");
    }
}

proptest! {
    #![proptest_config(crate::proptest_config(256))]

    /// Any permutation of the metrics gives the same fingerprint.
    #[test]
    fn fingerprint_ignores_any_metric_order(
        names in prop::sample::subsequence(intervals_domain::METRICS.to_vec(), 1..10).prop_shuffle(),
        seed in any::<u64>(),
    ) {
        let list: Vec<MetricName> = names.iter().map(|n| MetricName::parse(n).expect("listed")).collect();
        let mut shuffled = list.clone();
        // A deterministic rotation and reversal picked by the seed.
        let k = usize::try_from(seed % list.len() as u64).expect("small");
        shuffled.rotate_left(k);
        if seed & 1 == 1 {
            shuffled.reverse();
        }
        // Grouped by queue: any metric may be (queue figures have no agent).
        let a = AggregateQuery::new(list, vec![Dimension::QUEUE_ID], Granularity::Pt30m, Tz::UTC, Filters::none());
        let b = AggregateQuery::new(shuffled, vec![Dimension::QUEUE_ID], Granularity::Pt30m, Tz::UTC, Filters::none());
        prop_assert_eq!(a.expect("valid").fingerprint(), b.expect("valid").fingerprint());
    }
}

const USER_A: &str = "6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f";
const USER_B: &str = "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9";

fn set(m: &str, g: &str, f: Filters) -> Result<QuerySet, DomainError> {
    QuerySet::new(metrics(m), group(g), Granularity::Pt30m, Tz::UTC, f)
}

#[test]
fn metrics_know_their_family() {
    for m in METRICS {
        assert_eq!(MetricName::parse(m).unwrap().family(), MetricFamily::Conversation, "{m}");
    }
    for m in USER_STATUS_METRICS {
        assert_eq!(MetricName::parse(m).unwrap().family(), MetricFamily::UserStatus, "{m}");
    }
    assert_eq!(USER_STATUS_METRICS, ["tAgentRoutingStatus", "tOrganizationPresence", "tSystemPresence"]);
    assert!(UTILIZATION_METRICS.iter().all(|m| USER_STATUS_METRICS.contains(m)));
}

#[test]
fn a_query_set_makes_one_query_per_family() {
    let f = filters(&["voice"], &[QUEUE_A]).with_user_ids(&strings(&[USER_B, USER_A])).unwrap();
    let qs = set("tHandle,tAgentRoutingStatus,tAcw,tSystemPresence", "userId,mediaType", f.clone()).unwrap();
    let [conversation, status] = qs.queries() else { panic!("two queries: {qs:?}") };
    assert_eq!(conversation.family(), MetricFamily::Conversation);
    assert_eq!(conversation.metrics(), metrics("tHandle,tAcw"), "request order kept");
    assert_eq!(conversation.group_by(), group("userId,mediaType"));
    assert_eq!(conversation.filters(), &f);
    assert_eq!(status.family(), MetricFamily::UserStatus);
    assert_eq!(status.metrics(), metrics("tAgentRoutingStatus,tSystemPresence"));
    assert_eq!(status.group_by(), [Dimension::USER_ID], "status time is per agent");
    assert_eq!(status.filters().user_ids(), [USER_B, USER_A], "the user filter applies to both");
    assert!(status.filters().media_types().is_empty() && status.filters().queue_ids().is_empty(), "no media or queue");
    assert_ne!(conversation.fingerprint(), status.fingerprint(), "each is checkpointed on its own");
    assert_eq!(qs.layout(), conversation, "the conversation query names every column");
    assert_eq!(qs.of_family(MetricFamily::UserStatus), Some(status));
    assert_eq!(qs.metrics().count(), 4);

    let only_status = set("tSystemPresence", "userId,mediaType", Filters::none()).unwrap();
    assert_eq!(only_status.queries().len(), 1);
    assert_eq!(only_status.layout().group_by(), [Dimension::USER_ID]);
    assert_eq!(only_status.of_family(MetricFamily::Conversation), None);
    let only_conversation = set("tHandle", "queueId", Filters::none()).unwrap();
    assert_eq!(only_conversation.queries().len(), 1);
}

#[test]
fn status_metrics_need_user_id_in_the_group_by() {
    for g in ["queueId,mediaType", "mediaType", "queueId"] {
        let err = set("tHandle,tAgentRoutingStatus", g, Filters::none()).expect_err(g);
        let message = err.to_string();
        assert!(matches!(err, DomainError::InvalidGroupBy { .. }), "{g}: {err:?}");
        assert!(message.contains("groups by userId alone") && message.contains("must include userId"), "{message}");
    }
    // Built directly, a status query is grouped by userId alone and filtered by user only.
    let direct =
        |g: &str, f: Filters| AggregateQuery::new(metrics("tSystemPresence"), group(g), Granularity::Pt30m, Tz::UTC, f);
    assert!(direct("userId", Filters::none()).is_ok());
    assert!(matches!(direct("userId,mediaType", Filters::none()), Err(DomainError::InvalidGroupBy { .. })));
    let err = direct("userId", filters(&["voice"], &[])).unwrap_err();
    assert!(err.to_string().contains("filter them by user id only"), "{err}");
    let err = AggregateQuery::new(
        metrics("tHandle,tSystemPresence"),
        group("userId"),
        Granularity::Pt30m,
        Tz::UTC,
        Filters::none(),
    )
    .unwrap_err();
    assert_eq!(err, DomainError::MixedFamilies { first: "tHandle".into(), other: "tSystemPresence".into() });
    assert!(matches!(set("tHandle,tHandle", "userId", Filters::none()), Err(DomainError::Duplicate { .. })));
    assert!(matches!(set("tSystemPresence", "userId,userId", Filters::none()), Err(DomainError::Duplicate { .. })));
}

#[test]
fn user_id_filters_are_uuids_and_change_the_fingerprint_only_when_given() {
    let with = |users: &[&str]| Filters::none().with_user_ids(&strings(users));
    let f = with(&[&USER_A.to_ascii_uppercase(), USER_B, " ", USER_A]).unwrap();
    assert_eq!(f.user_ids(), [USER_B, USER_A], "lower-cased, deduplicated, sorted");
    assert_eq!(f.values_for(Dimension::USER_ID), f.user_ids());
    assert!(f.accepts(Dimension::USER_ID, USER_A) && !f.accepts(Dimension::USER_ID, "someone-else"));
    let err = with(&["alice"]).unwrap_err();
    assert!(err.to_string().contains("user ids are UUIDs"), "{err}");
    assert_eq!(with(&[]).unwrap(), Filters::none());
    // Unfiltered fingerprints are those of earlier versions (checkpoints stay valid).
    assert_eq!(
        base().fingerprint(),
        query("tHandle,tAcw,tHeldComplete", "userId,mediaType", Granularity::Pt30m, Tz::UTC, with(&[]).unwrap())
            .fingerprint()
    );
    let filtered = query("tHandle,tAcw,tHeldComplete", "userId,mediaType", Granularity::Pt30m, Tz::UTC, f);
    assert_ne!(filtered.fingerprint(), base().fingerprint());
}

#[test]
fn status_names_people_guess_get_advice() {
    // (what people write, what the advice says)
    let table: &[(&str, &str)] = &[
        ("tOnQueue", "tSystemPresence (qualifier ON_QUEUE) or tAgentRoutingStatus"),
        ("tIdle", "tAgentRoutingStatus (qualifier IDLE)"),
        ("tAvailable", "tSystemPresence (qualifier AVAILABLE)"),
        ("tOccupancy", "occupancy is derived"),
        ("tRoutingStatus", "use tAgentRoutingStatus"),
        ("tagentroutingstatus", "names are case-sensitive: use tAgentRoutingStatus"),
        ("tSystemPresense", "did you mean tSystemPresence"),
    ];
    for (input, advice) in table {
        let message = MetricName::parse(input).unwrap_err().to_string();
        assert!(message.contains(advice), "{input}: {message}");
    }
}

#[test]
fn a_query_describes_itself_for_people() {
    assert_eq!(base().describe(), "conversation: tHandle, tAcw, tHeldComplete by userId, mediaType; PT30M in UTC");
    let f = filters(&["voice"], &[QUEUE_A, QUEUE_B]).with_user_ids(&strings(&[USER_A])).unwrap();
    let qs = set("tAgentRoutingStatus,tHandle", "userId,queueId", f).unwrap();
    assert_eq!(
        qs.queries()[0].describe(),
        format!("conversation: tHandle by userId, queueId; PT30M in UTC; media voice; queues {QUEUE_B}, {QUEUE_A}; users {USER_A}")
    );
    assert_eq!(
        qs.queries()[1].describe(),
        format!("user status: tAgentRoutingStatus by userId; PT30M in UTC; users {USER_A}")
    );
}

#[test]
fn a_window_takes_one_request_per_query_and_batch_of_user_ids() {
    use intervals_domain::{AggregateQuery, Filters, Granularity, QuerySet, Tz};
    let set = |metrics: &str, users: usize| {
        let ids: Vec<String> = (0..users).map(|i| format!("00000000-0000-4000-8000-{i:012}")).collect();
        QuerySet::new(
            AggregateQuery::parse_metrics(metrics).unwrap(),
            AggregateQuery::parse_group_by("userId").unwrap(),
            Granularity::Pt30m,
            Tz::UTC,
            Filters::none().with_user_ids(&ids).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(set("tHandle", 0).requests_per_window(100), 1);
    assert_eq!(set("tHandle,tAgentRoutingStatus", 0).requests_per_window(100), 2);
    assert_eq!(set("tHandle", 100).requests_per_window(100), 1);
    assert_eq!(set("tHandle,tAgentRoutingStatus", 101).requests_per_window(100), 4);
}
