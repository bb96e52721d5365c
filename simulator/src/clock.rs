//! Virtual time: the only source of "now" in the host model.
//!
//! The model never reads the wall clock. Time is a [`SimTime`] (milliseconds since the Unix epoch)
//! that only moves when the owner calls `advance`. Interactive use (a server a person pokes at) maps
//! wall time onto virtual time through [`RealTimeClock`], which lives here so that the one place that
//! touches `std::time::Instant` is outside `host`.

use std::fmt;
use std::time::{Duration, Instant};

/// A point in virtual time: milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// Where a fresh model's clock starts unless told otherwise: 2024-01-01T00:00:00Z.
pub const DEFAULT_EPOCH: SimTime = SimTime(1_704_067_200_000);

impl SimTime {
    pub const fn from_secs(secs: u64) -> Self {
        SimTime(secs * 1000)
    }
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }
    /// Saturating: virtual time never wraps.
    pub fn plus(self, d: Duration) -> SimTime {
        SimTime(
            self.0
                .saturating_add(d.as_millis().min(u64::MAX as u128) as u64),
        )
    }
    pub fn since(self, earlier: SimTime) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
    /// Broken-down UTC date and time.
    pub fn civil(self) -> Civil {
        let secs = self.as_secs();
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
            weekday: ((days + 4).rem_euclid(7)) as u8, // 1970-01-01 was a Thursday
        }
    }
    /// `date`'s default output, as busybox prints it on ESXi: `Mon Jan  1 00:00:00 UTC 2024`.
    pub fn to_date_string(self) -> String {
        let c = self.civil();
        format!(
            "{} {} {:>2} {:02}:{:02}:{:02} UTC {}",
            WEEKDAYS[c.weekday as usize],
            MONTHS[c.month as usize - 1],
            c.day,
            c.hour,
            c.minute,
            c.second,
            c.year
        )
    }
    /// RFC 3339 with milliseconds (`2024-01-01T00:00:00.250Z`), as logs write times.
    pub fn to_rfc3339_millis(self) -> String {
        let c = self.civil();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            self.0 % 1000
        )
    }
    /// ISO 8601 / xsd:dateTime, as the vSphere API writes times: `2024-01-01T00:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        let c = self.civil();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }
}

/// `HH:MM` for event logs, with the day when it is not the first one.
impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.civil();
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// 0 = Sunday.
    pub weekday: u8,
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses an `xsd:dateTime` as clients send it (`EventFilterSpec.time`): `2024-01-01T10:00:00`
/// with optional fractional seconds (kept to the millisecond) and a `Z` or `±hh:mm` offset
/// (none: UTC). Times before 1970 clamp to the epoch, which is before any virtual time.
pub fn parse_xsd_datetime(s: &str) -> Option<SimTime> {
    let s = s.trim();
    let base = s.get(..19)?;
    let mut rest = &s[19..];
    let mut millis = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 12 {
            return None;
        }
        let ms: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = ms.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_secs: i64 = match rest {
        "" | "Z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let h: i64 = o[1..3].parse().ok()?;
            let m: i64 = o[4..6].parse().ok()?;
            if h > 14 || m > 59 {
                return None;
            }
            let v = h * 3600 + m * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let t = parse_rfc3339(&format!("{base}Z"))?;
    let ms = t.as_millis() as i64 + millis as i64 - offset_secs * 1000;
    Some(SimTime(ms.max(0) as u64))
}

/// Parses the `--start` style of a clock origin: `2024-01-01T00:00:00Z` (the `Z` is required).
pub fn parse_rfc3339(s: &str) -> Option<SimTime> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    // days_from_civil, the inverse of the above.
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = SimTime::from_secs((days * 86_400 + h * 3600 + mi * 60 + se) as u64);
    // Reject dates such as 02-31 that normalise to another day.
    (t.civil().day as i64 == d).then_some(t)
}

/// `500ms`, `90s`, `10m`, `2h`, `3d`: durations as command lines and scenario files spell them.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (like 90s, 10m, 2h)"))?;
    let scale: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{s}': the unit must be ms, s, m, h or d")),
    };
    let ms = n
        .checked_mul(scale)
        .ok_or_else(|| format!("'{s}' is too long a duration"))?;
    Ok(Duration::from_millis(ms))
}

/// Maps wall-clock time onto virtual time at a speed factor, for interactive servers.
///
/// `now()` is `origin + (wall elapsed × speed)`; changing the speed re-bases so virtual time never
/// jumps backwards. The model is still driven by explicit `advance_to(clock.now())` calls.
///
/// Whoever sleeps until a virtual time (a waiting WaitForUpdates, `vim::changes`) converts it
/// with [`RealTimeClock::wall_until`], and watches [`RealTimeClock::rebased`]: a skip or a new
/// speed moves every such instant.
#[derive(Debug, Clone)]
pub struct RealTimeClock {
    wall_origin: Instant,
    virtual_origin: SimTime,
    speed: f64,
    rebased: tokio::sync::watch::Sender<u64>,
}

impl RealTimeClock {
    pub fn new(start: SimTime, speed: f64) -> Self {
        RealTimeClock {
            wall_origin: Instant::now(),
            virtual_origin: start,
            speed: sanitize_speed(speed),
            rebased: tokio::sync::watch::Sender::new(0),
        }
    }
    /// Changes each time the mapping does (a skip, a new speed).
    pub fn rebased(&self) -> tokio::sync::watch::Receiver<u64> {
        self.rebased.subscribe()
    }
    fn rebase(&self) {
        self.rebased.send_modify(|g| *g = g.wrapping_add(1));
    }
    /// Wall time until virtual time reaches `t` at the current speed (zero if it has; None if
    /// the clock stands still). Rounded up, so that after sleeping it `now() >= t`.
    pub fn wall_until(&self, t: SimTime) -> Option<Duration> {
        let left = t.since(self.now());
        if left.is_zero() {
            return Some(Duration::ZERO);
        }
        if self.speed <= 0.0 {
            return None;
        }
        let secs = left.as_secs_f64() / self.speed;
        // A day is as good as forever to a waiter (and keeps the sum below finite).
        Some(Duration::from_secs_f64(secs.min(86_400.0)) + Duration::from_millis(1))
    }
    pub fn now(&self) -> SimTime {
        self.at(Instant::now())
    }
    fn at(&self, wall: Instant) -> SimTime {
        let elapsed = wall
            .saturating_duration_since(self.wall_origin)
            .as_secs_f64();
        let virt_ms = (elapsed * self.speed * 1000.0).min(u64::MAX as f64 / 2.0);
        SimTime(self.virtual_origin.0.saturating_add(virt_ms as u64))
    }
    pub fn speed(&self) -> f64 {
        self.speed
    }
    pub fn set_speed(&mut self, speed: f64) {
        let now = Instant::now();
        self.virtual_origin = self.at(now);
        self.wall_origin = now;
        self.speed = sanitize_speed(speed);
        self.rebase();
    }
    /// Jumps virtual time forward (the control API's "advance"); never backwards.
    pub fn skip(&mut self, d: Duration) {
        self.virtual_origin = self.virtual_origin.plus(d);
        self.rebase();
    }
}

fn sanitize_speed(speed: f64) -> f64 {
    if speed.is_finite() && speed >= 0.0 {
        speed
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(DEFAULT_EPOCH.to_rfc3339(), "2024-01-01T00:00:00Z");
        assert_eq!(
            DEFAULT_EPOCH.to_date_string(),
            "Mon Jan  1 00:00:00 UTC 2024"
        );
        for s in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T12:34:56Z",
            "2024-12-31T23:59:59Z",
            "2100-03-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(s).unwrap().to_rfc3339(), s);
        }
        assert_eq!(parse_rfc3339("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2023-02-01 00:00:00"), None);
        assert_eq!(parse_rfc3339("2023-02-01T00:00:00+01:00"), None);
    }

    #[test]
    fn xsd_datetimes_take_fractions_and_offsets() {
        let t = |s| parse_xsd_datetime(s).map(|t| t.as_millis());
        let base = parse_rfc3339("2024-01-01T10:00:00Z").unwrap().as_millis();
        assert_eq!(t("2024-01-01T10:00:00Z"), Some(base));
        assert_eq!(t("2024-01-01T10:00:00"), Some(base));
        assert_eq!(t("2024-01-01T10:00:00.5Z"), Some(base + 500));
        assert_eq!(t("2024-01-01T10:00:00.123456789Z"), Some(base + 123));
        assert_eq!(t("2024-01-01T11:30:00+01:30"), Some(base));
        assert_eq!(t("2024-01-01T09:00:00-01:00"), Some(base));
        assert_eq!(t("1970-01-01T00:00:00+01:00"), Some(0));
        for bad in [
            "",
            "2024-01-01",
            "2024-01-01T10:00:00.Z",
            "2024-01-01T10:00:00+1:00",
            "2024-01-01T10:00:00 UTC",
            "2024-01-01T10:00:00+15:00",
            "2024-01-01T10:00:0\u{e9}",
            "2024-01-01T10:00:00.\u{e9}",
        ] {
            assert_eq!(t(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_parse_with_units_and_refuse_the_rest() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 10m "), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(3 * 86_400)));
        for bad in ["", "10", "ten", "10x", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        // Overflow is an error, not a panic.
        assert!(parse_duration("18446744073709551615d")
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn real_time_clock_scales_and_never_goes_back() {
        let mut c = RealTimeClock::new(DEFAULT_EPOCH, 60.0);
        let a = c.now();
        c.set_speed(0.0);
        let b = c.now();
        assert!(b >= a);
        c.skip(Duration::from_secs(600));
        assert!(c.now() >= b.plus(Duration::from_secs(600)));
        c.set_speed(f64::NAN);
        assert_eq!(c.speed(), 1.0);
    }

    #[test]
    fn wall_until_scales_by_speed_and_moves_of_the_clock_are_announced() {
        let mut c = RealTimeClock::new(DEFAULT_EPOCH, 0.0);
        let rebased = c.rebased();
        let t = DEFAULT_EPOCH.plus(Duration::from_secs(10));
        assert_eq!(
            c.wall_until(t),
            None,
            "a clock that stands still never gets there"
        );
        assert_eq!(c.wall_until(DEFAULT_EPOCH), Some(Duration::ZERO));
        c.set_speed(10.0);
        let w = c.wall_until(t).unwrap();
        assert!(
            w > Duration::from_millis(900) && w <= Duration::from_millis(1001),
            "{w:?}"
        );
        assert!(rebased.has_changed().unwrap());
        let mut rebased = c.rebased();
        c.skip(Duration::from_secs(20));
        assert!(rebased.has_changed().unwrap());
        rebased.mark_unchanged();
        assert_eq!(c.wall_until(t), Some(Duration::ZERO));
    }
}
