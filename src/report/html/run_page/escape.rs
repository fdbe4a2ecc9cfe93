//! The escaping of everything a run page shows: tera's HTML escaping, byte for byte, with
//! control characters made visible.

use std::fmt::Write as _;

use crate::report::html::MAX_TEXT;

/// Append `text` HTML-escaped exactly as the templates escape it (tera's escaping of
/// `&`, `<`, `>`, `"` and `'`), with control characters made visible: C0 controls but tab,
/// line feed and carriage return as their Unicode control pictures (`\x1b` as `␛`, `\x00` as
/// `␀`, DEL as `␡`), C1 controls as `\u{9b}`, so that no raw control byte reaches a page (a
/// terminal escape, a NUL or a bell in a model output is seen, not obeyed or dropped).
/// Text with none of them, most of it, is copied as it is.
pub(in crate::report::html) fn push_escaped(out: &mut String, text: &str) {
    let Some(first) = text.bytes().position(|b| {
        matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | 0x7f | 0xc2)
            || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    }) else {
        out.push_str(text);
        return;
    };
    out.push_str(&text[..first]);
    let mut buf = Vec::with_capacity(text.len() - first + 16);
    // Writing into a Vec cannot fail.
    let _ = escape_visible(&text[first..], &mut buf);
    // ASCII bytes were replaced by ASCII, controls by whole characters: still UTF-8.
    out.push_str(&String::from_utf8_lossy(&buf));
}

/// The pages' escaping (the template engine's too, [`super::engine_of`]): tera's HTML
/// escaping, and control characters made visible ([`push_escaped`]).
pub(in crate::report::html) fn escape_visible(
    text: &str,
    buf: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut rest = text;
    while let Some((at, c)) = rest.char_indices().find(|&(_, c)| is_hidden_control(c)) {
        tera::escape_html(&rest[..at], buf)?;
        let mut symbol = String::new();
        push_control(&mut symbol, c);
        buf.write_all(symbol.as_bytes())?;
        rest = &rest[at + c.len_utf8()..];
    }
    tera::escape_html(rest, buf)
}

/// A control character a page would not show as itself (all but tab, LF and CR).
fn is_hidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// A control character as a visible symbol: C0 and DEL as their control pictures
/// (U+2400..U+2421), C1 as `\u{..}`.
fn push_control(out: &mut String, c: char) {
    let code = u32::from(c);
    let picture = match code {
        0..=0x1f => char::from_u32(0x2400 + code),
        0x7f => Some('\u{2421}'),
        _ => None,
    };
    match picture {
        Some(p) => out.push(p),
        None => {
            let _ = write!(out, "\\u{{{code:x}}}");
        }
    }
}

/// [`super::clip`], escaped, without the intermediate copy.
pub(super) fn push_clipped(out: &mut String, text: &str) {
    // At most MAX_TEXT bytes is at most MAX_TEXT characters: nothing to cut.
    if text.len() <= MAX_TEXT {
        push_escaped(out, text);
        return;
    }
    match text.char_indices().nth(MAX_TEXT) {
        None => push_escaped(out, text),
        Some((at, _)) => {
            push_escaped(out, &text[..at]);
            let _ = write!(
                out,
                "\n… [{} more characters not shown]",
                text[at..].chars().count()
            );
        }
    }
}
