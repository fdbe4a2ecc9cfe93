//! Helpers shared by the HTTP providers: status mapping, Retry-After, secret redaction.
