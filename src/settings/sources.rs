//! Where the settings come from (issue 16): an optional TOML file (`--config FILE` or
//! `DV_CONFIG`) whose keys are the variables' own names, under the process environment, which
//! wins. One set of names everywhere: the README's table, `--help`, the file and the
//! environment. A key the service does not know is an error (a typo must not pass for a
//! default); the environment's unknown `DV_*` variables are ignored, as before.
//!
//! ```toml
//! DV_DATABASE_URL = "postgres://app@db:5432/decision_views?sslmode=require"
//! DV_HTTP_ADDR = "0.0.0.0:8080"
//! DV_INGEST_BATCH_MAX_MESSAGES = 20000
//! DV_KAFKA_CLIENT_SECURITY_PROTOCOL = "SASL_SSL"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use super::help::VARIABLES;

/// Every setting's raw value, by variable name.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    values: BTreeMap<String, String>,
}

/// Names a file may set: the listed variables, and the property families
/// (`DV_KAFKA_CLIENT_<PROPERTY>` …) by their prefix.
fn known(name: &str) -> bool {
    VARIABLES.iter().any(|(v, _, _)| match v.strip_suffix("<PROPERTY>") {
        Some(prefix) => name.starts_with(prefix) && name.len() > prefix.len(),
        None => *v == name,
    })
}

impl Sources {
    /// The process environment's `DV_*` variables.
    pub fn environment() -> Sources {
        Sources { values: std::env::vars().filter(|(k, _)| k.starts_with("DV_")).collect() }
    }

    /// `file` (if any), then the environment over it.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Sources> {
        let mut s = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                Sources::from_toml(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => Sources::default(),
        };
        s.values.extend(Sources::environment().values);
        Ok(s)
    }

    /// A file's settings: scalars only (strings, numbers, booleans), each under a known name.
    pub fn from_toml(text: &str) -> anyhow::Result<Sources> {
        let table: toml::Table = text.parse()?;
        let mut values = BTreeMap::new();
        for (k, v) in table {
            anyhow::ensure!(known(&k), "{k} is not a setting (README \"Configuration\" lists them)");
            let v = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => anyhow::bail!("{k}: a string, number or boolean, not {}", other.type_str()),
            };
            values.insert(k, v);
        }
        Ok(Sources { values })
    }

    /// The value as given (possibly empty).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value, unless unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|v| !v.trim().is_empty()).map(str::to_owned)
    }

    /// (name without `prefix`, value) of every variable starting with `prefix`.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.values.iter().filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_str())))
    }

    #[cfg(test)]
    pub fn with(mut self, name: &str, value: &str) -> Sources {
        self.values.insert(name.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::*;

    #[test]
    fn a_file_sets_what_it_names_and_the_environment_wins() {
        let file = "DV_HTTP_ADDR = \"0.0.0.0:9000\"\nDV_INGEST_BATCH_MAX_MESSAGES = 1234\nDV_REDIS_URL = \"\"\n\
                    DV_KAFKA_CLIENT_SASL_MECHANISM = \"SCRAM-SHA-512\"";
        let s = Settings::from_sources(&Sources::from_toml(file).unwrap()).unwrap();
        assert_eq!(s.http.addr.to_string(), "0.0.0.0:9000");
        assert_eq!(s.kafka.batch_max_messages, 1234);
        assert!(s.redis_url.is_none(), "empty in the file: no Redis, as in the environment");
        assert_eq!(s.kafka.client_overrides.get("sasl.mechanism").map(String::as_str), Some("SCRAM-SHA-512"));
        // What the environment sets wins over the file (Sources::load puts it on top).
        let over = Sources::from_toml(file).unwrap().with("DV_HTTP_ADDR", "127.0.0.1:9001");
        assert_eq!(Settings::from_sources(&over).unwrap().http.addr.to_string(), "127.0.0.1:9001");
        let bad = Sources::from_toml("DV_INGEST_BATCH_MAX_MESSAGES = \"many\"").unwrap();
        let err = Settings::from_sources(&bad).unwrap_err().to_string();
        assert!(err.contains("DV_INGEST_BATCH_MAX_MESSAGES"), "{err}");
    }

    #[test]
    fn a_file_takes_every_scalar_under_a_known_name_and_refuses_the_rest() {
        let s = Sources::from_toml(
            "DV_HTTP_ADDR = \"0.0.0.0:8080\"\nDV_INGEST_BATCH_MAX_MESSAGES = 20000\nDV_INGEST_TRACE_LANE = false\n\
             DV_KAFKA_CLIENT_SECURITY_PROTOCOL = \"SASL_SSL\"",
        )
        .unwrap();
        assert_eq!(s.get("DV_HTTP_ADDR").as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(s.get("DV_INGEST_BATCH_MAX_MESSAGES").as_deref(), Some("20000"));
        assert_eq!(s.get("DV_INGEST_TRACE_LANE").as_deref(), Some("false"));
        assert_eq!(s.with_prefix("DV_KAFKA_CLIENT_").collect::<Vec<_>>(), [("SECURITY_PROTOCOL", "SASL_SSL")]);
        for bad in ["DV_HTTP_ADRR = \"x\"", "DV_KAFKA_CLIENT_ = \"x\"", "DV_HTTP_ADDR = [1]", "not toml ="] {
            assert!(Sources::from_toml(bad).is_err(), "{bad}");
        }
    }
}
