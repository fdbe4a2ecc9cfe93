//! Delivery of queued notices to the sinks, with claims (never twice) and backoff.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::now_rfc3339;
use crate::alert::sink::{Env, Notice, Sink};
use crate::app::Ctx;
use crate::store::{PendingDelivery, Store};

/// The first pause after a failed delivery round; each further failed round doubles it.
const ROUND_BACKOFF: chrono::Duration = chrono::Duration::seconds(30);
/// The longest pause between delivery rounds.
const MAX_ROUND_BACKOFF: chrono::Duration = chrono::Duration::hours(1);
/// Added to a delivery's longest possible duration to make its claim.
const CLAIM_MARGIN: chrono::Duration = chrono::Duration::seconds(30);

/// When a delivery that failed its `rounds`-th round is tried again: 30 s, 1 min, 2 min, ...
/// up to an hour after `now`.
fn next_attempt(now: DateTime<Utc>, rounds: u32) -> DateTime<Utc> {
    let factor = 2i32.saturating_pow(rounds.saturating_sub(1).min(20));
    now + (ROUND_BACKOFF * factor).min(MAX_ROUND_BACKOFF)
}

/// Who is sending: this process, for delivery claims.
fn sender_id() -> String {
    format!("pid {} on {}", std::process::id(), now_rfc3339(Utc::now()))
}

/// Sinks not tried in a round because a failed round's back-off has not passed, each with
/// when it ends (RFC 3339).
type Held = Vec<(String, String)>;

/// What one delivery round did to one notice.
struct Round {
    id: i64,
    sink: String,
    result: Result<(), String>,
    next: Option<String>,
}

/// Deliver every pending notice that is due. Each delivery is claimed in the store before
/// it is sent (so that concurrent senders, two `alerts check` or a daemon and a `run`, never
/// send a notice twice) and recorded as soon as it is done. A failed delivery stays queued
/// and is tried again after a backoff (30 s, doubling, up to an hour) that `run` honours and
/// `alerts check` (`ignore_backoff`) does not. Failures are warnings, one per sink with that
/// sink's queue. Returns (delivered, still pending).
pub fn flush_queue(
    ctx: &Ctx,
    store: &mut Store,
    sinks: &[Sink],
    env: Env<'_>,
    ignore_backoff: bool,
) -> anyhow::Result<(usize, usize)> {
    let pending = store.pending_deliveries()?;
    if pending.is_empty() {
        return Ok((0, 0));
    }
    let sender = Sender {
        client: crate::provider::http_client()?,
        owner: sender_id(),
        sinks,
        env,
        ignore_backoff,
    };
    // Sends happen on a thread of their own with its own runtime, so that this works
    // whether or not the caller is inside one.
    let rounds: anyhow::Result<(Vec<Round>, Held)> = std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<(Vec<Round>, Held)> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(sender.send_all(store, &pending))
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the delivery thread panicked")))
    });
    let (rounds, held) = rounds?;
    let delivered = rounds.iter().filter(|r| r.result.is_ok()).count();
    let backlog = store.pending_by_sink()?;
    let left: u64 = backlog.iter().map(|b| b.notices).sum();
    for r in &rounds {
        let Err(e) = &r.result else { continue };
        let queued = backlog
            .iter()
            .find(|b| b.sink == r.sink)
            .map_or(0, |b| b.notices);
        let when = r.next.as_deref().map_or_else(String::new, |t| {
            format!(" (by `run` from {t}; `alerts check` at once)")
        });
        ctx.printer.warn(&format!(
            "deliver alerts: sink `{}`: notice {}: {e}; {queued} notice(s) for this sink stay queued and are retried{when}",
            r.sink, r.id
        ));
    }
    // Not tried this time: said too, or new alerts would seem sent where a pager never got
    // them.
    for (sink, until) in &held {
        let queued = backlog
            .iter()
            .find(|b| b.sink == *sink)
            .map_or(0, |b| b.notices);
        ctx.printer.warn(&format!(
            "deliver alerts: sink `{sink}` failed before and is not tried again until {until} (`alerts check` tries it at once); {queued} notice(s) for this sink stay queued"
        ));
    }
    Ok((delivered, usize::try_from(left).unwrap_or(usize::MAX)))
}

/// One delivery round's sender.
struct Sender<'a> {
    client: reqwest::Client,
    /// Who claims the deliveries.
    owner: String,
    sinks: &'a [Sink],
    env: Env<'a>,
    ignore_backoff: bool,
}

impl Sender<'_> {
    /// Send each pending notice that is due and not claimed by another sender, in order.
    /// Also the sinks not tried because a failed round's back-off has not passed, each with
    /// when it ends.
    async fn send_all(
        &self,
        store: &mut Store,
        pending: &[PendingDelivery],
    ) -> anyhow::Result<(Vec<Round>, Held)> {
        let mut out = Vec::new();
        let mut held: Held = Vec::new();
        let now = store.clock_now()?;
        // Sinks that failed, or whose next notice another sender holds: a sink's notices go
        // out in order, so later ones wait.
        let mut blocked: BTreeSet<&str> = BTreeSet::new();
        for d in pending {
            if blocked.contains(d.sink.as_str()) {
                continue;
            }
            let Some(round) = self.send(store, d).await? else {
                blocked.insert(d.sink.as_str());
                let waiting = |t: &&String| DateTime::parse_from_rfc3339(t).is_ok_and(|t| t > now);
                if let Some(until) = d
                    .next_attempt_at
                    .as_ref()
                    .filter(|t| !self.ignore_backoff && waiting(t))
                {
                    held.push((d.sink.clone(), until.clone()));
                }
                continue;
            };
            if round.result.is_err() {
                blocked.insert(d.sink.as_str());
            }
            out.push(round);
        }
        Ok((out, held))
    }

    /// Claim one notice, send it and record what came of it; `None` when another sender
    /// holds it (or its backoff has not passed).
    async fn send(&self, store: &mut Store, d: &PendingDelivery) -> anyhow::Result<Option<Round>> {
        let sink = self.sinks.iter().find(|s| s.id == d.sink);
        let lease = sink.map_or(std::time::Duration::ZERO, Sink::max_delivery_time);
        // The store's clock: on PostgreSQL the server's, one clock for every host's senders.
        let now = store.clock_now()?;
        let until =
            now + chrono::Duration::from_std(lease).unwrap_or(MAX_ROUND_BACKOFF) + CLAIM_MARGIN;
        if !store.claim_delivery(
            d.id,
            &self.owner,
            &now_rfc3339(now),
            &now_rfc3339(until),
            self.ignore_backoff,
        )? {
            return Ok(None);
        }
        let (attempts, result) = match sink {
            Some(sink) => {
                let notice = Notice {
                    delivery_id: d.id,
                    kind: &d.kind,
                    body: &d.payload,
                };
                let (a, r) = sink.deliver(&self.client, &notice, self.env).await;
                (a, r.map_err(|e| e.message))
            }
            None => (0, Err(format!("sink `{}` is no longer configured", d.sink))),
        };
        let done = store.clock_now().unwrap_or_else(|_| Utc::now());
        let next = result
            .is_err()
            .then(|| now_rfc3339(next_attempt(done, d.failed_rounds + 1)));
        store.record_delivery(
            d.id,
            &now_rfc3339(done),
            result.as_ref().err().map(String::as_str),
            attempts,
            next.as_deref(),
        )?;
        Ok(Some(Round {
            id: d.id,
            sink: d.sink.clone(),
            result,
            next,
        }))
    }
}
