//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the counter API, written by hand so
//! it documents exactly what the handlers accept. `tests/it/hostile_input.rs` drives the real
//! app into every status listed here and fails on any status it returns that is not listed.

use actix_web::HttpResponse;
use serde_json::{Value, json};

pub fn spec() -> Value {
    let error = json!({ "$ref": "#/components/schemas/Error" });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "SIPAS counter API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Đăng ký hồ sơ đã giải quyết xong và nhận liên kết khảo sát dùng một lần. / Register completed transactions and receive a single-use survey link."
        },
        "components": {
            "securitySchemes": { "session": { "type": "apiKey", "in": "cookie", "name": "sipas_session", "description": "Staff session from /login" }, "apiKey": { "type": "http", "scheme": "bearer", "description": "Khóa API của đơn vị (sipas api-key create --unit MÃ) / the unit's API key" } },
            "responses": {
                "BadQuery": { "description": "A query parameter is repeated or of the wrong type, or the path or query is not valid UTF-8", "content": { "application/json": { "schema": error } } },
                "ControlCharacter": { "description": "The path or a query parameter holds a control character (NUL, …); `field` names it", "content": { "application/json": { "schema": error } } },
                "TooManyRequests": { "description": "Too many survey requests from this address (`SIPAS_SURVEY_RATE_PER_MINUTE`); `Retry-After` says when to try again" },
                "NotSignedIn": { "description": "No staff session", "content": { "application/json": { "schema": error } } },
                "MustChangePassword": { "description": "The account must change its password first: redirect to /account/password" }
            },
            "schemas": {
                "Figure": {
                    "type": "object",
                    "description": "A report figure. Percentages are unrounded (pages, prints and text round them to 0.1); null when suppressed (fewer answers than the minimum).",
                    "required": ["n", "value", "ci_low", "ci_high", "se"],
                    "properties": {
                        "n": { "type": "integer", "description": "Answers (items) or respondents (elements, index) behind the figure" },
                        "value": { "type": ["number", "null"], "description": "Unrounded percentage (0–100)" },
                        "ci_low": { "type": ["number", "null"], "description": "Unrounded percentage: lower end of the 95 % interval (Wilson for items; Student t, df = n − 1, on respondent scores for elements and the index)" },
                        "ci_high": { "type": ["number", "null"], "description": "Unrounded percentage: upper end of the 95 % interval" },
                        "se": { "type": ["number", "null"], "description": "Standard error in percentage points, unrounded" }
                    }
                },
                "TransactionRequest": {
                    "type": "object",
                    "description": "Any other field is refused (422 naming it), so a misspelt optional field is never silently ignored. Texts are one line: control characters (NUL, tab, line breaks, …) are refused (422).",
                    "additionalProperties": false,
                    "required": ["unit", "dossier_code", "procedure", "received_at", "completed_at"],
                    "properties": {
                        "unit": { "type": "string", "description": "Unit code; the key's unit or a unit below it" },
                        "dossier_code": { "type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9._/:-]+$", "description": "Dossier code, unique per unit; repeating it returns the same survey" },
                        "procedure": { "type": "string", "description": "Procedure code from the catalogue" },
                        "received_at": { "type": "string", "format": "date-time", "description": "From 2000-01-01; not after completed_at" },
                        "due_at": { "type": ["string", "null"], "format": "date-time", "description": "Not before received_at, at most 731 days from now" },
                        "completed_at": { "type": "string", "format": "date-time", "description": "From 2000-01-01, at most 10 minutes in the future" },
                        "email": { "type": ["string", "null"], "format": "email", "description": "Optional: where to send the invitation" },
                        "form": { "type": ["string", "null"], "description": "Survey form code (default: the unit's counter form)" },
                        "phone": { "type": ["string", "null"], "maxLength": 32, "examples": ["0912345678", "+84912345678"], "description": "Optional: mobile number for the SMS or Zalo invitation (whichever the server is configured for); erased once no message is due" },
                        "counter": { "type": ["string", "null"], "maxLength": 32, "pattern": "^[A-Za-z0-9_-]{1,32}$", "description": "Optional: code of the desk that served the citizen; its paired screen shows this survey's QR" }
                    }
                },
                "IssuedSurvey": {
                    "type": "object",
                    "required": ["survey_url", "token", "expires_at", "qr_svg_url", "qr_png_url"],
                    "properties": {
                        "transaction_id": { "type": "string" },
                        "survey_url": { "type": "string", "format": "uri" },
                        "token": { "type": "string", "minLength": 26, "maxLength": 26 },
                        "expires_at": { "type": "string", "format": "date-time" },
                        "qr_svg_url": { "type": "string", "format": "uri" },
                        "qr_png_url": { "type": "string", "format": "uri" },
                        "form": { "type": "string" },
                        "form_version": { "type": "integer" },
                        "created": { "type": "boolean", "description": "false when the dossier was already registered" }
                    }
                },
                "StickerAttachment": {
                    "type": "object",
                    "description": "Which dossier a sticker of an offline token book went with. Any other field is refused (422 naming it).",
                    "additionalProperties": false,
                    "required": ["unit", "dossier_code", "sticker"],
                    "properties": {
                        "unit": { "type": "string", "description": "Unit code of the registered dossier; the key's unit or a unit below it" },
                        "dossier_code": { "type": "string", "description": "A dossier registered with POST /api/v1/transactions" },
                        "sticker": { "type": "string", "maxLength": 512, "examples": ["S12-0042"], "description": "The serial printed on the sticker, the token in its QR code, or its whole survey URL; the sticker's book must be the dossier's unit's" }
                    }
                },
                "AttachedSticker": {
                    "type": "object",
                    "required": ["sticker", "transaction_id", "answered", "rated"],
                    "properties": {
                        "sticker": { "type": "string", "description": "The sticker's serial" },
                        "transaction_id": { "type": "string" },
                        "answered": { "type": "boolean", "description": "The sticker was already answered" },
                        "rated": { "type": "boolean", "description": "Its answer rated the dossier now (Decision 766); otherwise the answer, when it comes, will" }
                    }
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message", "message_en"],
                            "properties": {
                                "code": { "type": "string" },
                                "field": { "type": "string", "description": "The request field at fault" },
                                "message": { "type": "string", "description": "Vietnamese" },
                                "message_en": { "type": "string" }
                            }
                        }
                    }
                }
            }
        },
        "paths": {
            "/api/v1/transactions": {
                "post": {
                    "summary": "Register a completed transaction / Đăng ký hồ sơ đã giải quyết",
                    "security": [{ "apiKey": [] }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/TransactionRequest" } } } },
                    "responses": {
                        "201": { "description": "Survey issued", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/IssuedSurvey" } } } },
                        "200": { "description": "Already registered: the same survey", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/IssuedSurvey" } } } },
                        "400": { "description": "Malformed body (not JSON, not UTF-8, not an object), a field of the wrong type, or a query string that is not valid UTF-8", "content": { "application/json": { "schema": error } } },
                        "401": { "description": "Missing, unknown or revoked API key", "content": { "application/json": { "schema": error } } },
                        "403": { "description": "The unit is not the key's unit or below it", "content": { "application/json": { "schema": error } } },
                        "413": { "description": "Body larger than `SIPAS_MAX_BODY_BYTES`", "content": { "application/json": { "schema": error } } },
                        "422": { "description": "A field is invalid, unknown, holds a control character or a time outside its window; `field` names it", "content": { "application/json": { "schema": error } } }
                    }
                }
            },
            "/api/v1/stickers/attach": {
                "post": {
                    "summary": "Attach a token book sticker to its dossier / Gắn tem phiếu in sẵn với hồ sơ",
                    "description": "Offline token books (printed QR stickers) are answered without a dossier; this tells which dossier a sticker went with, so its rating reaches the dossier (Decision 766), whether the answer came before or comes after. Repeating the same attachment changes nothing.",
                    "security": [{ "apiKey": [] }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/StickerAttachment" } } } },
                    "responses": {
                        "200": { "description": "Attached (or already attached to this dossier)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AttachedSticker" } } } },
                        "400": { "description": "Malformed body (not JSON, not an object) or a field of the wrong type", "content": { "application/json": { "schema": error } } },
                        "401": { "description": "Missing, unknown or revoked API key", "content": { "application/json": { "schema": error } } },
                        "403": { "description": "The unit is not the key's unit or below it", "content": { "application/json": { "schema": error } } },
                        "409": { "description": "The sticker is attached to another dossier, or the dossier to another sticker", "content": { "application/json": { "schema": error } } },
                        "410": { "description": "The sticker's book has been revoked", "content": { "application/json": { "schema": error } } },
                        "413": { "description": "Body larger than `SIPAS_MAX_BODY_BYTES`", "content": { "application/json": { "schema": error } } },
                        "422": { "description": "A field is missing, unknown or holds a control character; an unknown dossier or sticker, or another unit's sticker; `field` names it", "content": { "application/json": { "schema": error } } }
                    }
                }
            },
            "/s/{token}/qr.svg": {
                "get": {
                    "summary": "QR code of the survey link (SVG)",
                    "parameters": [{ "name": "token", "in": "path", "required": true, "schema": { "type": "string" } }],
                    "responses": {
                        "200": { "description": "SVG image", "content": { "image/svg+xml": {} } },
                        "400": { "$ref": "#/components/responses/BadQuery" },
                        "404": { "description": "Unknown token" },
                        "422": { "$ref": "#/components/responses/ControlCharacter" },
                        "429": { "$ref": "#/components/responses/TooManyRequests" }
                    }
                }
            },
            "/s/{token}/qr.png": {
                "get": {
                    "summary": "QR code of the survey link (PNG)",
                    "parameters": [
                        { "name": "token", "in": "path", "required": true, "schema": { "type": "string" } },
                        { "name": "scale", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 32, "default": 8 }, "description": "Pixels per module" }
                    ],
                    "responses": {
                        "200": { "description": "PNG image", "content": { "image/png": {} } },
                        "400": { "description": "`scale` is not an integer, a parameter is repeated, or the path or query is not valid UTF-8", "content": { "application/json": { "schema": error } } },
                        "404": { "description": "Unknown token" },
                        "422": { "$ref": "#/components/responses/ControlCharacter" },
                        "429": { "$ref": "#/components/responses/TooManyRequests" }
                    }
                }
            },
            "/api/v1/reports/units/{id}": {
                "get": {
                    "summary": "Satisfaction figures of a unit (its subtree and merged predecessors) / Chỉ số hài lòng của đơn vị",
                    "description": "Signed-in staff only (session cookie): administrators for every unit, agencies for their own subtree (other units answer 404). Figures are percentages with 95 % intervals and n; cells with fewer answers than the minimum are null.",
                    "security": [{ "session": [] }],
                    "parameters": [
                        { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                        { "name": "period", "in": "query", "schema": { "type": "string", "examples": ["2026", "2026-Q3", "2026-07", "2026-01-15..2026-03-31"] } },
                        { "name": "channel", "in": "query", "schema": { "type": "string", "enum": ["counter", "independent", "qr", "link", "kiosk", "sms", "zalo", "book", "paper", "phone", "interview"] } },
                        { "name": "respondent_type", "in": "query", "schema": { "type": "string", "enum": ["individual", "organisation"] } },
                        { "name": "procedure", "in": "query", "schema": { "type": "string" }, "description": "Procedure code (whole-month periods only)" }
                    ],
                    "responses": {
                        "200": { "description": "UnitReport: unit, period, sipas {index, elements[{index, items[{satisfied, mean, distribution, no_answer}]}], overall_question, choices}, transaction, dossier_rate {counts, rate}, sample {population, required, achieved, sufficient}, gap {counter, independent, difference, p_value, significant}, change {previous_period, previous, difference, p_value, significant}, trend[{month, index}], channels[{form, channel, index}] (each form per channel: qr, link, kiosk, sms, zalo, book, paper, phone, interview), kiosk {taps, satisfied, satisfied_share, by_face, follow_ups, refused, weight} (one-tap kiosk, reported apart), kiosk_in_index (whether the taps are in sipas.index: SIPAS_KIOSK_IN_INDEX). Every index, satisfied, counter, independent and previous is a Figure (#/components/schemas/Figure: unrounded percentage with its interval); dossier_rate.rate is an unrounded percentage, difference unrounded percentage points, mean the unrounded mean level.", "content": { "application/json": {} } },
                        "303": { "$ref": "#/components/responses/MustChangePassword" },
                        "400": { "$ref": "#/components/responses/BadQuery" },
                        "401": { "$ref": "#/components/responses/NotSignedIn" },
                        "403": { "description": "The account may not read results (a collector)", "content": { "application/json": { "schema": error } } },
                        "404": { "description": "Unknown unit, or outside the user's scope" },
                        "422": { "description": "Bad period, channel, respondent type or procedure, or a control character in the path or query", "content": { "application/json": { "schema": error } } }
                    }
                }
            },
            "/api/v1/reports/ranking": {
                "get": {
                    "summary": "Ranking of units of one level by SIPAS index / Xếp hạng đơn vị",
                    "description": "Administrators only. Units below their required sample n = N/(1+N·e²) are listed last with rank null.",
                    "security": [{ "session": [] }],
                    "parameters": [
                        { "name": "period", "in": "query", "schema": { "type": "string" } },
                        { "name": "kind", "in": "query", "schema": { "type": "string", "enum": ["province", "department", "centre", "commune", "other"], "default": "department" } }
                    ],
                    "responses": {
                        "200": { "description": "{period, from, to, kind, rows[{rank, unit, index, sample, dossier_rate, gap, gap_significant}]}: index is a Figure (#/components/schemas/Figure, unrounded percentage), dossier_rate an unrounded percentage, gap unrounded percentage points (counter − paper)", "content": { "application/json": {} } },
                        "303": { "$ref": "#/components/responses/MustChangePassword" },
                        "400": { "$ref": "#/components/responses/BadQuery" },
                        "401": { "$ref": "#/components/responses/NotSignedIn" },
                        "403": { "description": "Not an administrator", "content": { "application/json": { "schema": error } } },
                        "422": { "description": "Bad period or kind, or a control character in the query", "content": { "application/json": { "schema": error } } }
                    }
                }
            },
            "/healthz": {
                "get": { "summary": "Liveness and database check", "responses": {
                    "200": { "description": "OK" },
                    "400": { "$ref": "#/components/responses/BadQuery" },
                    "422": { "$ref": "#/components/responses/ControlCharacter" },
                    "503": { "description": "Database unavailable (no connection free within the pool's timeout, or the database does not answer)" }
                } }
            }
        }
    })
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(spec())
}
