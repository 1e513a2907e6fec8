//! Go-style duration strings (`2s`, `1m30s`, `1h`, `500ms`): what cron's `@every`, the
//! Temporal CLI and Kubernetes users write.

/// Milliseconds in a duration string; `None` when it is not one.
pub fn parse_millis(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > i64::MAX as f64 / 2.0 {
        return None;
    }
    Some(total as i64)
}

/// Formats milliseconds the way `kubectl` shows ages: `45s`, `3m12s`, `2h5m`, `3d4h`.
pub fn format_millis(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else if ms < 1000 {
        format!("{}ms", ms.max(0))
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse_millis("1m30s"), Some(90_000));
        assert_eq!(parse_millis("250ms"), Some(250));
        assert_eq!(parse_millis("1.5h"), Some(5_400_000));
        assert_eq!(parse_millis("10"), None);
        assert_eq!(parse_millis("5x"), None);
        assert_eq!(parse_millis(""), None);
        assert_eq!(parse_millis("99999999999999999999h"), None);
        assert_eq!(format_millis(63_000), "1m3s");
        assert_eq!(format_millis(7_500_000), "2h5m");
        assert_eq!(format_millis(450), "450ms");
    }
}
