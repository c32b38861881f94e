//! The other extreme values of the event contracts, with their verdicts (see `numbers`):
//! identifiers, event times and their offsets, suppression expiries, message keys.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, SecondsFormat, Utc};

use super::numbers::{Why, INVALID, MISMATCH, OK, UNWRITABLE_YEAR};

/// Identifiers (key columns, at most 256 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IdKind {
    Plain,
    /// Padded with ASCII to this many bytes.
    Ascii(usize),
    /// Padded with 2-, 3- and 4-byte characters to this many bytes.
    Unicode(usize),
    /// Holds ':' (the key separator).
    Colon,
    /// Quotes, backslashes, control and non-characters, a zero-width space.
    Odd,
}

pub const ID_KINDS: &[IdKind] = &[
    IdKind::Plain,
    IdKind::Ascii(256),
    IdKind::Unicode(256),
    IdKind::Colon,
    IdKind::Odd,
    IdKind::Ascii(257),
    IdKind::Unicode(257),
];

/// Tenants are all valid: a case's tenant must be able to hold its events.
pub const TENANT_KINDS: &[IdKind] =
    &[IdKind::Plain, IdKind::Ascii(256), IdKind::Unicode(256), IdKind::Colon, IdKind::Odd];

impl IdKind {
    /// The identifier made from `base` (unique where the caller needs it to be).
    pub fn render(self, base: &str) -> String {
        match self {
            IdKind::Plain => base.to_owned(),
            IdKind::Ascii(n) => format!("{base}{}", "a".repeat(n - base.len())),
            IdKind::Unicode(n) => {
                let mut s = format!("{base}-");
                for c in ['é', '中', '😀'].iter().cycle() {
                    if s.len() + c.len_utf8() > n {
                        break;
                    }
                    s.push(*c);
                }
                let pad = n - s.len();
                s + &"u".repeat(pad)
            }
            IdKind::Colon => format!("{base}:x:y"),
            IdKind::Odd => format!("{base}\"\\\n\t\u{1}\u{7f}\u{ffff}\u{10ffff}\u{200b} ';--"),
        }
    }

    pub fn why(self) -> Why {
        match self {
            IdKind::Ascii(n) | IdKind::Unicode(n) if n > 256 => INVALID,
            _ => OK,
        }
    }
}

/// The event time, relative to the processing time `now` the batch is decoded at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    MinutesAgo(u16),
    /// Exactly the retention horizon (400 days) ago: still accepted.
    Oldest,
    /// One nanosecond older.
    TooOld,
    /// Exactly one hour ahead: still accepted.
    Ahead,
    /// One nanosecond further.
    TooFar,
    /// Yesterday's 23:59:60.5, a leap second (RFC 3339 allows `60`).
    LeapSecond,
}

impl When {
    pub fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let ns = Duration::nanoseconds(1);
        match self {
            When::MinutesAgo(m) => now - Duration::minutes(i64::from(m)),
            When::Oldest => now - Duration::days(400),
            When::TooOld => now - Duration::days(400) - ns,
            When::Ahead => now + Duration::hours(1),
            When::TooFar => now + Duration::hours(1) + ns,
            When::LeapSecond => {
                let leap = NaiveTime::from_hms_milli_opt(23, 59, 59, 1_500).expect("a leap second");
                (now - Duration::days(1)).date_naive().and_time(leap).and_utc()
            }
        }
    }

    pub fn why(self) -> Why {
        match self {
            When::TooOld => &["event_time_too_old"],
            When::TooFar => &["future_event_time"],
            _ => OK,
        }
    }
}

/// How a timestamp's offset is written (RFC 3339 allows them all; the instant is the same).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Off {
    Z,
    East2359,
    West2359,
    PlusZero,
    /// `-00:00`: RFC 3339's "offset unknown", still UTC.
    MinusZero,
}

pub const OFFSETS: &[Off] = &[Off::Z, Off::East2359, Off::West2359, Off::PlusZero, Off::MinusZero];

pub fn stamp(t: DateTime<Utc>, off: Off) -> String {
    let secs = match off {
        Off::Z => return t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        Off::East2359 => 23 * 3600 + 59 * 60,
        Off::West2359 => -(23 * 3600 + 59 * 60),
        Off::PlusZero | Off::MinusZero => 0,
    };
    let s = t
        .with_timezone(&FixedOffset::east_opt(secs).expect("within a day"))
        .to_rfc3339_opts(SecondsFormat::Nanos, false);
    if off == Off::MinusZero {
        s.replace("+00:00", "-00:00")
    } else {
        s
    }
}

/// A suppression's `expiresAt`: not the event time, so only PostgreSQL's range bounds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exp {
    Absent,
    Tomorrow,
    Lit(&'static str),
}

pub const EXPIRIES: &[(Exp, Why)] = &[
    (Exp::Tomorrow, OK),
    (Exp::Absent, OK),
    (Exp::Lit("0001-01-01T00:00:00Z"), OK),
    (Exp::Lit("0001-01-01T23:59:00+23:59"), OK),
    (Exp::Lit("0001-01-01T00:00:00-23:59"), OK),
    (Exp::Lit("9999-12-31T23:59:59.999999999Z"), OK),
    (Exp::Lit("9999-12-31T00:00:00+23:59"), OK),
    (Exp::Lit("0001-01-01T00:00:00+23:59"), INVALID), // year 0 in UTC
    (Exp::Lit("0000-12-31T00:00:00Z"), INVALID),
    (Exp::Lit("9999-12-31T23:59:59-23:59"), INVALID), // year 10000 in UTC
    (Exp::Lit("-5000-01-01T00:00:00Z"), UNWRITABLE_YEAR),
    (Exp::Lit("+10000-01-01T00:00:00Z"), UNWRITABLE_YEAR),
];

/// The message key. docs/events.md: `tenantId:customerId` where a customer exists, else `tenantId`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyKind {
    Natural,
    TenantOnly,
    Absent,
    /// `tenantId:` then bytes that are not UTF-8.
    TailNotUtf8,
    /// `tenantId:` then 8,000 bytes.
    Long,
    /// Another tenant's key.
    Other,
    /// The tenant without its last character.
    Prefix,
    /// The tenant with one more character (not a ':').
    Extended,
    /// Bytes that are not UTF-8, then the tenant.
    FrontNotUtf8,
    /// 8,000 bytes naming no tenant of the case.
    LongOther,
    Empty,
}

pub const KEYS: &[KeyKind] = &[
    KeyKind::TenantOnly,
    KeyKind::Absent,
    KeyKind::TailNotUtf8,
    KeyKind::Long,
    KeyKind::Other,
    KeyKind::Prefix,
    KeyKind::Extended,
    KeyKind::FrontNotUtf8,
    KeyKind::LongOther,
    KeyKind::Empty,
];

impl KeyKind {
    pub fn render(self, tenant: &str, customer: Option<&str>, other: &str) -> Option<Vec<u8>> {
        let t = tenant.as_bytes();
        let mut key = match self {
            KeyKind::Absent => return None,
            KeyKind::Natural => match customer {
                Some(c) => format!("{tenant}:{c}").into_bytes(),
                None => t.to_vec(),
            },
            KeyKind::TenantOnly => t.to_vec(),
            KeyKind::TailNotUtf8 => [t, b":\xff\xfe"].concat(),
            KeyKind::Long => [t, b":", &[b'k'; 8000]].concat(),
            KeyKind::Other => format!("{other}:c1").into_bytes(),
            KeyKind::Prefix => {
                let cut = tenant.char_indices().last().map_or(0, |(i, _)| i);
                tenant.as_bytes()[..cut].to_vec()
            }
            KeyKind::Extended => [t, b"x"].concat(),
            KeyKind::FrontNotUtf8 => [b"\xff\xfe", t].concat(),
            KeyKind::LongOther => [other.as_bytes(), &[b'z'; 8000]].concat(),
            KeyKind::Empty => Vec::new(),
        };
        key.shrink_to_fit();
        Some(key)
    }

    pub fn why(self) -> Why {
        match self {
            KeyKind::Natural | KeyKind::TenantOnly | KeyKind::Absent | KeyKind::TailNotUtf8 | KeyKind::Long => OK,
            _ => MISMATCH,
        }
    }
}

/// Strings that are not identifiers (names, reasons): unbounded but for the payload size.
pub fn long_text(n: usize) -> String {
    "ü€😀 ".chars().cycle().take(n).collect()
}
