//! Users and queues: the dimension tables that give ids a name.

/// A Genesys user (agent), in any state: analytics can name deactivated or deleted agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// UUID.
    pub id: String,
    /// Display name.
    pub name: String,
    /// E-mail, when known.
    pub email: Option<String>,
    /// `active`, `inactive` or `deleted`.
    pub state: String,
    /// Division id, when known.
    pub division_id: Option<String>,
    /// Division name, when known.
    pub division_name: Option<String>,
}

/// A routing queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// UUID.
    pub id: String,
    /// Queue name.
    pub name: String,
    /// Division id, when known.
    pub division_id: Option<String>,
    /// Division name, when known.
    pub division_name: Option<String>,
}
