//! One settings path: what a `QuerySpec` makes of what a user gave, the defaults and the presets
//! (both binaries build through it), and the field a problem is about.

use intervals_domain::{Filters, Preset, QuerySpec, SpecField, DEFAULT_METRICS, QUEUE_METRICS, UTILIZATION_METRICS};

/// (metrics of each query, group-by of the layout query, granularity, zone) of `spec`.
fn built(spec: QuerySpec<'_>) -> (Vec<Vec<String>>, String, String, String, Option<Preset>) {
    let built = spec.build(Filters::none()).unwrap();
    let q = &built.queries;
    let metrics = q.queries().iter().map(|q| q.metrics().iter().map(|m| m.as_str().to_owned()).collect()).collect();
    let group = q.layout().group_by().iter().map(|d| d.as_str()).collect::<Vec<_>>().join(",");
    (metrics, group, q.granularity().as_iso().to_owned(), q.time_zone().name().to_owned(), built.preset)
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn nothing_given_is_the_agent_grain_with_the_default_metrics() {
    let (metrics, group, granularity, zone, preset) = built(QuerySpec::default());
    assert_eq!(metrics, vec![strings(DEFAULT_METRICS)]);
    assert_eq!(
        (group.as_str(), granularity.as_str(), zone.as_str(), preset),
        ("userId,mediaType", "PT30M", "UTC", None)
    );
}

#[test]
fn presets_fill_what_is_not_given_and_explicit_values_win() {
    // (preset, metrics given, group-by given) -> (metrics per query, group-by)
    type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Vec<Vec<String>>, &'a str);
    let cases: &[Case<'_>] = &[
        ("agent", None, None, vec![strings(DEFAULT_METRICS)], "userId,mediaType"),
        ("Utilization", None, None, vec![strings(DEFAULT_METRICS), strings(UTILIZATION_METRICS)], "userId,mediaType"),
        ("queue", None, None, vec![strings(QUEUE_METRICS)], "queueId,mediaType"),
        ("queue", Some("nOffered"), None, vec![strings(&["nOffered"])], "queueId,mediaType"),
        ("queue", None, Some("queueId"), vec![strings(QUEUE_METRICS)], "queueId"),
        ("agent", Some("tHandle"), Some("userId"), vec![strings(&["tHandle"])], "userId"),
    ];
    for (preset, metrics_given, group_given, metrics, group) in cases {
        let spec =
            QuerySpec { preset: Some(preset), metrics: *metrics_given, group_by: *group_given, ..QuerySpec::default() };
        let (got_metrics, got_group, _, _, got_preset) = built(spec);
        assert_eq!((&got_metrics, got_group.as_str()), (metrics, *group), "{preset} {metrics_given:?} {group_given:?}");
        assert_eq!(got_preset.map(|p| p.name()), Some(preset.to_ascii_lowercase()).as_deref());
    }
    // A default preset (`--demo`) applies only when none is given.
    let demo = QuerySpec { default_preset: Some(Preset::Utilization), ..QuerySpec::default() };
    assert_eq!(built(demo).4, Some(Preset::Utilization));
    let queue = QuerySpec { preset: Some("queue"), default_preset: Some(Preset::Utilization), ..QuerySpec::default() };
    assert_eq!(built(queue).4, Some(Preset::Queue));
}

#[test]
fn every_preset_is_a_valid_query_set() {
    for preset in Preset::ALL {
        let spec = QuerySpec { preset: Some(preset.name()), ..QuerySpec::default() };
        assert!(spec.build(Filters::none()).is_ok(), "{preset}");
        assert_eq!(Preset::parse(&preset.name().to_uppercase()).unwrap(), preset);
        assert!(preset.describe().starts_with(&format!("{}: by {}: ", preset.name(), preset.group_by().join(","))));
    }
}

#[test]
fn a_problem_names_its_field() {
    let cases: &[(QuerySpec<'_>, SpecField, &str)] = &[
        (
            QuerySpec { preset: Some("agents"), ..QuerySpec::default() },
            SpecField::Preset,
            "use one of agent, utilization, queue",
        ),
        (QuerySpec { metrics: Some("tHold"), ..QuerySpec::default() }, SpecField::Metrics, "tHeld"),
        (QuerySpec { group_by: Some("agentId"), ..QuerySpec::default() }, SpecField::GroupBy, "userId"),
        (QuerySpec { granularity: Some("30m"), ..QuerySpec::default() }, SpecField::Granularity, "PT30M"),
        (QuerySpec { time_zone: Some("Mars/Olympus"), ..QuerySpec::default() }, SpecField::TimeZone, "Mars/Olympus"),
        (
            QuerySpec { metrics: Some("tAgentRoutingStatus"), group_by: Some("queueId"), ..QuerySpec::default() },
            SpecField::Query,
            "userId",
        ),
    ];
    for (spec, field, needle) in cases {
        let errors = spec.build(Filters::none()).unwrap_err();
        let err = &errors[0];
        assert_eq!(err.field, *field, "{spec:?}");
        assert!(err.to_string().contains(needle), "{spec:?}: {err}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let spec = QuerySpec {
        metrics: Some("tHold"),
        group_by: Some("agentId"),
        granularity: Some("30m"),
        ..QuerySpec::default()
    };
    let fields: Vec<SpecField> = spec.build(Filters::none()).unwrap_err().iter().map(|e| e.field).collect();
    assert_eq!(fields, [SpecField::Metrics, SpecField::GroupBy, SpecField::Granularity]);
}
