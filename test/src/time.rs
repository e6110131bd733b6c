//! Calendar helpers for the glue's `_gmtime_js`, `_localtime_js`, `_mktime_js` and `strftime`
//! (the compute unit runs in UTC: local time == UTC, no DST).

/// `struct tm` on wasm64 emscripten: nine i32 fields, then `long tm_gmtoff` at 40 and
/// `const char *tm_zone` at 48.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tm {
    pub sec: i32,
    pub min: i32,
    pub hour: i32,
    pub mday: i32,
    pub mon: i32,
    pub year: i32,
    pub wday: i32,
    pub yday: i32,
    pub isdst: i32,
    pub gmtoff: i64,
    /// `tm_zone` (only read by strftime's %Z).
    pub zone: String,
}

pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // m 1..=12
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Seconds since the epoch → broken-down UTC time.
pub fn gmtime(t: i64) -> Tm {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let yday = days - days_from_civil(y, 1, 1);
    Tm {
        sec: (secs % 60) as i32,
        min: ((secs / 60) % 60) as i32,
        hour: (secs / 3600) as i32,
        mday: d as i32,
        mon: (m - 1) as i32,
        year: (y - 1900) as i32,
        wday: (days + 4).rem_euclid(7) as i32,
        yday: yday as i32,
        isdst: 0,
        gmtoff: 0,
        zone: String::new(),
    }
}

/// `mktime` in UTC: normalises out-of-range fields like JS `Date` does.
pub fn mktime(tm: &Tm) -> i64 {
    let mon = tm.mon as i64;
    let y = tm.year as i64 + 1900 + mon.div_euclid(12);
    let m = mon.rem_euclid(12) + 1;
    let days = days_from_civil(y, m, 1) + tm.mday as i64 - 1;
    days * 86400 + tm.hour as i64 * 3600 + tm.min as i64 * 60 + tm.sec as i64
}

const WDAY: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MON: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn iso_week(tm: &Tm) -> (i64, i64) {
    // ISO 8601 week-based year and week number.
    let year = tm.year as i64 + 1900;
    let wday = ((tm.wday + 6) % 7) as i64; // Monday = 0
    let yday = tm.yday as i64;
    let mut week = (yday - wday + 10) / 7;
    let mut wyear = year;
    if week < 1 {
        wyear -= 1;
        let prev_days = if is_leap(wyear) { 366 } else { 365 };
        week = (yday + prev_days - wday + 10) / 7;
    } else {
        let days = if is_leap(year) { 366 } else { 365 };
        if week == 53 && (yday - wday + 3) >= days {
            // The week belongs to the next year (Thursday falls in it).
            week = 1;
            wyear += 1;
        }
    }
    (wyear, week)
}

/// C-locale `strftime` into a string.
pub fn strftime(fmt: &[u8], tm: &Tm) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    let name = |a: &str, n: usize| a.chars().take(n).collect::<String>();
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' || i + 1 >= fmt.len() {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = fmt[i];
        if (spec == b'E' || spec == b'O') && i + 1 < fmt.len() {
            i += 1;
            spec = fmt[i];
        }
        i += 1;
        let year = tm.year as i64 + 1900;
        let s: String = match spec {
            b'a' => name(WDAY[tm.wday.rem_euclid(7) as usize], 3),
            b'A' => WDAY[tm.wday.rem_euclid(7) as usize].to_string(),
            b'b' | b'h' => name(MON[tm.mon.rem_euclid(12) as usize], 3),
            b'B' => MON[tm.mon.rem_euclid(12) as usize].to_string(),
            b'c' => String::from_utf8_lossy(&strftime(b"%a %b %d %H:%M:%S %Y", tm)).into_owned(),
            b'C' => format!("{:02}", year.div_euclid(100)),
            b'd' => format!("{:02}", tm.mday),
            b'D' => String::from_utf8_lossy(&strftime(b"%m/%d/%y", tm)).into_owned(),
            b'e' => format!("{:2}", tm.mday),
            b'F' => String::from_utf8_lossy(&strftime(b"%Y-%m-%d", tm)).into_owned(),
            b'g' => format!("{:02}", iso_week(tm).0.rem_euclid(100)),
            b'G' => format!("{}", iso_week(tm).0),
            b'H' => format!("{:02}", tm.hour),
            b'I' => format!("{:02}", if tm.hour % 12 == 0 { 12 } else { tm.hour % 12 }),
            b'j' => format!("{:03}", tm.yday + 1),
            b'm' => format!("{:02}", tm.mon + 1),
            b'M' => format!("{:02}", tm.min),
            b'n' => "\n".into(),
            b'p' => (if tm.hour < 12 { "AM" } else { "PM" }).into(),
            b'r' => String::from_utf8_lossy(&strftime(b"%I:%M:%S %p", tm)).into_owned(),
            b'R' => String::from_utf8_lossy(&strftime(b"%H:%M", tm)).into_owned(),
            b'S' => format!("{:02}", tm.sec),
            b't' => "\t".into(),
            b'T' => String::from_utf8_lossy(&strftime(b"%H:%M:%S", tm)).into_owned(),
            b'u' => format!("{}", if tm.wday == 0 { 7 } else { tm.wday }),
            b'U' => format!("{:02}", (tm.yday + 7 - tm.wday) / 7),
            b'V' => format!("{:02}", iso_week(tm).1),
            b'w' => format!("{}", tm.wday),
            b'W' => format!("{:02}", (tm.yday + 7 - (tm.wday + 6) % 7) / 7),
            b'x' => String::from_utf8_lossy(&strftime(b"%m/%d/%y", tm)).into_owned(),
            b'X' => String::from_utf8_lossy(&strftime(b"%H:%M:%S", tm)).into_owned(),
            b'y' => format!("{:02}", year.rem_euclid(100)),
            b'Y' => format!("{year}"),
            b'z' => {
                let off = tm.gmtoff / 60;
                format!(
                    "{}{:02}{:02}",
                    if off >= 0 { '+' } else { '-' },
                    off.abs() / 60,
                    off.abs() % 60
                )
            }
            b'Z' => tm.zone.clone(),
            b'%' => "%".into(),
            other => format!("%{}", other as char),
        };
        out.extend_from_slice(s.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        for t in [0i64, 951782400, 1700000000, -86400 * 365, 4102444800] {
            let tm = gmtime(t);
            assert_eq!(mktime(&tm), t);
        }
        let tm = gmtime(1700000000);
        assert_eq!(
            String::from_utf8(strftime(b"%Y-%m-%d %H:%M:%S %a %j %V", &tm)).unwrap(),
            "2023-11-14 22:13:20 Tue 318 46"
        );
        assert_eq!(
            String::from_utf8(strftime(b"%c", &tm)).unwrap(),
            "Tue Nov 14 22:13:20 2023"
        );
    }
}
