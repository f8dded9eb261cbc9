//! MetricName and Dimension: exactly the API's names (docs/genesys-api.md 2.3 and 2.4), and rejections
//! that name the real ones.

use std::collections::BTreeSet;

use intervals_domain::{Dimension, DomainError, MetricName, DIMENSIONS, METRICS};
use proptest::prelude::*;

/// docs/genesys-api.md section 2.4, as written there (bold and footnote marks included).
const DOC_METRICS: &str = "nAgentDeclined*, nAlertExpired*, nBlindTransferred, nBotInteractions, nCallbackAttempts,
nCallbackOverSla, nCallbackScheduled, nCfcOffered, nCobrowseSessions, **nConnected**, nConsult,
nConsultTransferred, nConversations, nError, **nOffered**, nOutbound, nOutboundAbandoned,
nOutboundAttempted, nOutboundConnected, nOverSla, nStateTransitionError, nTakeover, **nTransferred**,
oAudioMessageCount, oCallbackServiceLevel, oExternalAudioMessageCount, oExternalMediaCount,
oMediaCount, oMessageCount, oMessageSegmentCount, oMessageTurn, oServiceLevel, oServiceTarget,
oSkillExpressionApplications, tAbandon, tAcd, tActiveCallback, tActiveCallbackComplete,
**tAcw**, tAgentResponseTime, tAgentVideoConnected, **tAlert**, **tAnswered**,
tAverageAgentResponseTime, tAverageCustomerResponseTime, tBarging, tCallbackAbandon,
tCallbackConnect, tCallbackNotReached, tCallbackVirtualWait, tCfcAbandon, tCfcAcd, tCfcAnswered,
tCfcFlowOut, tCoaching, tCoachingComplete, tConnected, **tContacting**, **tDialing**, tFirstConnect,
tFirstDial, tFirstEngagement, tFirstResponse, tFlowOut, **tHandle**, **tHeld**, **tHeldComplete**,
tIvr, tMonitoring, tMonitoringComplete, **tNotResponding**, tPark, tParkComplete, tScreenMonitoring,
tShortAbandon, tSnippetRecord, **tTalk**, **tTalkComplete**, tTransmitting, tUserResponseTime,
**tVoicemail**, tWait.";

/// docs/genesys-api.md section 2.3, "Full list", as written there.
const DOC_DIMENSIONS: &str = "activeRouting, activeSkillId, addressFrom, addressTo, agentAssistantId,
agentBullseyeRing, agentOwned, agentRank, agentScore, ani, assignerId, authenticated,
canonicalExternalContactId (in the SDK 269 predicate enum, missing from the Java 259 groupBy enum), conversationId, conversationInitiator,
convertedFrom, convertedTo, customerParticipation, deliveryStatus, destinationAddress, direction,
disconnectType, divisionId, dnis, edgeId, eligibleAgentCount, errorCode, extendedDeliveryStatus,
externalContactId, externalMediaCount, externalOrganizationId, externalTag, firstQueue,
flaggedReason, flowInType, flowOutType, groupId, interactionType, journeyActionId,
journeyActionMapId, journeyActionMapVersion, journeyCustomerId, journeyCustomerIdType,
journeyCustomerSessionId, journeyCustomerSessionIdType, knowledgeBaseId, mediaCount, mediaType,
messageType, originatingDirection, originatingSocialMediaPublic, outboundCampaignId,
outboundContactId, outboundContactListId, participantName, peerId, proposedAgentId, provider,
purpose, queueId, remote, removedSkillId, requestedLanguageId, requestedRouting,
requestedRoutingSkillId, roomId, routingPriority, routingRing, routingRule, routingRuleType,
scoredAgentId, selectedAgentId, selectedAgentRank, selfServed, sessionDnis, sessionId,
skillExpressionId, stationId, teamId, usedRouting, userId, videoPresent, waitingInteractionCount,
wrapUpCode.";

fn doc_names(text: &str) -> BTreeSet<String> {
    // Drop parenthesised remarks, then split the comma list.
    let mut plain = String::new();
    let mut depth = 0_u32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split(',')
        .map(|item| item.split_whitespace().next().unwrap_or_default())
        .map(|name| name.trim_matches(|c: char| c == '*' || c == '.').to_owned())
        .collect()
}

#[test]
fn metrics_are_exactly_the_documented_list() {
    let doc = doc_names(DOC_METRICS);
    assert_eq!(doc.len(), 82, "the section lists 82 metrics");
    let ours: BTreeSet<String> = METRICS.iter().map(|m| (*m).to_owned()).collect();
    assert_eq!(ours.len(), METRICS.len(), "no duplicates in METRICS");
    assert_eq!(ours, doc);
    for name in &doc {
        let m = MetricName::parse(name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.as_str(), name);
        assert_eq!(m.to_string(), *name);
        assert_eq!(name.parse::<MetricName>(), Ok(m));
        assert_eq!(m.is_timer(), name.starts_with('t'), "{name}: timers are t*");
    }
}

#[test]
fn dimensions_are_exactly_the_documented_list() {
    let doc = doc_names(DOC_DIMENSIONS);
    assert_eq!(doc.len(), 84, "the section lists 84 dimensions");
    let ours: BTreeSet<String> = DIMENSIONS.iter().map(|d| (*d).to_owned()).collect();
    assert_eq!(ours.len(), DIMENSIONS.len(), "no duplicates in DIMENSIONS");
    assert_eq!(ours, doc);
    for name in &doc {
        let d = Dimension::parse(name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.as_str(), name);
        assert_eq!(d.to_string(), *name);
        assert_eq!(name.parse::<Dimension>(), Ok(d));
    }
}

#[test]
fn real_metric_names_parse() {
    // (name, timer)
    let table: &[(&str, bool)] = &[
        ("tHandle", true),
        ("tAcw", true),
        ("tHeld", true),
        ("tHeldComplete", true),
        ("tTalk", true),
        ("tTalkComplete", true),
        ("tAnswered", true),
        ("tAlert", true),
        ("tContacting", true),
        ("tDialing", true),
        ("tNotResponding", true),
        ("tVoicemail", true),
        ("tAbandon", true),
        ("tWait", true),
        ("nConnected", false),
        ("nOffered", false),
        ("nTransferred", false),
        ("nBlindTransferred", false),
        ("nConsultTransferred", false),
        ("nOverSla", false),
        ("nAgentDeclined", false),
        ("nAlertExpired", false),
        ("oServiceLevel", false),
        ("oServiceTarget", false),
        (" tHandle ", true),
    ];
    for (input, timer) in table {
        let m = MetricName::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(m.as_str(), input.trim());
        assert_eq!(m.is_timer(), *timer, "{input}");
    }
}

#[test]
fn myths_and_mistakes_name_the_real_metrics() {
    // (input, the message must contain all of these)
    let table: &[(&str, &[&str])] = &[
        ("tHold", &["tHeld", "tHeldComplete"]),
        ("THOLD", &["tHeld", "tHeldComplete"]),
        ("holdTime", &["tHeld", "tHeldComplete"]),
        ("handleTime", &["tHandle"]),
        ("acwTime", &["tAcw"]),
        ("talkTime", &["tTalk", "tTalkComplete"]),
        ("nAnswered", &["tAnswered"]),
        ("nHandled", &["tHandle"]),
        ("nHeld", &["tHeld"]),
        // Case mistakes suggest the right spelling.
        ("thandle", &["use tHandle"]),
        ("THANDLE", &["use tHandle"]),
        ("tacw", &["use tAcw"]),
        ("theldcomplete", &["use tHeldComplete"]),
        ("nconnected", &["use nConnected"]),
        ("TAnswered", &["use tAnswered"]),
        // Typos get the nearest names.
        ("tHandel", &["did you mean", "tHandle"]),
        ("tHeldComplet", &["tHeldComplete"]),
        ("nConected", &["nConnected"]),
        ("tTalkCompleted", &["tTalkComplete"]),
        // Far from anything: still an error that says where the names are.
        ("metrics.tHandle.sum", &["metric"]),
        ("", &["metric"]),
        ("   ", &["metric"]),
        ("tHandle,tAcw", &["metric"]),
    ];
    for (input, must_say) in table {
        let err = MetricName::parse(input).expect_err(input);
        assert!(matches!(&err, DomainError::UnknownMetric { input: i, .. } if i == input), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("unknown metric {input:?}")), "{message}");
        for needle in *must_say {
            assert!(message.contains(needle), "{input:?}: message should contain {needle:?}: {message}");
        }
    }
}

#[test]
fn real_dimension_names_parse() {
    let table = [
        "userId",
        "queueId",
        "mediaType",
        "direction",
        "purpose",
        "divisionId",
        "wrapUpCode",
        "teamId",
        "groupId",
        "originatingDirection",
        "messageType",
        "requestedRoutingSkillId",
        "conversationId",
        "sessionId",
        "canonicalExternalContactId",
        "ani",
    ];
    for name in table {
        assert_eq!(Dimension::parse(name).map(|d| d.as_str()), Ok(name));
    }
    assert_eq!(Dimension::parse("userId"), Ok(Dimension::USER_ID));
    assert_eq!(Dimension::parse("mediaType"), Ok(Dimension::MEDIA_TYPE));
    assert_eq!(Dimension::parse("queueId"), Ok(Dimension::QUEUE_ID));
}

#[test]
fn myths_and_mistakes_name_the_real_dimensions() {
    let table: &[(&str, &[&str])] = &[
        ("agentId", &["userId"]),
        ("AgentID", &["userId"]),
        ("agent", &["userId"]),
        ("interval", &["granularity"]),
        ("queue", &["queueId"]),
        ("media", &["mediaType"]),
        ("userid", &["use userId"]),
        ("UserId", &["use userId"]),
        ("MEDIATYPE", &["use mediaType"]),
        ("user_id", &["userId"]),
        ("queue_id", &["queueId"]),
        ("", &["dimension"]),
    ];
    for (input, must_say) in table {
        let err = Dimension::parse(input).expect_err(input);
        assert!(matches!(&err, DomainError::UnknownDimension { input: i, .. } if i == input), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("unknown dimension {input:?}")), "{message}");
        for needle in *must_say {
            assert!(message.contains(needle), "{input:?}: message should contain {needle:?}: {message}");
        }
    }
}

#[test]
fn column_names_are_snake_case() {
    let table: &[(Dimension, &str)] = &[
        (Dimension::USER_ID, "user_id"),
        (Dimension::MEDIA_TYPE, "media_type"),
        (Dimension::QUEUE_ID, "queue_id"),
        (Dimension::parse("ani").expect("ani"), "ani"),
        (Dimension::parse("wrapUpCode").expect("wrapUpCode"), "wrap_up_code"),
        (Dimension::parse("requestedRoutingSkillId").expect("dim"), "requested_routing_skill_id"),
        (Dimension::parse("canonicalExternalContactId").expect("dim"), "canonical_external_contact_id"),
    ];
    for (d, want) in table {
        assert_eq!(d.column_name(), *want, "{d}");
    }
}

#[test]
fn every_dimension_has_a_distinct_snake_case_column() {
    let mut seen = BTreeSet::new();
    for name in DIMENSIONS {
        let column = Dimension::parse(name).expect("listed").column_name();
        assert!(column.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{column}");
        assert!(!column.starts_with('_') && !column.contains("__"), "{column}");
        assert_eq!(column.replace('_', ""), name.to_ascii_lowercase(), "{name} -> {column}");
        assert!(seen.insert(column.clone()), "{column} twice");
    }
}

proptest! {
    #![proptest_config(crate::proptest_config(256))]

    /// Whatever the input, a metric parses iff it is a listed name (after trimming), and a
    /// rejection always has something to say.
    #[test]
    fn metric_parse_accepts_only_listed_names(s in "[ a-zA-Z]{0,16}") {
        match MetricName::parse(&s) {
            Ok(m) => prop_assert!(METRICS.contains(&s.trim()) && m.as_str() == s.trim()),
            Err(e) => {
                prop_assert!(!METRICS.contains(&s.trim()));
                let DomainError::UnknownMetric { hint, .. } = e else { panic!("wrong error") };
                prop_assert!(!hint.is_empty());
            }
        }
    }

    #[test]
    fn dimension_parse_accepts_only_listed_names(s in "[ a-zA-Z]{0,16}") {
        prop_assert_eq!(Dimension::parse(&s).is_ok(), DIMENSIONS.contains(&s.trim()));
    }

    /// Any listed metric in the wrong case is answered with its right spelling.
    #[test]
    fn case_mistakes_suggest_the_right_spelling(i in 0..METRICS.len(), flips in prop::collection::vec(any::<bool>(), 32)) {
        let right = METRICS[i];
        let wrong: String = right
            .chars()
            .zip(flips.iter().cycle())
            .map(|(c, flip)| if *flip { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        prop_assume!(wrong != right);
        let message = MetricName::parse(&wrong).expect_err("case matters").to_string();
        prop_assert!(message.contains(right), "{} -> {}", wrong, message);
    }
}
