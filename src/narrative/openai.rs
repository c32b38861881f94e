//! An OpenAI-compatible chat-completions provider (`DV_LLM_URL`, `DV_LLM_MODEL`,
//! `DV_LLM_API_KEY`): the facts go in the prompt, the model writes the narrative, `usage`
//! gives the token counts. Deterministic as far as the model allows (temperature 0).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{BoxFuture, Facts, Mode, Provider, ProviderError, Tokens, Written};
use crate::settings::Secret;

/// Part of every cache key: bump it when the prompt changes.
const PROMPT_VERSION: &str = "openai-prompt-v1";

pub struct OpenAi {
    client: reqwest::Client,
    /// `…/chat/completions` of the configured base URL.
    endpoint: String,
    model: String,
    api_key: Option<Secret>,
    version: String,
}

impl OpenAi {
    pub fn new(base_url: &str, model: &str, api_key: Option<Secret>, timeout: Duration) -> anyhow::Result<OpenAi> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(OpenAi {
            client,
            endpoint: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            model: model.to_owned(),
            api_key,
            version: format!("{PROMPT_VERSION}/{model}"),
        })
    }
}

/// What the model is asked to write, per audience.
fn instructions(mode: Mode) -> &'static str {
    match mode {
        Mode::Regulator => {
            "You explain one automated offer decision to a regulator. Write formal prose that names every \
             stage (qualification, contact policy, scoring, selection), every offer removed with the rule or \
             policy that removed it, the selected offers with their scores and ranks, the runners-up and by \
             how much they lost, and whether scoring was degraded and why. Use only the facts given."
        }
        Mode::Agent => {
            "You explain one automated offer decision to a contact-centre agent. Answer with a JSON document \
             (and nothing else) holding the facts given as fields. Use only the facts given."
        }
        Mode::Customer => {
            "You explain one automated offer decision to the customer it was made for, in a few plain \
             sentences. Do not mention internal identifiers; name offers by their names. Use only the facts \
             given."
        }
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl Provider for OpenAi {
    fn model(&self) -> &str {
        &self.model
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn write<'a>(&'a self, facts: &'a Facts, mode: Mode) -> BoxFuture<'a, Result<Written, ProviderError>> {
        Box::pin(async move {
            let body = json!({
                "model": self.model,
                "temperature": 0,
                "messages": [
                    {"role": "system", "content": instructions(mode)},
                    {"role": "user", "content": serde_json::to_string(facts).unwrap_or_default()},
                ],
            });
            let mut req = self.client.post(&self.endpoint).json(&body);
            if let Some(key) = &self.api_key {
                req = req.bearer_auth(key.expose());
            }
            let fail = |what: String| ProviderError(format!("the narrative provider failed: {what}"));
            let resp = req.send().await.map_err(|e| fail(e.without_url().to_string()))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(fail(format!("it answered {status}")));
            }
            let completion: Completion = resp.json().await.map_err(|e| fail(format!("unreadable answer: {e}")))?;
            let text = completion
                .choices
                .into_iter()
                .next()
                .and_then(|c| c.message.content)
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| fail("an answer without text".into()))?;
            let tokens = completion
                .usage
                .map(|u| Tokens { input: u.prompt_tokens, output: u.completion_tokens })
                .unwrap_or_default();
            Ok(Written { text, tokens })
        })
    }
}
