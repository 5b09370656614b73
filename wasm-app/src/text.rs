//! Guest-chosen text made safe to show: capped and escaped, so a guest can
//! neither flood the host's output nor drive its terminal.

/// The most bytes of guest-chosen text (an error or panic message) the host
/// keeps. Longer messages are cut, and say so.
pub const MAX_GUEST_TEXT: usize = 4096;

/// Guest-chosen bytes made fit for a log line or a terminal: invalid UTF-8
/// is replaced, every control character (escape sequences, newlines, NUL,
/// ...) is escaped, and the result is at most [`MAX_GUEST_TEXT`] bytes (plus
/// a note of how much was cut), so a guest can neither flood the host's
/// output nor drive its terminal.
pub fn guest_text(bytes: &[u8]) -> String {
    let read = &bytes[..bytes.len().min(MAX_GUEST_TEXT)];
    guest_text_read(read, (bytes.len() - read.len()) as u64)
}

/// A schema a guest chose, for an error message: `name: type` per field,
/// each name and type capped at 256 bytes and escaped, the whole at most
/// about [`MAX_GUEST_TEXT`] bytes (a result's field names can be megabytes
/// of control characters).
pub fn schema_text(schema: &arrow::datatypes::Schema) -> String {
    const PART: usize = 256;
    let capped = |s: &str| guest_text(&s.as_bytes()[..s.len().min(PART)]);
    let fields = schema.fields();
    let mut out = String::from("(");
    for (i, f) in fields.iter().enumerate() {
        if out.len() >= MAX_GUEST_TEXT {
            out.push_str(&format!(", and {} more fields", fields.len() - i));
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        let data_type = f.data_type().to_string();
        out.push_str(&format!("{}: {}", capped(f.name()), capped(&data_type)));
    }
    out.push(')');
    out
}

/// As [`guest_text`], for the first bytes of a message of which `unread`
/// more bytes were left in guest memory.
pub(crate) fn guest_text_read(read: &[u8], unread: u64) -> String {
    let text = String::from_utf8_lossy(read);
    let text = text.trim();
    let mut out = String::with_capacity(text.len().min(MAX_GUEST_TEXT) + 32);
    let mut used = 0;
    for c in text.chars() {
        let before = out.len();
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > MAX_GUEST_TEXT {
            out.truncate(before);
            break;
        }
        used += c.len_utf8();
    }
    let cut = unread + (text.len() - used) as u64;
    if cut > 0 {
        out.push_str(&format!(" … ({cut} more bytes cut)"));
    }
    out
}

/// Characters a guest could use to drive a terminal or make a line read
/// differently from what it holds: controls, and bidirectional overrides
/// and line separators.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with control characters written as escapes (`\n`, `\u{1b}`).
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Formats a byte count the way [`parse_size`](crate::policy::parse_size)
/// reads it back.
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_is_capped_and_escaped() {
        let evil = format!("\x1b[2J\x1b]0;pwned\x07{}", "A".repeat(10 << 20));
        let shown = guest_text(evil.as_bytes());
        assert!(shown.len() < MAX_GUEST_TEXT + 200, "{}", shown.len());
        assert!(!shown.chars().any(char::is_control), "{shown:.80}");
        assert!(shown.starts_with("\\u{1b}[2J"), "{shown:.80}");
        assert!(
            shown.ends_with("more bytes cut)"),
            "{}",
            &shown[shown.len() - 40..]
        );
        assert_eq!(guest_text(b"plain message"), "plain message");
        assert_eq!(guest_text("a\u{202e}b".as_bytes()), "a\\u{202e}b");
        assert_eq!(guest_text(b"two\nlines\0"), "two\\nlines\\u{0}");
        let zeros = guest_text(&[0; 4096]);
        assert!(zeros.len() < MAX_GUEST_TEXT + 40, "{}", zeros.len());
        assert!(zeros.ends_with("more bytes cut)"));
    }
}
