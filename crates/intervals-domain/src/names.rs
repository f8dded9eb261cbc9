//! Metric and dimension names, checked against the API's enums (docs/genesys-api.md sections 2.3, 2.4
//! and 5): conversation-aggregate metrics and the users-aggregate status metrics, each knowing its
//! family.

use std::fmt;
use std::str::FromStr;

use crate::error::DomainError;

/// Every conversation-aggregate metric the API accepts (SDK 269 view-target enum).
pub const METRICS: &[&str] = &[
    "nAgentDeclined",
    "nAlertExpired",
    "nBlindTransferred",
    "nBotInteractions",
    "nCallbackAttempts",
    "nCallbackOverSla",
    "nCallbackScheduled",
    "nCfcOffered",
    "nCobrowseSessions",
    "nConnected",
    "nConsult",
    "nConsultTransferred",
    "nConversations",
    "nError",
    "nOffered",
    "nOutbound",
    "nOutboundAbandoned",
    "nOutboundAttempted",
    "nOutboundConnected",
    "nOverSla",
    "nStateTransitionError",
    "nTakeover",
    "nTransferred",
    "oAudioMessageCount",
    "oCallbackServiceLevel",
    "oExternalAudioMessageCount",
    "oExternalMediaCount",
    "oMediaCount",
    "oMessageCount",
    "oMessageSegmentCount",
    "oMessageTurn",
    "oServiceLevel",
    "oServiceTarget",
    "oSkillExpressionApplications",
    "tAbandon",
    "tAcd",
    "tActiveCallback",
    "tActiveCallbackComplete",
    "tAcw",
    "tAgentResponseTime",
    "tAgentVideoConnected",
    "tAlert",
    "tAnswered",
    "tAverageAgentResponseTime",
    "tAverageCustomerResponseTime",
    "tBarging",
    "tCallbackAbandon",
    "tCallbackConnect",
    "tCallbackNotReached",
    "tCallbackVirtualWait",
    "tCfcAbandon",
    "tCfcAcd",
    "tCfcAnswered",
    "tCfcFlowOut",
    "tCoaching",
    "tCoachingComplete",
    "tConnected",
    "tContacting",
    "tDialing",
    "tFirstConnect",
    "tFirstDial",
    "tFirstEngagement",
    "tFirstResponse",
    "tFlowOut",
    "tHandle",
    "tHeld",
    "tHeldComplete",
    "tIvr",
    "tMonitoring",
    "tMonitoringComplete",
    "tNotResponding",
    "tPark",
    "tParkComplete",
    "tScreenMonitoring",
    "tShortAbandon",
    "tSnippetRecord",
    "tTalk",
    "tTalkComplete",
    "tTransmitting",
    "tUserResponseTime",
    "tVoicemail",
    "tWait",
];

/// Queue figures: interactions offered to a queue, abandoned in it, the time they waited there and the
/// service level they met (docs/genesys-api.md, "The queue side"). They have no agent (an abandoned
/// interaction never reaches one), so a query of them is not grouped or filtered by userId.
pub const QUEUE_ONLY_METRICS: &[&str] =
    &["nOffered", "tAbandon", "tShortAbandon", "tWait", "oServiceLevel", "nOverSla"];

/// Every users-aggregate metric the API accepts (SDK 269 `UserAggregationQuery`): time in a status,
/// the status travelling in each value's `qualifier`.
pub const USER_STATUS_METRICS: &[&str] = &["tAgentRoutingStatus", "tOrganizationPresence", "tSystemPresence"];

/// The status metrics `--demo` adds to [`DEFAULT_METRICS`]: routing status and system presence,
/// what the `agent_utilization` view reads.
pub const UTILIZATION_METRICS: &[&str] = &["tAgentRoutingStatus", "tSystemPresence"];

/// The metrics read when none are named: the CLI's `--metrics` (and `sim truth --metrics`) and the
/// daemon's `metrics` key. Handle, after-call work, hold and talk time, and the connected count.
pub const DEFAULT_METRICS: &[&str] = &["tHandle", "tAcw", "tHeldComplete", "tTalkComplete", "nConnected"];

/// Every groupBy / filter dimension the API accepts (SDK 269 predicate enum).
pub const DIMENSIONS: &[&str] = &[
    "activeRouting",
    "activeSkillId",
    "addressFrom",
    "addressTo",
    "agentAssistantId",
    "agentBullseyeRing",
    "agentOwned",
    "agentRank",
    "agentScore",
    "ani",
    "assignerId",
    "authenticated",
    "canonicalExternalContactId",
    "conversationId",
    "conversationInitiator",
    "convertedFrom",
    "convertedTo",
    "customerParticipation",
    "deliveryStatus",
    "destinationAddress",
    "direction",
    "disconnectType",
    "divisionId",
    "dnis",
    "edgeId",
    "eligibleAgentCount",
    "errorCode",
    "extendedDeliveryStatus",
    "externalContactId",
    "externalMediaCount",
    "externalOrganizationId",
    "externalTag",
    "firstQueue",
    "flaggedReason",
    "flowInType",
    "flowOutType",
    "groupId",
    "interactionType",
    "journeyActionId",
    "journeyActionMapId",
    "journeyActionMapVersion",
    "journeyCustomerId",
    "journeyCustomerIdType",
    "journeyCustomerSessionId",
    "journeyCustomerSessionIdType",
    "knowledgeBaseId",
    "mediaCount",
    "mediaType",
    "messageType",
    "originatingDirection",
    "originatingSocialMediaPublic",
    "outboundCampaignId",
    "outboundContactId",
    "outboundContactListId",
    "participantName",
    "peerId",
    "proposedAgentId",
    "provider",
    "purpose",
    "queueId",
    "remote",
    "removedSkillId",
    "requestedLanguageId",
    "requestedRouting",
    "requestedRoutingSkillId",
    "roomId",
    "routingPriority",
    "routingRing",
    "routingRule",
    "routingRuleType",
    "scoredAgentId",
    "selectedAgentId",
    "selectedAgentRank",
    "selfServed",
    "sessionDnis",
    "sessionId",
    "skillExpressionId",
    "stationId",
    "teamId",
    "usedRouting",
    "userId",
    "videoPresent",
    "waitingInteractionCount",
    "wrapUpCode",
];

/// Names people write that do not exist, with what to use instead.
const METRIC_MYTHS: &[(&str, &str)] = &[
    ("tHold", "there is no tHold metric: use tHeld (per hold segment) or tHeldComplete (per session)"),
    ("holdTime", "use tHeld (per hold segment) or tHeldComplete (per session)"),
    ("handleTime", "use tHandle (its count is the number of handled interactions)"),
    ("acwTime", "use tAcw"),
    ("talkTime", "use tTalk (per talk segment) or tTalkComplete (per session)"),
    ("nAnswered", "there is no nAnswered metric: use tAnswered, whose count is the answered interactions"),
    ("nHandled", "there is no nHandled metric: use tHandle, whose count is the handled interactions"),
    ("nHeld", "there is no nHeld metric: use tHeld, whose count is the hold segments"),
    ("tOnQueue", "use tSystemPresence (qualifier ON_QUEUE) or tAgentRoutingStatus"),
    ("tOffQueue", "use tAgentRoutingStatus (qualifier OFF_QUEUE)"),
    ("tIdle", "use tAgentRoutingStatus (qualifier IDLE)"),
    ("tInteracting", "use tAgentRoutingStatus (qualifier INTERACTING)"),
    ("tCommunicating", "use tAgentRoutingStatus (qualifier COMMUNICATING)"),
    ("tAvailable", "use tSystemPresence (qualifier AVAILABLE)"),
    ("tBreak", "use tSystemPresence (qualifier BREAK)"),
    ("tMeal", "use tSystemPresence (qualifier MEAL)"),
    ("tAway", "use tSystemPresence (qualifier AWAY)"),
    ("tBusy", "use tSystemPresence (qualifier BUSY)"),
    ("tPresence", "use tSystemPresence (statuses such as ON_QUEUE, AVAILABLE, BREAK) or tOrganizationPresence (your org's presence definitions)"),
    ("tRoutingStatus", "use tAgentRoutingStatus"),
    ("tOccupancy", "occupancy is derived, not fetched: read tAgentRoutingStatus and see the agent_utilization view"),
    ("oOccupancy", "occupancy is derived, not fetched: read tAgentRoutingStatus and see the agent_utilization view"),
    ("tStatus", "use tAgentRoutingStatus (routing status) or tSystemPresence (presence)"),
];

const DIMENSION_MYTHS: &[(&str, &str)] = &[
    ("agentId", "the agent dimension is userId"),
    ("agent", "the agent dimension is userId"),
    ("interval", "interval is not a dimension: time buckets come from --granularity"),
    ("queue", "use queueId"),
    ("media", "use mediaType"),
];

/// Which aggregate endpoint a metric belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricFamily {
    /// `/api/v2/analytics/conversations/aggregates/...`: handling metrics (`tHandle`, `tAcw`, ...),
    /// grouped by userId, mediaType, queueId.
    Conversation,
    /// `/api/v2/analytics/users/aggregates/...`: time in a presence or routing status, grouped by
    /// userId alone, the status in each value's qualifier.
    UserStatus,
}

impl MetricFamily {
    /// For people: `conversation` or `user status`.
    pub fn describe(self) -> &'static str {
        match self {
            MetricFamily::Conversation => "conversation",
            MetricFamily::UserStatus => "user status",
        }
    }
}

impl fmt::Display for MetricFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A metric name the API accepts: a conversation-aggregate metric (`tHandle`, `tAcw`, `nConnected`,
/// ...) or a users-aggregate status metric (`tAgentRoutingStatus`, `tSystemPresence`,
/// `tOrganizationPresence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricName(&'static str);

impl MetricName {
    /// Parses a metric name of either family; unknown names get a message naming the real ones.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let s = input.trim();
        if let Some(found) = METRICS.iter().chain(USER_STATUS_METRICS).find(|m| **m == s) {
            return Ok(MetricName(found));
        }
        let known: Vec<&str> = METRICS.iter().chain(USER_STATUS_METRICS).copied().collect();
        Err(DomainError::UnknownMetric { input: input.to_owned(), hint: hint(s, &known, METRIC_MYTHS) })
    }

    /// The endpoint family it is read from.
    pub fn family(&self) -> MetricFamily {
        if USER_STATUS_METRICS.contains(&self.0) {
            MetricFamily::UserStatus
        } else {
            MetricFamily::Conversation
        }
    }

    /// The API's spelling.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// Timers (`t*`) are durations in milliseconds.
    pub fn is_timer(&self) -> bool {
        self.0.starts_with('t')
    }

    /// Observation metrics (`o*`): their statistics may be a ratio (`ratio`, `numerator`,
    /// `denominator`, `target`), as `oServiceLevel`'s are, rather than a count and a sum.
    pub fn is_observation(&self) -> bool {
        self.0.starts_with('o')
    }

    /// A queue figure with no agent ([`QUEUE_ONLY_METRICS`]): never grouped or filtered by userId.
    pub fn is_queue_only(&self) -> bool {
        QUEUE_ONLY_METRICS.contains(&self.0)
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl FromStr for MetricName {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MetricName::parse(s)
    }
}

/// A groupBy / filter dimension name the API accepts (`userId`, `mediaType`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dimension(&'static str);

impl Dimension {
    /// The agent.
    pub const USER_ID: Dimension = Dimension("userId");
    /// voice, chat, email, message, ...
    pub const MEDIA_TYPE: Dimension = Dimension("mediaType");
    /// The ACD queue.
    pub const QUEUE_ID: Dimension = Dimension("queueId");

    /// Parses a dimension name; unknown names get a message naming the real ones.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let s = input.trim();
        if let Some(found) = DIMENSIONS.iter().find(|d| **d == s) {
            return Ok(Dimension(found));
        }
        Err(DomainError::UnknownDimension { input: input.to_owned(), hint: hint(s, DIMENSIONS, DIMENSION_MYTHS) })
    }

    /// The API's spelling.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// The column name in CSV and SQL: `userId` -> `user_id`.
    pub fn column_name(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 4);
        for c in self.0.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl FromStr for Dimension {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dimension::parse(s)
    }
}

fn hint(input: &str, valid: &[&str], myths: &[(&str, &str)]) -> String {
    if let Some((_, advice)) = myths.iter().find(|(myth, _)| myth.eq_ignore_ascii_case(input)) {
        return (*advice).to_owned();
    }
    if let Some(right) = valid.iter().find(|v| v.eq_ignore_ascii_case(input)) {
        return format!("names are case-sensitive: use {right}");
    }
    let mut close: Vec<(usize, &str)> =
        valid.iter().map(|v| (edit_distance(&input.to_ascii_lowercase(), &v.to_ascii_lowercase()), *v)).collect();
    close.sort();
    let near: Vec<&str> = close.iter().take_while(|(d, _)| *d <= 3).take(3).map(|(_, v)| *v).collect();
    if near.is_empty() {
        "see the Genesys Cloud conversation aggregate metric and dimension lists".to_owned()
    } else {
        format!("did you mean {}?", near.join(" or "))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
