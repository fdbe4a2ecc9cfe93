//! Alert state as the store keeps it: plain data exchanged with `store::alerts` (defined
//! here because the store module re-exports nothing of its alert queries).

/// One alert episode.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub suite: String,
    pub rule: String,
    pub metric: String,
    pub provider: String,
    pub tag: Option<String>,
    pub severity: String,
    pub opened_at: String,
    pub opened_run: Option<String>,
    pub last_seen_at: String,
    pub last_run: Option<String>,
    pub value: Option<f64>,
    pub baseline_value: Option<f64>,
    pub message: String,
    pub resolved_at: Option<String>,
    pub resolved_run: Option<String>,
}

/// What opening an alert records.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert<'a> {
    pub suite: &'a str,
    pub rule: &'a str,
    pub metric: &'a str,
    pub provider: &'a str,
    pub tag: Option<&'a str>,
    pub severity: &'a str,
    pub run_id: Option<&'a str>,
    pub at: &'a str,
    pub value: Option<f64>,
    pub baseline_value: Option<f64>,
    pub message: &'a str,
}

/// A notice not yet delivered to one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    pub id: i64,
    pub sink: String,
    pub attempts: u32,
    /// `alert` or `resolved`.
    pub kind: String,
    pub payload: String,
    pub created_at: String,
}
