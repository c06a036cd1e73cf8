//! The date line of a forwarded header block, as mail clients print it for
//! people: `Mon, Dec 1, 2026 at 10:00 AM` (Gmail), `Monday, December 1,
//! 2026 10:00 AM` (Outlook), `1 December 2026 at 10:00:00 CET` (Apple
//! Mail), `Montag, 1. Dezember 2026 10:00` (German), `lun. 1 déc. 2026 à
//! 10:00` (French), RFC 5322 dates (Thunderbird), and numeric `01.12.2026
//! 10:00` / `2026-12-01 10:00` forms. Month names in the seven languages
//! of `crate::reply::markers`. A zone written as `+0100` or `GMT+1` is applied;
//! without one the time is taken as UTC. Unparseable: `None` (the
//! forward's own date is used instead).

/// Month names and their common abbreviations, lower-cased, by month.
const MONTHS: [&[&str]; 12] = [
    &[
        "jan", "january", "januar", "janvier", "enero", "gennaio", "janeiro", "januari", "jänner",
        "janv", "ene", "gen",
    ],
    &[
        "feb",
        "february",
        "februar",
        "février",
        "fevrier",
        "févr",
        "febrero",
        "febbraio",
        "fevereiro",
        "februari",
        "fev",
        "fév",
    ],
    &[
        "mar", "march", "märz", "marz", "mars", "marzo", "março", "marco", "maart", "mär", "mrt",
    ],
    &["apr", "april", "avril", "abril", "aprile", "avr", "abr"],
    &["may", "mai", "mayo", "maggio", "maio", "mei", "mag"],
    &[
        "jun", "june", "juni", "juin", "junio", "giugno", "junho", "giu",
    ],
    &[
        "jul", "july", "juli", "juillet", "julio", "luglio", "julho", "juil", "lug",
    ],
    &["aug", "august", "août", "aout", "agosto", "augustus", "ago"],
    &[
        "sep",
        "sept",
        "september",
        "septembre",
        "septiembre",
        "settembre",
        "setembro",
        "set",
    ],
    &[
        "oct", "october", "oktober", "octobre", "octubre", "ottobre", "outubro", "okt", "ott",
        "out",
    ],
    &["nov", "november", "novembre", "noviembre", "novembro"],
    &[
        "dec",
        "december",
        "dezember",
        "décembre",
        "decembre",
        "diciembre",
        "dicembre",
        "dezembro",
        "déc",
        "dez",
        "dic",
    ],
];

fn month(word: &str) -> Option<u32> {
    let w = word.trim_end_matches('.').to_lowercase();
    MONTHS
        .iter()
        .position(|names| names.contains(&w.as_str()))
        .map(|i| i as u32 + 1)
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A zone offset in seconds from `+0100`, `-05:00`, `GMT+1`, `UTC-3`.
fn zone(word: &str) -> Option<i64> {
    let w = word.trim_start_matches("GMT").trim_start_matches("UTC");
    let (sign, digits) = match w.as_bytes().first()? {
        b'+' => (1, &w[1..]),
        b'-' => (-1, &w[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| c.is_ascii_digit()).collect();
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i64>().ok()?, 0),
        3 | 4 => {
            let (h, m) = digits.split_at(digits.len() - 2);
            (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?)
        }
        _ => return None,
    };
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// Unix milliseconds of a human date line, or `None`.
pub fn parse(line: &str) -> Option<i64> {
    let line = line.trim();
    if line.len() > 120 {
        return None;
    }
    let (mut year, mut mon, mut day) = (None::<i64>, None::<u32>, None::<u32>);
    // Month names by token position: a leading weekday may read as a month
    // (`mar.` is Tuesday in French, March in English).
    let mut months: Vec<(usize, u32)> = Vec::new();
    let (mut hour, mut min, mut sec) = (None::<u32>, 0u32, 0u32);
    let mut pm = None::<bool>;
    let mut offset = 0i64;
    let words = line
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.trim_matches(|c: char| c == '(' || c == ')'))
        .filter(|w| !w.is_empty());
    for (i, w) in words.enumerate() {
        if let Some(z) = (w.starts_with(['+', '-']) || w.starts_with("GMT") || w.starts_with("UTC"))
            .then(|| zone(w))
            .flatten()
        {
            offset = z;
            continue;
        }
        let lower = w.to_lowercase();
        match lower.as_str() {
            "am" | "a.m." => pm = Some(false),
            "pm" | "p.m." => pm = Some(true),
            _ => {}
        }
        if w.contains(':') && hour.is_none() {
            let mut parts = w.split(':').map(|p| {
                p.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse::<u32>()
                    .ok()
            });
            if let Some(Some(h)) = parts.next() {
                min = parts.next().flatten().unwrap_or(0);
                sec = parts.next().flatten().unwrap_or(0);
                hour = Some(h);
            }
            continue;
        }
        if let Some(m) = month(w) {
            months.push((i, m));
            continue;
        }
        // 01.12.2026, 1/12/2026 (day first, as Europe writes it), 2026-12-01.
        let nums: Vec<&str> = w.split(['.', '/', '-']).filter(|p| !p.is_empty()).collect();
        if nums.len() == 3 && nums.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())) {
            let n: Vec<i64> = nums.iter().filter_map(|p| p.parse().ok()).collect();
            if n.len() == 3 {
                let (y, m, d) = if nums[0].len() == 4 {
                    (n[0], n[1], n[2])
                } else {
                    (n[2], n[1], n[0])
                };
                year = Some(y);
                mon = Some(m as u32);
                day = Some(d as u32);
            }
            continue;
        }
        let digits = w.trim_end_matches('.');
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            let n: i64 = digits.parse().ok()?;
            if digits.len() == 4 {
                year = Some(n);
            } else if day.is_none() && (1..=31).contains(&n) {
                day = Some(n as u32);
            }
        }
    }
    let named = match months.as_slice() {
        [(0, _), (_, m), ..] => Some(*m),
        [(_, m), ..] => Some(*m),
        [] => None,
    };
    let (y, m, d) = (year?, mon.or(named)?, day?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut h = hour.unwrap_or(0);
    match pm {
        Some(true) if h < 12 => h += 12,
        Some(false) if h == 12 => h = 0,
        _ => {}
    }
    if h > 23 || min > 59 || sec > 60 {
        return None;
    }
    let secs = days_from_civil(y, m, d) * 86_400 + i64::from(h * 3600 + min * 60 + sec) - offset;
    Some(secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::parse;

    /// 2026-12-01 10:00:00 UTC.
    const T: i64 = 1_796_119_200_000;

    #[test]
    fn clients_date_lines() {
        for line in [
            "Tue, Dec 1, 2026 at 10:00 AM",
            "Tuesday, December 1, 2026 10:00 AM",
            "1 December 2026 at 10:00:00 GMT",
            "Dienstag, 1. Dezember 2026 11:00 +0100",
            "mar. 1 déc. 2026 à 11:00 GMT+1",
            "martes, 1 de diciembre de 2026 10:00",
            "martedì 1 dicembre 2026 10:00",
            "terça-feira, 1 de dezembro de 2026 10:00",
            "dinsdag 1 december 2026 10:00",
            "Tue, 1 Dec 2026 05:00:00 -0500",
            "01.12.2026 10:00",
            "2026-12-01 10:00",
        ] {
            assert_eq!(parse(line), Some(T), "{line}");
        }
        assert_eq!(parse("Tue, Dec 1, 2026 at 12:30 PM"), Some(T + 9_000_000));
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse("December 2026"), None);
        assert_eq!(parse("31.02.2026 25:00"), None);
    }
}
