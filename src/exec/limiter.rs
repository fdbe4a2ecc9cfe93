//! Per-provider rate limits: requests per minute and tokens per minute.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::model::RateLimit;

const WINDOW: Duration = Duration::from_secs(60);

/// A sliding one-minute window of requests and tokens.
pub struct Limiter {
    rpm: Option<u32>,
    tpm: Option<u32>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Start times of requests in the window.
    requests: VecDeque<Instant>,
    /// (time, tokens) of finished requests in the window.
    tokens: VecDeque<(Instant, u64)>,
    token_sum: u64,
}

impl Limiter {
    #[must_use]
    pub fn new(limit: RateLimit) -> Self {
        Self {
            rpm: limit.rpm.filter(|n| *n > 0),
            tpm: limit.tpm.filter(|n| *n > 0),
            state: Mutex::new(State::default()),
        }
    }

    #[must_use]
    pub fn is_unlimited(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none()
    }

    /// Wait until one more request fits the window, then count it.
    pub async fn acquire(&self) {
        if self.is_unlimited() {
            return;
        }
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                while s
                    .requests
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    s.requests.pop_front();
                }
                while let Some(&(t, n)) = s.tokens.front() {
                    if now.duration_since(t) < WINDOW {
                        break;
                    }
                    s.tokens.pop_front();
                    s.token_sum -= n;
                }
                let mut wait = Duration::ZERO;
                if let Some(rpm) = self.rpm
                    && s.requests.len() >= rpm as usize
                    && let Some(first) = s.requests.front()
                {
                    wait = wait.max(WINDOW.saturating_sub(now.duration_since(*first)));
                }
                if let Some(tpm) = self.tpm
                    && s.token_sum >= u64::from(tpm)
                    && let Some((first, _)) = s.tokens.front()
                {
                    wait = wait.max(WINDOW.saturating_sub(now.duration_since(*first)));
                }
                if wait.is_zero() {
                    s.requests.push_back(now);
                    return;
                }
                wait
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Count the tokens a finished request used.
    pub async fn record_tokens(&self, tokens: u64) {
        if self.tpm.is_none() || tokens == 0 {
            return;
        }
        let mut s = self.state.lock().await;
        s.tokens.push_back((Instant::now(), tokens));
        s.token_sum += tokens;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rpm_spaces_requests_over_the_minute() {
        let l = Limiter::new(RateLimit {
            rpm: Some(2),
            tpm: None,
        });
        let start = Instant::now();
        l.acquire().await;
        l.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire().await;
        assert_eq!(
            start.elapsed(),
            WINDOW,
            "third request waits for the window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tpm_waits_once_the_token_budget_is_spent() {
        let l = Limiter::new(RateLimit {
            rpm: None,
            tpm: Some(100),
        });
        let start = Instant::now();
        l.acquire().await;
        l.record_tokens(60).await;
        l.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.record_tokens(60).await;
        l.acquire().await;
        assert_eq!(start.elapsed(), WINDOW);
    }
}
