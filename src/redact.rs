//! Text fit for a page anyone with network access can open.

/// Longest error text kept for the status page.
const MAX_ERROR_CHARS: usize = 500;

/// Make an error message fit for a page anyone with network access can open. Collectors already keep
/// secrets out of their errors; this is the second line of defence for text they pass on from
/// elsewhere (a redirect's `Location`, a server's message): of every URL only the scheme, host and
/// port stay (userinfo, path, query and fragment are replaced), line breaks are flattened, and the
/// text is cut to a bounded length.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_ERROR_CHARS + 3));
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The URL runs to the next whitespace or quote.
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        // Userinfo ends at the last `@` (sloppy text may put a `/` in a password; an `@` in a path
        // only costs the host its visibility).
        let host_part = match url.rfind('@') {
            Some(at) => {
                out.push_str("[REDACTED]@");
                &url[at + 1..]
            }
            None => url,
        };
        // Path, query and fragment may all carry tokens; the host and port are what tell targets apart.
        match host_part.find(['/', '?', '#', ';']) {
            Some(cut) => {
                out.push_str(&host_part[..cut]);
                out.push_str("/[REDACTED]");
            }
            None => out.push_str(host_part),
        }
        rest = tail;
    }
    out.push_str(rest);
    let flat: String = out
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_url_credentials_and_queries_and_bounds_the_text() {
        let cases = [
            (
                "redirect to https://user:s3cret@example.com/x?token=abc failed",
                "redirect to https://[REDACTED]@example.com/[REDACTED] failed",
            ),
            (
                "GET http://example.com:8080 refused",
                "GET http://example.com:8080 refused",
            ),
            (
                "GET http://example.com:8080/hooks/T0KEN/ping refused",
                "GET http://example.com:8080/[REDACTED] refused",
            ),
            (
                "a redis://:pw@h:6379/0 and \"http://u@h?k=v\"\nnext",
                "a redis://[REDACTED]@h:6379/[REDACTED] and \"http://[REDACTED]@h/[REDACTED]\" next",
            ),
            (
                "to https://app/cb#access_token=SECRET",
                "to https://app/[REDACTED]",
            ),
            (
                "http://user:pa/ss@host:1 down",
                "http://[REDACTED]@host:1 down",
            ),
            ("http://h;jsessionid=S3", "http://h/[REDACTED]"),
        ];
        for (raw, expected) in cases {
            assert_eq!(redact(raw), expected, "{raw}");
        }
        let long = "x".repeat(2000);
        let cut = redact(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS + 3);
        assert!(cut.ends_with("..."));
        assert_eq!(
            redact("no url: connection refused"),
            "no url: connection refused"
        );
    }
}
