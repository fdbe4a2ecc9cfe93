//! The judging stage: model-assisted assertions (`llm-rubric`, `factuality`, `hallucination`
//! with a judge, `semantic`) decided by a judge provider, after a job's completion, in the
//! executor's worker task (see [`crate::exec::AfterFn`]).
//!
//! - [`rubrics`]: the built-in, versioned rubric prompts; every judged result stores the
//!   judge (provider and model), the rubric version and a hash of the rubric.
//! - [`parse`]: tolerant reading of judge answers (last JSON object, then last grade line);
//!   what cannot be read is unscorable, never a silent 0 or 1.
//! - [`engine`]: calls the judge through its own rate limiter, concurrency, timeout and
//!   retries ([`crate::exec::call_with_retries`]) and consults the judge cache first.
//!
//! Judge calls default to temperature 0: the app builds each judge provider with
//! `params.temperature: 0` unless the provider's `params` set one.

pub mod engine;
pub mod parse;
pub mod rubrics;

pub use engine::{CacheLookup, Embedder, Engine, JudgeProvider, RetryNote, cosine};
