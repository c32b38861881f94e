//! The extreme numbers (and escaped strings) the event contracts allow, each with the verdict
//! the documentation gives it (README "Bad input", schemas/README.md "Checks beyond the
//! schema"): the dead-letter reasons an event carrying it may get, or none when it must be
//! applied. Tables list the benign value first, so that shrinking (which moves towards index
//! 0) makes a failing input plainer.

use serde_json::{json, Value};

/// Reasons an event with this value may be dead-lettered with; empty: it must be applied.
pub type Why = &'static [&'static str];
pub const OK: Why = &[];
pub const INVALID: Why = &["invalid_value"];
pub const NON_FINITE: Why = &["non_finite"];
pub const WRONG_TYPE: Why = &["wrong_type"];
pub const INVALID_JSON: Why = &["invalid_json"];
pub const TOO_MANY: Why = &["too_many_candidates"];
pub const MISMATCH: Why = &["tenant_mismatch"];
/// A year RFC 3339 cannot write: chrono may read it (then it is out of 0001..9999) or not.
pub const UNWRITABLE_YEAR: Why = &["invalid_value", "wrong_type"];

/// Every reason the decoder documents (the fast path adds none of its own).
pub const DOCUMENTED: &[&str] = &[
    "too_large",
    "invalid_json",
    "missing_field",
    "wrong_type",
    "non_finite",
    "negative_value",
    "invalid_value",
    "unknown_outcome",
    "future_event_time",
    "event_time_too_old",
    "tenant_mismatch",
    "too_many_candidates",
];

/// A number as it is written in the payload (not as a double holds it: `1e309`, 65-digit
/// literals and `0.00000000000000005e-307` are the point), or any JSON text written verbatim
/// (`Lit`: escaped strings as a producer may write them, which serde would re-escape).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// Written as serde_json writes the double (what a serde producer sends).
    F(f64),
    I(i64),
    U(u64),
    Lit(&'static str),
    /// `999…9`, this many characters.
    Nines(usize),
    /// `0.00…01`, this many characters.
    Tiny(usize),
}

impl Num {
    pub fn text(self) -> String {
        match self {
            Num::F(v) => serde_json::to_string(&v).expect("a finite double"),
            Num::I(v) => v.to_string(),
            Num::U(v) => v.to_string(),
            Num::Lit(s) => s.to_owned(),
            Num::Nines(n) => "9".repeat(n),
            Num::Tiny(n) => format!("0.{}1", "0".repeat(n - 3)),
        }
    }

    /// What a JSON Schema validator sees (it holds numbers as doubles): the literal when
    /// serde_json reads it, else the largest double of the same sign (a schema puts no upper
    /// bound where such literals are generated).
    pub fn proxy_text(self) -> String {
        let t = self.text();
        match serde_json::from_str::<Value>(&t) {
            Ok(_) => t,
            Err(_) if t.starts_with('"') => "\"?\"".into(),
            Err(_) if t.starts_with('-') => "-1e308".into(),
            Err(_) => "1e308".into(),
        }
    }
}

use Num::{Lit, Nines, Tiny, F, I, U};

/// 5e-324, the smallest subnormal double, written without a large exponent.
const SUBNORMAL: Num = Lit("0.00000000000000005e-307");

pub const SCORES: &[(Num, Why)] = &[
    (F(0.89), OK),
    (F(1000.0), OK),
    (F(-1000.0), OK),
    (F(-0.0), OK),
    (F(1e-308), OK),
    (SUBNORMAL, OK),
    (Lit("1000.00000000000001"), OK), // the nearest double is 1000.0
    (F(1000.0001), INVALID),
    (F(-1000.0001), INVALID),
    // serde_json's default (best-effort) float parsing may read the next double after 1000.0,
    // `1000.0000000000001`, as 1000.0: a few units of the last place over are unambiguous.
    (Lit("1000.000000000001"), INVALID),
    (F(1e308), INVALID),
    (F(5e-324), OK), // serde writes `5e-324`: tiny, finite
    (Lit("-1e309"), NON_FINITE),
];

pub const RANKS: &[(Num, Why)] = &[
    (I(1), OK),
    (I(10), OK),
    (I(11), OK),
    (I(100_000), OK),
    (I(100_001), INVALID),
    (I(i64::MAX), INVALID),
    (U(9_223_372_036_854_775_808), WRONG_TYPE),
    (U(u64::MAX), WRONG_TYPE),
    (Lit("1e5"), WRONG_TYPE), // an integer to JSON Schema, a double to serde
    (Lit("100000.0"), WRONG_TYPE),
    (Nines(64), WRONG_TYPE),
    (Nines(65), INVALID),
    (Lit("1e400"), NON_FINITE),
];

pub const DURATIONS: &[(Num, Why)] = &[
    (I(18), OK),
    (I(0), OK),
    (F(0.4), OK),
    (F(-0.0), OK),
    (F(1e-308), OK),
    (SUBNORMAL, OK),
    (I(3_600_000), OK),
    (F(3_600_000.000_1), INVALID),
    (F(3_600_000.4), INVALID),
    (U(u64::MAX), INVALID),
    (F(1e308), INVALID),
    (Nines(64), INVALID),
    (Nines(65), INVALID),
    (Lit("1e309"), NON_FINITE),
];

/// Revenue, cost, attribution value, offer budget: 0 ..= 10^12.
pub const AMOUNTS: &[(Num, Why)] = &[
    (F(149.99), OK),
    (I(0), OK),
    (I(1_000_000_000_000), OK),
    (F(1e12), OK),
    (Lit("1000000000000.00001"), OK), // the nearest double is 10^12
    (F(1e-7), OK),                    // rounds to 0 micro-units
    (F(4.9e-7), OK),
    (F(-0.0), OK),
    (F(1e-308), OK),
    (SUBNORMAL, OK),
    (Tiny(64), OK),
    (I(1_000_000_000_001), INVALID),
    (Lit("1000000000000.001"), INVALID), // 8 units of the last place over
    (F(1e308), INVALID),
    (Nines(64), INVALID),
    (Nines(65), INVALID),
    (Tiny(65), INVALID),
    (F(5e-324), OK),
    (Lit("1e309"), NON_FINITE),
];

/// `auc` and `decisionTraceSampleRate`: 0 ..= 1.
pub const UNIT: &[(Num, Why)] = &[
    (F(0.5), OK),
    (I(0), OK),
    (I(1), OK),
    (F(-0.0), OK),
    (F(1e-308), OK),
    (SUBNORMAL, OK),
    (Lit("0.00001e-308"), OK), // 1e-313, subnormal
    (Lit("1.00000000000000001"), OK),
    (Tiny(64), OK),
    (Tiny(65), INVALID),
    (F(5e-324), OK),
];

/// Numbers where anything finite goes: unknown and free-form fields, feature importances,
/// a model's `baseScore`.
pub const FREE: &[(Num, Why)] = &[
    (F(0.5), OK),
    (F(1e308), OK),
    (F(-1.797_693_134_862_315_7e308), OK),
    (F(1e-308), OK),
    (SUBNORMAL, OK),
    (F(-0.0), OK),
    (I(i64::MAX), OK),
    (I(i64::MIN), OK),
    (U(u64::MAX), OK),
    (Lit("1e0000308"), OK),
    (Lit("2E-0308"), OK),
    (Nines(64), OK),
    (Tiny(64), OK),
    (Lit("1e309"), NON_FINITE),
    (Lit("-1e309"), NON_FINITE),
    (Lit("1e-309"), OK),
    (Lit("1e-1000"), OK),
    (Lit("1e-1001"), NON_FINITE),
    (Lit("1e4294967297"), NON_FINITE),
    (Lit("1E-99999999999999999999"), NON_FINITE),
    (F(5e-324), OK),
    (Nines(65), INVALID),
    (Tiny(65), INVALID),
];

/// Strings with the escapes a producer may write: PostgreSQL's JSON parser reads a trace's
/// payload whole (unknown fields included), serde the typed fields.
pub const ESCAPED: &[(Num, Why)] = &[
    (Lit(r#""\ud83d\ude00 \uDBFF\uDFFF""#), OK),
    (Lit(r#""\uFFFF\uFFFE\u0001\u001f\u007f\/\b""#), OK),
    (Lit(r#""x\\u0000 \\uD800""#), OK), // escaped backslashes: text, not escapes
    (Lit(r#""\uD800""#), INVALID_JSON),
    (Lit(r#""\uDC00\uD800""#), INVALID_JSON),
    (Lit(r#""a\u0000""#), INVALID),
];

/// An offer's `data.priority` (schema: an integer; the views keep a bigint).
pub const PRIORITIES: &[(Num, Why)] = &[
    (I(10), OK),
    (I(0), OK),
    (I(-1), OK),
    (I(i64::MAX), OK),
    (I(i64::MIN), OK),
    (I(1_000_000_000_000), OK),
    (U(9_223_372_036_854_775_808), WRONG_TYPE),
    (Lit("1e12"), WRONG_TYPE),
    (Lit("10.0"), WRONG_TYPE),
    (Nines(64), WRONG_TYPE),
    (Nines(65), INVALID),
];

/// A catalog `version` (schema: an integer >= 0).
pub const VERSIONS: &[(Num, Why)] = &[
    (I(1), OK),
    (I(0), OK),
    (I(1_000_000_000_000), OK),
    (I(i64::MAX), OK),
    (U(9_223_372_036_854_775_808), WRONG_TYPE),
    (Lit("1e3"), WRONG_TYPE),
    (Nines(64), WRONG_TYPE),
    (Nines(65), INVALID),
];

/// Depths of a nested value, the event object being level 1 (at most 64 are storable; past
/// 127 serde_json itself refuses, and so would the schema check's parse).
pub const DEPTHS: &[usize] = &[8, 63, 64, 65, 120];

pub fn depth_why(total: usize) -> Why {
    if total > 64 {
        INVALID_JSON
    } else {
        OK
    }
}

/// A value of `levels` nested containers, arrays and objects alternating, an array outside.
pub fn nest(levels: usize) -> Value {
    let mut v = json!(0);
    for i in (0..levels).rev() {
        v = if i % 2 == 0 { json!([v]) } else { json!({ "d": v }) };
    }
    v
}
