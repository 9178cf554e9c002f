//! Splitting a message that exceeds a channel's size limit into several messages instead of
//! cutting it: WeCom's markdown content holds 4096 bytes, DingTalk's 20000 and Feishu's request
//! body 20 KB, and a digest folded under a rate budget can list hundreds of alerts. Cutting would
//! drop alerts from the message; every line is kept, in order, across numbered parts.

/// Bytes reserved in each part for its "(part i/n)" header.
const HEADER_RESERVE: usize = 32;

/// Splits `content` into parts of at most `max` bytes, at line boundaries where possible (a line
/// longer than a part is cut at char boundaries, never dropped). One part is returned unchanged;
/// several get a `(part i/n)` header line.
pub fn split(content: &str, max: usize) -> Vec<String> {
    if content.len() <= max {
        return vec![content.to_string()];
    }
    let room = max.saturating_sub(HEADER_RESERVE).max(4);
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    for line in content.split_inclusive('\n') {
        let mut line = line;
        while !line.is_empty() {
            if cur.len() + line.len() <= room {
                cur.push_str(line);
                break;
            }
            if !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            // A single line longer than a part: cut it at a char boundary.
            let mut end = room.min(line.len());
            while end > 0 && !line.is_char_boundary(end) {
                end -= 1;
            }
            if end == 0 {
                // `room` is smaller than one char; take the whole char anyway.
                end = line.chars().next().map(char::len_utf8).unwrap_or(line.len());
            }
            parts.push(line[..end].to_string());
            line = &line[end..];
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| format!("(part {}/{n})\n{}", i + 1, p.trim_end_matches('\n')))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_content_is_one_unchanged_part() {
        assert_eq!(split("a\nb\n", 100), vec!["a\nb\n".to_string()]);
    }

    #[test]
    fn every_line_survives_in_order_within_the_limit() {
        let lines: Vec<String> = (0..500).map(|i| format!("- **Alert{i}** 告警 {i}")).collect();
        let content = lines.join("\n");
        let parts = split(&content, 4096);
        assert!(parts.len() > 1);
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= 4096, "part {i} has {} bytes", p.len());
            assert!(
                p.starts_with(&format!("(part {}/{})\n", i + 1, parts.len())),
                "{p}"
            );
        }
        let joined: Vec<&str> = parts.iter().flat_map(|p| p.lines().skip(1)).collect();
        assert_eq!(joined, lines.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn an_overlong_line_is_cut_not_dropped() {
        let long = "告".repeat(3000);
        let parts = split(&long, 4096);
        assert!(parts.iter().all(|p| p.len() <= 4096));
        let body: String = parts
            .iter()
            .map(|p| p.split_once('\n').map(|x| x.1).unwrap_or_default())
            .collect();
        assert_eq!(body, long);
    }
}
