//! A generic HTTP SMS gateway, as Vietnamese brand-name SMS providers offer them: one POST per
//! message to a configured URL, with a configured authorisation header and a body template.

use std::time::Duration;

use super::phone::PhoneNumber;

/// How a phone message failed, and whether trying again later may help.
#[derive(Debug)]
pub enum PhoneSendError {
    /// Down, timed out, rate-limited (429) or a 5xx: retry, not before `retry_after` if given.
    Transient {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Refused for good (any other 4xx, an unknown number): do not retry.
    Permanent(String),
}

impl PhoneSendError {
    pub fn transient(error: impl Into<String>) -> Self {
        Self::Transient {
            error: error.into(),
            retry_after: None,
        }
    }

    /// The failure a response with this status (and `Retry-After`) means, if any.
    pub fn from_status(response: &reqwest::blocking::Response, what: &str) -> Option<Self> {
        let status = response.status();
        if status.is_success() {
            return None;
        }
        let error = format!("{what} answered {status}");
        if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(3600)));
            return Some(Self::Transient { error, retry_after });
        }
        Some(Self::Permanent(error))
    }

    /// A failed request (no response at all): always worth another try.
    pub fn from_request(e: reqwest::Error, what: &str) -> Self {
        Self::transient(format!("{what} unreachable: {e}"))
    }
}

/// The gateway's settings, checked at start-up.
#[derive(Debug, Clone)]
pub struct SmsGateway {
    url: String,
    auth_header: Option<(String, String)>,
    body_template: String,
    content_type: String,
}

/// What a template can say: `{phone}` (+84…), `{phone_digits}` (84…), `{phone_national}`
/// (0…), `{text}`, `{message_id}` (stable across retries: the gateway's idempotency key).
pub const PLACEHOLDERS: [&str; 5] = [
    "{phone}",
    "{phone_digits}",
    "{phone_national}",
    "{text}",
    "{message_id}",
];

impl SmsGateway {
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<Option<Self>> {
        let Some(url) = settings.sms_url.clone() else {
            return Ok(None);
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            anyhow::bail!("sms_url `{url}` must be an http:// or https:// URL");
        }
        let auth_header = match settings.sms_auth_header.as_deref() {
            Some(line) if !line.trim().is_empty() => {
                let (name, value) = line
                    .split_once(':')
                    .filter(|(name, _)| !name.trim().is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "sms_auth_header must look like `Authorization: Basic dXNlcjpwYXNz`"
                        )
                    })?;
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| anyhow::anyhow!("sms_auth_header: bad header name `{name}`"))?;
                Some((name.trim().to_string(), value.trim().to_string()))
            }
            _ => None,
        };
        if !settings.sms_body_template.contains("{text}")
            || !PLACEHOLDERS[..3]
                .iter()
                .any(|p| settings.sms_body_template.contains(p))
        {
            anyhow::bail!(
                "sms_body_template must contain {{text}} and one of {{phone}}, {{phone_digits}}, {{phone_national}}"
            );
        }
        Ok(Some(Self {
            url,
            auth_header,
            body_template: settings.sms_body_template.clone(),
            content_type: settings.sms_content_type.clone(),
        }))
    }

    /// The request body for one message: placeholders replaced by values escaped for the body's
    /// content type (JSON string contents, form encoding, or as they are).
    pub fn body(&self, phone: &PhoneNumber, text: &str, message_id: &str) -> String {
        let escape = |value: &str| -> String {
            if self.content_type.contains("json") {
                let quoted = serde_json::Value::String(value.to_string()).to_string();
                quoted[1..quoted.len() - 1].to_string()
            } else if self.content_type.contains("x-www-form-urlencoded") {
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            } else {
                value.to_string()
            }
        };
        let national = phone.national();
        let values = [
            phone.as_str(),
            phone.digits(),
            national.as_str(),
            text,
            message_id,
        ];
        // One pass over the template, so a value that itself contains `{text}` stays as it is.
        let mut out = String::with_capacity(self.body_template.len() + text.len());
        let mut rest = self.body_template.as_str();
        'scan: while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            rest = &rest[open..];
            for (placeholder, value) in PLACEHOLDERS.iter().zip(values) {
                if let Some(after) = rest.strip_prefix(placeholder) {
                    out.push_str(&escape(value));
                    rest = after;
                    continue 'scan;
                }
            }
            out.push('{');
            rest = &rest[1..];
        }
        out.push_str(rest);
        out
    }

    pub fn send(
        &self,
        client: &reqwest::blocking::Client,
        phone: &PhoneNumber,
        text: &str,
        message_id: &str,
    ) -> Result<(), PhoneSendError> {
        let mut request = client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, &self.content_type)
            .header("Idempotency-Key", message_id)
            .body(self.body(phone, text, message_id));
        if let Some((name, value)) = &self.auth_header {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .send()
            .map_err(|e| PhoneSendError::from_request(e, "SMS gateway"))?;
        match PhoneSendError::from_status(&response, "SMS gateway") {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(template: &str, content_type: &str) -> SmsGateway {
        let settings = crate::config::Settings {
            sms_url: Some("https://sms.example.vn/send".into()),
            sms_auth_header: Some("Authorization: Basic dXNlcjpwYXNz".into()),
            sms_body_template: template.into(),
            sms_content_type: content_type.into(),
            ..Default::default()
        };
        SmsGateway::from_settings(&settings).unwrap().unwrap()
    }

    #[test]
    fn json_bodies_escape_the_text() {
        let g = gateway(
            r#"{"to":"{phone_digits}","msg":"{text}","ref":"{message_id}"}"#,
            "application/json",
        );
        let phone = PhoneNumber::parse("0912345678").unwrap();
        let body = g.body(&phone, "say \"hi\" {phone}\n", "m-1");
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["to"], "84912345678");
        assert_eq!(parsed["msg"], "say \"hi\" {phone}\n");
        assert_eq!(parsed["ref"], "m-1");
    }

    #[test]
    fn form_bodies_are_percent_encoded() {
        let g = gateway(
            "phone={phone_national}&text={text}",
            "application/x-www-form-urlencoded",
        );
        let phone = PhoneNumber::parse("+84912345678").unwrap();
        assert_eq!(
            g.body(&phone, "a b&c", "x"),
            "phone=0912345678&text=a%20b%26c"
        );
    }

    #[test]
    fn templates_without_text_or_number_are_refused() {
        for template in ["{\"to\":\"{phone}\"}", "{\"msg\":\"{text}\"}"] {
            let settings = crate::config::Settings {
                sms_url: Some("https://sms.example.vn/send".into()),
                sms_body_template: template.into(),
                ..Default::default()
            };
            assert!(SmsGateway::from_settings(&settings).is_err(), "{template}");
        }
    }
}
