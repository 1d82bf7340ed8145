//! Key paths and their lines: errors found after deserialization no longer carry positions, so the
//! line of a key is found again in the text by following the keys down the indentation.

/// A key path as serde_yaml writes it in its own errors: `<kind>.<target>.queries[1].values`.
pub(crate) fn key_path(path: &[&str]) -> String {
    let mut out = String::new();
    for key in path {
        if key.parse::<usize>().is_ok() {
            out.push('[');
            out.push_str(key);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(key);
        }
    }
    out
}

/// The line (1-based) of the last key of `path`, found by following the keys down the indentation.
/// Good enough for errors found after deserialization, where serde no longer knows positions; `None`
/// when the key is not in the text (it came from the environment, for instance).
pub(crate) fn locate(text: &str, path: &[&str]) -> Option<usize> {
    let mut min_indent = 0usize;
    let mut start = 0usize;
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    // The line of the list item just entered, whose first key follows its dash.
    let mut item_line: Option<usize> = None;
    for key in path {
        // A flow mapping (`labels: {job: x}`) keeps its keys on the parent's line.
        let on_parent_line = found
            .and_then(|n: usize| lines.get(n - 1))
            .and_then(|line| line.split_once('{'))
            .is_some_and(|(_, rest)| rest.contains(&format!("{key}:")));
        if on_parent_line {
            continue;
        }
        // A list index into a flow sequence (`allowed_targets: [a, b]`): the items share the
        // parent's line.
        if let (Ok(_), Some(n)) = (key.parse::<usize>(), found)
            && lines
                .get(n - 1)
                .and_then(|line| line.split_once(':'))
                .is_some_and(|(_, value)| value.trim_start().starts_with('['))
        {
            return found;
        }
        // A list index (`queries.2`): the third `- ` item below the parent. Its first key sits on the
        // dash line itself, so the next key is searched from that line on.
        if let (Ok(index), Some(_)) = (key.parse::<usize>(), found) {
            let mut seen = 0usize;
            let mut dash_indent = None;
            let mut hit = None;
            for (i, line) in lines.iter().enumerate().skip(start) {
                let indent = line.len() - line.trim_start().len();
                let body = line.trim_start();
                if body.is_empty() || body.starts_with('#') {
                    continue;
                }
                if indent < min_indent.saturating_sub(1) && !body.starts_with('-') {
                    break;
                }
                if body.starts_with("- ") || body == "-" {
                    let d = *dash_indent.get_or_insert(indent);
                    if indent == d {
                        if seen == index {
                            hit = Some((i, indent));
                            break;
                        }
                        seen += 1;
                    }
                } else if dash_indent.is_some_and(|d| indent <= d) {
                    break;
                }
            }
            let (i, indent) = hit?;
            found = Some(i + 1);
            start = i;
            // Keys of the item are indented past its dash, the first one on the dash line.
            min_indent = indent + 1;
            item_line = Some(i);
            continue;
        }
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let mut indent = line.len() - line.trim_start().len();
            if item_line == Some(i) {
                indent += 2;
            }
            let body = line.trim_start().trim_start_matches("- ");
            if found.is_some() && indent < min_indent && !line.trim().is_empty() {
                break;
            }
            let unquoted = body
                .strip_prefix(['"', '\''])
                .map(|b| b.replacen(['"', '\''], "", 1))
                .unwrap_or_else(|| body.to_owned());
            if indent >= min_indent && unquoted.starts_with(&format!("{key}:")) {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        found = Some(i + 1);
        start = i + 1;
        min_indent = indent + 1;
        item_line = None;
    }
    found
}

/// Where `key` is repeated in the block mapping that starts at `line` and `column` (1-based, as
/// serde_yaml reports a duplicate): the lines of its first and second occurrence. `None` when the
/// mapping is not a block mapping whose keys can be found that way (a flow mapping, a quoted key
/// with escapes).
pub(super) fn duplicate(
    text: &str,
    line: usize,
    column: usize,
    key: &str,
) -> Option<(usize, usize)> {
    let indent = column.checked_sub(1)?;
    let wanted = format!("{key}:");
    let mut first = None;
    for (i, text_line) in text.lines().enumerate().skip(line.checked_sub(1)?) {
        let body = if i + 1 == line {
            // The mapping's first key may follow a list item's dash on this line.
            text_line.get(indent..)?
        } else {
            let body = text_line.trim_start();
            let own = text_line.len() - body.len();
            if body.is_empty() || body.starts_with('#') || own > indent {
                continue;
            }
            if own < indent {
                break;
            }
            body
        };
        let unquoted = body
            .strip_prefix(['"', '\''])
            .map(|b| b.replacen(['"', '\''], "", 1))
            .unwrap_or_else(|| body.to_owned());
        if unquoted.starts_with(&wanted) {
            match first {
                None => first = Some(i + 1),
                Some(first) => return Some((first, i + 1)),
            }
        }
    }
    None
}
