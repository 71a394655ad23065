//! UTC times of the ledger: days, dates and ISO 8601 stamps from milliseconds since the Unix
//! epoch, and `--since` values (`2025-01-31`, `7d`, `12h`).

use super::LedgerError;
use crate::providers::cli::civil_date;

pub const DAY_MS: u64 = 86_400_000;

/// `YYYY-MM-DD` (UTC) of a time.
pub fn date(ms: u64) -> String {
    let (year, month, day) = civil_date((ms / DAY_MS) as i64);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) of a time.
pub fn iso8601(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        date(ms),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms % 1000
    )
}

/// `YYYY-MM-DD HH:MM` (UTC), for tables.
pub fn minute(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!("{} {:02}:{:02}", date(ms), secs / 3600, secs / 60 % 60)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// The start of a `--since` value: a date (`2025-01-31`, midnight UTC) or a span back from
/// `now_ms` (`7d`, `12h`, `30m`).
pub fn parse_since(text: &str, now_ms: u64) -> Result<u64, LedgerError> {
    let bad = || {
        LedgerError::Usage(format!(
            "--since {text:?}: give a date (2025-01-31) or a span back from now (7d, 12h, 30m)"
        ))
    };
    let text = text.trim();
    if let Some((unit_ms, number)) = [("d", DAY_MS), ("h", 3_600_000), ("m", 60_000)]
        .iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|n| (*unit, n)))
        && let Ok(count) = number.parse::<u64>()
    {
        return Ok(now_ms.saturating_sub(count.saturating_mul(unit_ms)));
    }
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return Err(bad());
    };
    let (Ok(year), Ok(month), Ok(day)) = (
        year.parse::<i64>(),
        month.parse::<i64>(),
        day.parse::<i64>(),
    ) else {
        return Err(bad());
    };
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days).map(|d| d * DAY_MS).map_err(|_| bad())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_spans() {
        let ms = parse_since("2025-03-04", 0).unwrap();
        assert_eq!(date(ms), "2025-03-04");
        assert_eq!(iso8601(ms + 3_723_004), "2025-03-04T01:02:03.004Z");
        assert_eq!(parse_since("2d", 10 * DAY_MS).unwrap(), 8 * DAY_MS);
        assert!(parse_since("yesterday", 0).is_err());
        assert!(parse_since("2025-13-01", 0).is_err());
    }
}
