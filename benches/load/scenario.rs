//! The requests of each scenario, and what counts as a good answer.

use std::path::PathBuf;

use bytes::Bytes;
use hyper::Method;
use sipas::forms::{Form, QuestionType};

use super::client::{Reply, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// POST /api/v1/transactions (JSON), reading back the token and QR URLs.
    Register,
    /// GET /s/{token}/qr.svg.
    Qr,
    /// GET /s/{token}: the survey page.
    Page,
    /// POST /s/{token} with a complete, valid SIPAS form (one fresh token per request).
    Submit,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Qr => "qr",
            Self::Page => "page",
            Self::Submit => "submit",
        }
    }

    /// The status of a good answer.
    pub fn expected_status(self) -> u16 {
        match self {
            Self::Register => 201,
            _ => 200,
        }
    }
}

/// Reads pages and QR codes of this many surveys (round robin); more would only cost setup.
pub const READ_TOKENS: usize = 1_000;

/// Builds request `i` of a run.
pub struct Workload {
    pub scenario: Scenario,
    api_key: String,
    tokens: Vec<String>,
    /// Submission bodies with different answers, used in turn (so rollups see several levels).
    bodies: Vec<Bytes>,
    /// Distinguishes dossier codes of runs sharing a database.
    run: String,
}

impl Workload {
    pub fn new(scenario: Scenario, api_key: String, tokens: Vec<String>) -> anyhow::Result<Self> {
        let bodies = if scenario == Scenario::Submit {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("survey-forms/sipas-v1.toml");
            let form =
                sipas::forms::definition::load_file(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
            (0..5)
                .map(|variant| full_sipas_body(&form, variant))
                .collect::<anyhow::Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(Self {
            scenario,
            api_key,
            tokens,
            bodies,
            run: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        })
    }

    /// How many requests the workload can make at most (`None`: unbounded).
    pub fn limit(&self) -> Option<u64> {
        (self.scenario == Scenario::Submit).then_some(self.tokens.len() as u64)
    }

    pub fn request(&self, i: u64) -> Request {
        let token = |i: u64| self.tokens[i as usize % self.tokens.len().max(1)].as_str();
        match self.scenario {
            Scenario::Register => Request {
                method: Method::POST,
                path: "/api/v1/transactions".into(),
                headers: vec![
                    ("authorization", format!("Bearer {}", self.api_key)),
                    ("content-type", "application/json".into()),
                ],
                body: Bytes::from(
                    serde_json::json!({
                        "unit": "STP",
                        "dossier_code": format!("LOAD-{}-{i:08}", self.run),
                        "procedure": "LLTP-01",
                        "received_at": "2026-01-05T08:00:00+07:00",
                        "due_at": "2026-01-12T17:00:00+07:00",
                        "completed_at": "2026-01-09T10:30:00+07:00",
                        "form": "sipas",
                    })
                    .to_string(),
                ),
            },
            Scenario::Qr => get(format!("/s/{}/qr.svg", token(i))),
            Scenario::Page => get(format!("/s/{}", token(i))),
            Scenario::Submit => Request {
                method: Method::POST,
                path: format!("/s/{}", token(i)),
                headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
                body: self.bodies[i as usize % self.bodies.len()].clone(),
            },
        }
    }

    /// Whether an answer with the expected status also says what it should.
    pub fn body_is_good(&self, reply: &Reply) -> bool {
        match self.scenario {
            Scenario::Register => {
                let Ok(value) = serde_json::from_slice::<serde_json::Value>(&reply.body) else {
                    return false;
                };
                let token = value["token"].as_str().unwrap_or_default();
                token.len() == 26
                    && value["qr_svg_url"]
                        .as_str()
                        .is_some_and(|u| u.contains(token))
                    && value["qr_png_url"]
                        .as_str()
                        .is_some_and(|u| u.contains(token))
                    && value["survey_url"]
                        .as_str()
                        .is_some_and(|u| u.ends_with(token))
            }
            Scenario::Qr => reply.body.starts_with(b"<?xml") || reply.body.starts_with(b"<svg"),
            Scenario::Page => {
                let needle = b"name=\"A1\"";
                reply.body.windows(needle.len()).any(|w| w == needle)
            }
            Scenario::Submit => true,
        }
    }
}

fn get(path: String) -> Request {
    Request {
        method: Method::GET,
        path,
        headers: Vec::new(),
        body: Bytes::new(),
    }
}

/// A complete, valid SIPAS submission: every question answered, as the survey page would post
/// it. `variant` shifts the levels so that consecutive submissions differ.
fn full_sipas_body(form: &Form, variant: usize) -> anyhow::Result<Bytes> {
    let mut fields = vec![("lang".to_string(), "vi".to_string())];
    for (n, q) in form.questions().enumerate() {
        let value = match q.kind {
            QuestionType::Scale5 => ((n + variant) % 5 + 1).to_string(),
            QuestionType::Scale3 => ((n + variant) % 3 + 1).to_string(),
            QuestionType::Choice | QuestionType::Multi => {
                q.options[(n + variant) % q.options.len()].code.clone()
            }
            QuestionType::Text => "Cán bộ nhiệt tình, hướng dẫn rõ ràng. Cảm ơn!".to_string(),
        };
        fields.push((q.code.clone(), value));
    }
    Ok(Bytes::from(serde_urlencoded::to_string(&fields)?))
}
