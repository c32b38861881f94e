//! Decision narratives (docs/api.md 5.3): an explanation of one stored decision for a regulator,
//! an agent or the customer, written by a pluggable [`Provider`] from the decision's [`Facts`]:
//! the built-in [`template`] writer (deterministic, offline) or an OpenAI-compatible model
//! ([`openai`]). [`Narrator`] caches what they write.

pub mod facts;
pub mod openai;
pub mod template;

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use facts::Facts;

use crate::store::Store;

/// The audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = NarrativeMode)]
pub enum Mode {
    /// Formal prose naming every stage (the default).
    Regulator,
    /// The same facts as a JSON document (as a string).
    Agent,
    /// A few plain sentences, no internal ids.
    Customer,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Regulator => "regulator",
            Mode::Agent => "agent",
            Mode::Customer => "customer",
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "regulator" => Ok(Mode::Regulator),
            "agent" => Ok(Mode::Agent),
            "customer" => Ok(Mode::Customer),
            other => Err(format!("mode must be regulator, agent or customer, got {other:?}")),
        }
    }
}

/// Token counts, when the provider reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = NarrativeTokens)]
pub struct Tokens {
    pub input: Option<u64>,
    pub output: Option<u64>,
}

/// What a provider wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub text: String,
    pub tokens: Tokens,
}

/// A provider that failed (the API answers 502; nothing is cached).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Writes narratives from facts.
pub trait Provider: Send + Sync {
    /// The model named in answers and in cache keys.
    fn model(&self) -> &str;
    /// Changes whenever the wording or the prompt changes: part of every cache key.
    fn version(&self) -> &str;
    fn write<'a>(&'a self, facts: &'a Facts, mode: Mode) -> BoxFuture<'a, Result<Written, ProviderError>>;
}

/// The built-in writer ([`template`]).
pub struct Template;

impl Provider for Template {
    fn model(&self) -> &str {
        template::VERSION
    }
    fn version(&self) -> &str {
        template::VERSION
    }
    fn write<'a>(&'a self, facts: &'a Facts, mode: Mode) -> BoxFuture<'a, Result<Written, ProviderError>> {
        Box::pin(async move { Ok(Written { text: template::write(facts, mode), tokens: Tokens::default() }) })
    }
}

/// A narrative as answered and cached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Narrative {
    pub narrative: String,
    pub mode: Mode,
    pub model: String,
    pub tokens: Tokens,
    pub created_at: String,
}

/// A provider and the cache in front of it.
#[derive(Clone)]
pub struct Narrator {
    provider: Arc<dyn Provider>,
    store: Store,
    ttl: Duration,
    /// Namespaces the keys (the deployment's database: deployments may share a Redis).
    namespace: Arc<str>,
}

impl Narrator {
    pub fn new(provider: Arc<dyn Provider>, store: Store, ttl: Duration, namespace: Arc<str>) -> Narrator {
        Narrator { provider, store, ttl, namespace }
    }

    pub fn model(&self) -> &str {
        self.provider.model()
    }

    /// The narrative of `facts` for `mode`: the cached one (`true`) unless `fresh`, else one
    /// written now and cached under (tenant, trace, mode, model, inputs hash), the hash covering
    /// the facts (hence the stored trace and the offer names) and the provider's version.
    pub async fn narrate(
        &self,
        tenant: &str,
        facts: &Facts,
        mode: Mode,
        fresh: bool,
    ) -> Result<(Narrative, bool), ProviderError> {
        let key = self.key(tenant, facts, mode);
        if !fresh {
            if let Some(hit) = self.store.get(&key).await.and_then(|b| serde_json::from_slice::<Narrative>(&b).ok()) {
                return Ok((hit, true));
            }
        }
        let written = self.provider.write(facts, mode).await?;
        let narrative = Narrative {
            narrative: written.text,
            mode,
            model: self.provider.model().to_owned(),
            tokens: written.tokens,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        if let Ok(bytes) = serde_json::to_vec(&narrative) {
            self.store.put(&key, bytes, self.ttl).await;
        }
        Ok((narrative, false))
    }

    fn key(&self, tenant: &str, facts: &Facts, mode: Mode) -> String {
        let inputs = Sha256::digest(serde_json::to_vec(&(facts, self.provider.version())).unwrap_or_default());
        let parts =
            (&*self.namespace, tenant, &facts.trace_id, mode.as_str(), self.provider.model(), hex::encode(inputs));
        let key = Sha256::digest(serde_json::to_vec(&parts).unwrap_or_default());
        format!("dv:narrative:v1:{}", hex::encode(&key[..16]))
    }
}
