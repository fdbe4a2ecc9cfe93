//! Provider definitions (in `evalwatch.yaml` or inline in a suite) -> `model::ProviderSpec`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::decode::{Ctx, did_you_mean};
use super::wire::WireProvider;
use super::yaml::Node;
use crate::model::{
    AzureSpec, HttpSpec, Pricing, ProviderKind, ProviderSpec, RateLimit, RetryPolicy,
};

fn field<'a>(node: &'a Node, key: &str) -> &'a Node {
    node.get(key).map_or(node, |(_, v)| v)
}

/// Decode and validate one provider definition; relative paths resolve against `base_dir`.
/// `headers` values are kept unexpanded (the http provider expands them at call time).
pub(crate) fn decode(ctx: &mut Ctx, node: &Node, base_dir: &Path) -> Option<ProviderSpec> {
    let before = ctx.diags.len();
    let what = match node.get("id").and_then(|(_, v)| v.as_str()) {
        Some(id) => format!("provider `{id}`"),
        None => "a provider".to_owned(),
    };
    let Some(entries) = node.as_map() else {
        ctx.error(
            node,
            format!(
                "a provider must be a mapping (or an id), found {}",
                node.type_name()
            ),
        );
        return None;
    };
    let mut json = serde_json::Map::new();
    for (k, v) in entries {
        let key = k.key_text();
        let value = if key == "headers" {
            let expand = std::mem::replace(&mut ctx.expand_env, false);
            let raw = ctx.json(v);
            ctx.expand_env = expand;
            raw
        } else {
            ctx.json(v)
        };
        json.insert(key, value);
    }
    let wire: WireProvider = ctx.decode_json(node, &what, Value::Object(json))?;
    let Some(kind) = ProviderKind::parse(&wire.kind) else {
        let hint = did_you_mean(&wire.kind, ProviderKind::ALL);
        ctx.error(
            field(node, "type"),
            format!("unknown provider type `{}` in {what}{hint}", wire.kind),
        );
        return None;
    };
    if wire.id.trim().is_empty() {
        ctx.error(field(node, "id"), "provider id must not be empty");
    }
    let mut spec = ProviderSpec::new(wire.id.clone(), kind);
    spec.model.clone_from(&wire.model);
    spec.params = wire.params.clone().unwrap_or_default();
    spec.pricing = wire.pricing.as_ref().map(|p| Pricing {
        input_per_mtok: p.input_per_mtok,
        output_per_mtok: p.output_per_mtok,
    });
    if let Some(p) = &spec.pricing
        && (p.input_per_mtok < 0.0 || p.output_per_mtok < 0.0)
    {
        ctx.error(field(node, "pricing"), "pricing must not be negative");
    }
    match wire.concurrency {
        Some(0) => ctx.error(field(node, "concurrency"), "concurrency must be at least 1"),
        Some(c) => spec.concurrency = c,
        None => {}
    }
    if let Some(r) = &wire.rate_limit {
        spec.rate_limit = RateLimit {
            rpm: r.rpm,
            tpm: r.tpm,
        };
        if r.rpm == Some(0) || r.tpm == Some(0) {
            ctx.error(
                field(node, "rate_limit"),
                "rate limits must be at least 1 (omit them for no limit)",
            );
        }
    }
    if let Some(t) = &wire.timeout
        && let Some(d) = duration_field(ctx, field(node, "timeout"), "timeout", t)
    {
        if d.is_zero() {
            ctx.error(
                field(node, "timeout"),
                "timeout must be more than 0 (every call would fail at once)",
            );
        }
        spec.timeout = d;
    }
    if let Some(r) = &wire.retries {
        let at = field(node, "retries");
        let mut policy = RetryPolicy::default();
        if let Some(m) = r.max {
            policy.max = m;
        }
        if let Some(d) = &r.base_delay
            && let Some(d) = duration_field(ctx, field(at, "base_delay"), "base_delay", d)
        {
            policy.base_delay = d;
        }
        if let Some(d) = &r.max_delay
            && let Some(d) = duration_field(ctx, field(at, "max_delay"), "max_delay", d)
        {
            policy.max_delay = d;
        }
        if policy.base_delay > policy.max_delay {
            ctx.error(at, "retries: base_delay is longer than max_delay");
        }
        spec.retries = policy;
    }
    if let Some(v) = &wire.max_output_bytes {
        match parse_size(v) {
            Some(n) if (1..=MAX_OUTPUT_CAP).contains(&n) => spec.max_output_bytes = Some(n),
            _ => ctx.error(
                field(node, "max_output_bytes"),
                format!(
                    "max_output_bytes must be a size between 1 byte and 1GiB (`1048576`, `512KiB`, `4MiB`), got {v}"
                ),
            ),
        }
    }
    spec.azure = wire.azure.as_ref().map(|a| AzureSpec {
        deployment: a.deployment.clone(),
        api_version: a.api_version.clone(),
    });
    let (base_url, key_env) = match kind {
        ProviderKind::Openai => (Some("https://api.openai.com/v1"), Some("OPENAI_API_KEY")),
        ProviderKind::Anthropic => (Some("https://api.anthropic.com"), Some("ANTHROPIC_API_KEY")),
        ProviderKind::Ollama => (Some("http://localhost:11434"), None),
        _ => (None, None),
    };
    spec.base_url = wire
        .base_url
        .clone()
        .or_else(|| base_url.map(str::to_owned));
    spec.api_key_env = wire
        .api_key_env
        .clone()
        .or_else(|| key_env.map(str::to_owned));
    per_kind(ctx, node, &wire, &mut spec, base_dir, &what);
    (ctx.diags.len() == before).then_some(spec)
}

/// The largest `max_output_bytes` accepted: 1 GiB.
pub(crate) const MAX_OUTPUT_CAP: u64 = 1 << 30;

/// A size in bytes: a whole number, or a string of one with a unit (B, KB, KiB, MB, MiB,
/// GB, GiB; case-insensitive).
pub(crate) fn parse_size(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Provider fields that only some types use.
const TYPED_FIELDS: &[&str] = &[
    "model",
    "base_url",
    "api_key_env",
    "params",
    "azure",
    "method",
    "url",
    "headers",
    "body",
    "output",
    "usage",
    "command",
    "cwd",
    "file",
];

/// The typed fields a provider type uses.
fn kind_fields(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Openai => &["model", "base_url", "api_key_env", "params", "azure"],
        ProviderKind::Anthropic | ProviderKind::Ollama => {
            &["model", "base_url", "api_key_env", "params"]
        }
        ProviderKind::Http => &[
            "model", "method", "url", "headers", "body", "output", "usage",
        ],
        ProviderKind::Exec => &["command", "cwd"],
        ProviderKind::Replay => &["file", "model"],
        ProviderKind::Echo => &[],
    }
}

fn per_kind(
    ctx: &mut Ctx,
    node: &Node,
    wire: &WireProvider,
    spec: &mut ProviderSpec,
    base_dir: &Path,
    what: &str,
) {
    let kind = spec.kind;
    let allowed = kind_fields(kind);
    for (k, _) in node.as_map().unwrap_or_default() {
        let key = k.key_text();
        if TYPED_FIELDS.contains(&key.as_str()) && !allowed.contains(&key.as_str()) {
            ctx.error(
                k,
                format!(
                    "`{key}` does not apply to {what} of type `{}`; remove it or change `type`",
                    kind.as_str()
                ),
            );
        }
    }
    let require = |ctx: &mut Ctx, present: bool, name: &str| {
        if !present {
            ctx.error(
                node,
                format!("{what} of type `{}` needs `{name}`", kind.as_str()),
            );
        }
    };
    match kind {
        ProviderKind::Openai | ProviderKind::Anthropic | ProviderKind::Ollama => {
            require(ctx, wire.model.is_some(), "model");
        }
        ProviderKind::Http => {
            require(ctx, wire.url.is_some(), "url");
            require(ctx, wire.output.is_some(), "output");
            let method = wire
                .method
                .clone()
                .unwrap_or_else(|| "POST".to_owned())
                .to_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                ctx.error(
                    field(node, "method"),
                    format!("unsupported http method `{method}`"),
                );
            }
            let usage = wire.usage.as_ref();
            let http = HttpSpec {
                method,
                url: wire.url.clone().unwrap_or_default(),
                headers: wire.headers.clone().unwrap_or_default(),
                body: wire.body.clone(),
                output: wire.output.clone().unwrap_or_default(),
                usage_in: usage.and_then(|u| u.tokens_in.clone()),
                usage_out: usage.and_then(|u| u.tokens_out.clone()),
            };
            for (name, ptr) in [
                ("output", Some(&http.output)),
                ("usage", http.usage_in.as_ref()),
                ("usage", http.usage_out.as_ref()),
            ] {
                if let Some(p) = ptr
                    && !p.is_empty()
                    && !p.starts_with('/')
                {
                    ctx.error(
                        field(node, name),
                        format!("`{p}` is not a JSON pointer (it must start with `/`)"),
                    );
                }
            }
            spec.http = Some(http);
        }
        ProviderKind::Exec => {
            require(ctx, wire.command.is_some(), "command");
            let at = field(node, "command");
            match &wire.command {
                Some(Value::String(line)) => match shlex::split(line) {
                    Some(words) if !words.is_empty() => spec.command = words,
                    Some(_) => ctx.error(at, "command must not be empty"),
                    None => ctx.error(at, "command has unbalanced quotes"),
                },
                Some(Value::Array(items)) => {
                    let words: Option<Vec<String>> = items
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    match words {
                        Some(w) if !w.is_empty() => spec.command = w,
                        _ => ctx.error(at, "command must be a non-empty list of strings"),
                    }
                }
                Some(_) => ctx.error(at, "command must be a string or a list of strings"),
                None => {}
            }
            spec.cwd = Some(
                wire.cwd
                    .as_ref()
                    .map_or_else(|| base_dir.to_path_buf(), |c| base_dir.join(c)),
            );
        }
        ProviderKind::Replay => {
            require(ctx, wire.file.is_some(), "file");
            spec.file = wire.file.as_ref().map(|f| base_dir.join(f));
            // Judged here, at validate: a FIFO or /dev/zero would hang the run's start. A
            // file not there yet is the run's error (recordings may be written later).
            if let (Some(file), Some(path)) = (&wire.file, &spec.file)
                && let Err(e) = crate::model::limits::open_regular(
                    path,
                    crate::model::limits::MAX_REPLAY_FILE_BYTES,
                )
                && e != crate::model::limits::FileProblem::NotFound
            {
                ctx.error(field(node, "file"), format!("replay file `{file}` {e}"));
            }
        }
        ProviderKind::Echo => {}
    }
}

pub(crate) fn duration_field(
    ctx: &mut Ctx,
    node: &Node,
    name: &str,
    v: &Value,
) -> Option<Duration> {
    let parsed = match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| *s >= 0.0 && s.is_finite())
            .map(Duration::from_secs_f64),
        Value::String(s) => crate::model::duration::parse(s),
        _ => None,
    };
    if parsed.is_none() {
        ctx.error(
            node,
            format!("{name} must be a duration like `500ms`, `60s`, `2m` or `1h`"),
        );
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::yaml::parse;

    fn load(text: &str) -> (Option<ProviderSpec>, Vec<String>) {
        let node = parse(text).expect("yaml").expect("doc");
        let mut ctx = Ctx::new(Path::new("p.yaml"), true);
        let spec = decode(&mut ctx, &node, Path::new("/proj"));
        (spec, ctx.diags.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn openai_defaults() {
        let (spec, diags) = load(
            "id: gpt\ntype: openai\nmodel: gpt-4o-mini\ntimeout: 2m\nretries: {max: 2, base_delay: 250ms}\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let spec = spec.expect("spec");
        assert_eq!(spec.base_url.as_deref(), Some("https://api.openai.com/v1"));
        assert_eq!(spec.api_key_env.as_deref(), Some("OPENAI_API_KEY"));
        assert_eq!(spec.timeout, Duration::from_mins(2));
        assert_eq!(spec.retries.max, 2);
        assert_eq!(spec.retries.base_delay, Duration::from_millis(250));
        assert_eq!(spec.retries.max_delay, Duration::from_secs(30));
        assert_eq!(spec.concurrency, 8);
    }

    #[test]
    fn a_timeout_of_nothing_is_refused() {
        for t in ["0s", "0"] {
            let (_, diags) = load(&format!("id: gpt\ntype: openai\nmodel: m\ntimeout: {t}\n"));
            assert!(
                diags
                    .iter()
                    .any(|d| d.contains("timeout must be more than 0")),
                "{t}: {diags:?}"
            );
        }
    }

    #[test]
    fn anthropic_and_ollama_defaults() {
        let (a, _) = load("id: a\ntype: anthropic\nmodel: claude\n");
        let a = a.expect("a");
        assert_eq!(a.base_url.as_deref(), Some("https://api.anthropic.com"));
        assert_eq!(a.api_key_env.as_deref(), Some("ANTHROPIC_API_KEY"));
        let (o, _) = load("id: o\ntype: ollama\nmodel: llama3\n");
        assert_eq!(
            o.expect("o").base_url.as_deref(),
            Some("http://localhost:11434")
        );
    }

    #[test]
    fn http_headers_stay_unexpanded_and_body_is_json() {
        let (spec, diags) = load(
            "id: h\ntype: http\nurl: http://127.0.0.1:1/x\nheaders: {Authorization: 'Bearer ${EVALWATCH_T_PROV_UNSET}'}\nbody: {q: '{{ question }}', n: 1}\noutput: /answer\nusage: {tokens_in: /u/in, tokens_out: /u/out}\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let http = spec.expect("spec").http.expect("http");
        assert_eq!(http.method, "POST");
        assert_eq!(
            http.headers["Authorization"],
            "Bearer ${EVALWATCH_T_PROV_UNSET}"
        );
        assert_eq!(
            http.body,
            Some(serde_json::json!({"q": "{{ question }}", "n": 1}))
        );
        assert_eq!(http.usage_in.as_deref(), Some("/u/in"));
    }

    #[test]
    fn exec_command_is_split_and_paths_resolve() {
        let (spec, diags) =
            load("id: e\ntype: exec\ncommand: python3 'my bot.py' --x\ncwd: bots\n");
        assert!(diags.is_empty(), "{diags:?}");
        let spec = spec.expect("spec");
        assert_eq!(spec.command, vec!["python3", "my bot.py", "--x"]);
        assert_eq!(spec.cwd, Some(Path::new("/proj/bots").to_path_buf()));
        let (r, _) = load("id: r\ntype: replay\nfile: rec.jsonl\n");
        assert_eq!(
            r.expect("r").file,
            Some(Path::new("/proj/rec.jsonl").to_path_buf())
        );
    }

    #[test]
    fn per_type_required_fields_are_located() {
        let (spec, diags) = load("id: h\ntype: http\nurl: http://x\n");
        assert!(spec.is_none());
        assert_eq!(
            diags,
            vec!["p.yaml:1:1: provider `h` of type `http` needs `output`"]
        );
        let (_, diags) = load("id: r\ntype: replay\n");
        assert_eq!(
            diags,
            vec!["p.yaml:1:1: provider `r` of type `replay` needs `file`"]
        );
        let (_, diags) = load("id: e\ntype: exec\n");
        assert_eq!(
            diags,
            vec!["p.yaml:1:1: provider `e` of type `exec` needs `command`"]
        );
        let (_, diags) = load("id: o\ntype: openai\n");
        assert_eq!(
            diags,
            vec!["p.yaml:1:1: provider `o` of type `openai` needs `model`"]
        );
    }

    #[test]
    fn unknown_type_and_fields_get_suggestions() {
        let (_, diags) = load("id: x\ntype: opeani\nmodel: m\n");
        assert_eq!(
            diags,
            vec![
                "p.yaml:2:7: unknown provider type `opeani` in provider `x`; did you mean `openai`?"
            ]
        );
        let (_, diags) = load("id: x\ntype: openai\nmodle: m\nmodel: m\n");
        assert_eq!(
            diags,
            vec!["p.yaml:3:1: unknown field `modle` in provider `x`; did you mean `model`?"]
        );
    }

    #[test]
    fn bad_durations_and_concurrency() {
        let (_, diags) = load("id: x\ntype: echo\ntimeout: soon\nconcurrency: 0\n");
        assert_eq!(
            diags,
            vec![
                "p.yaml:4:14: concurrency must be at least 1",
                "p.yaml:3:10: timeout must be a duration like `500ms`, `60s`, `2m` or `1h`",
            ]
        );
    }

    #[test]
    fn output_caps_take_sizes_with_units_and_refuse_nonsense() {
        let (spec, diags) = load("id: x\ntype: echo\nmax_output_bytes: 4MiB\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(spec.expect("spec").output_cap(), 4 << 20);
        let (spec, _) = load("id: x\ntype: echo\n");
        assert_eq!(spec.expect("spec").output_cap(), 1 << 20);
        let (_, diags) = load("id: x\ntype: echo\nmax_output_bytes: 2TiB\n");
        assert_eq!(diags.len(), 1);
        assert!(
            diags[0].starts_with("p.yaml:3:19: max_output_bytes must be a size"),
            "{diags:?}"
        );
        let (_, diags) = load("id: x\ntype: echo\nmax_output_bytes: 0\n");
        assert_eq!(diags.len(), 1, "{diags:?}");
    }
}
