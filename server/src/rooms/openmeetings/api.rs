//! The OpenMeetings REST calls Switchboard makes, one method each, over one HTTP client.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use tokio::time::Instant;
use url::Url;

use super::config::{OpenMeetingsConfig, RoomType};
use super::error::{OmError, Op};
use super::wire::{self, ExternalUser, HashOptions, NewRoom, RoomAnswer, ServiceResult};

/// Answers bigger than this are not OpenMeetings answers to these calls.
const MAX_BODY: usize = 256 * 1024;

/// A session id, and the deadline of the exchange it was opened for, which every call made
/// with it honours. The id is hidden from `Debug`: whoever holds it acts as the API account.
pub struct Sid {
    id: String,
    deadline: Instant,
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sid")
            .field("id", &"<redacted>")
            .field("deadline", &self.deadline)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the OpenMeetings URL {0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

pub struct Api {
    http: reqwest::Client,
    /// The configured base URL, e.g. `https://om.example.org/openmeetings`.
    base: Url,
    user: String,
    password: String,
    timeout: Duration,
    /// Learned from a 405: OpenMeetings before 9.0 logs in by GET only, 9.0 and later by POST
    /// only. Starts with POST so the password stays out of URLs (and access logs) if it can.
    login_by_get: AtomicBool,
    /// Set once a POST login has worked: a later 405 is then not an older OpenMeetings (a
    /// proxy, or someone in the middle) and must not get the password in a URL.
    post_worked: AtomicBool,
}

/// A raw answer, before its status is judged.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Api {
    pub fn new(config: &OpenMeetingsConfig) -> Result<Self, SetupError> {
        let bad_url = || SetupError::BadUrl(config.base_url.clone());
        let base = Url::parse(config.base_url.trim()).map_err(|_| bad_url())?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad_url());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            // A redirect would turn a POST into a GET and could carry the session elsewhere;
            // a misconfigured URL should fail loudly instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SetupError::Client)?;
        Ok(Self {
            http,
            base,
            user: config.user.clone(),
            password: config.password.clone(),
            timeout: config.timeout,
            login_by_get: AtomicBool::new(false),
            post_worked: AtomicBool::new(false),
        })
    }

    /// `<base>/<segments...>`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A fresh session for an exchange that must be over by `deadline`. Never reused across
    /// hashes: using a hash takes its session over.
    pub async fn login(&self, deadline: Instant) -> Result<Sid, OmError> {
        let mut by_get = self.login_by_get.load(Ordering::Relaxed);
        let mut answer = self.login_once(by_get, deadline).await?;
        let may_switch = by_get || !self.post_worked.load(Ordering::Relaxed);
        if answer.status == StatusCode::METHOD_NOT_ALLOWED && may_switch {
            answer = self.login_once(!by_get, deadline).await?;
            if answer.status != StatusCode::METHOD_NOT_ALLOWED {
                by_get = !by_get;
                self.login_by_get.store(by_get, Ordering::Relaxed);
            }
        }
        let body = judge(Op::Login, answer)?;
        let id = service_message(Op::Login, &body)?;
        if !by_get {
            self.post_worked.store(true, Ordering::Relaxed);
        }
        Ok(Sid { id, deadline })
    }

    async fn login_once(&self, by_get: bool, deadline: Instant) -> Result<Answer, OmError> {
        let url = self.url(&["services", "user", "login"]);
        let credentials = [
            ("user", self.user.as_str()),
            ("pass", self.password.as_str()),
        ];
        let request = if by_get {
            self.http.get(url).query(&credentials)
        } else {
            self.http.post(url).form(&credentials)
        };
        self.send(Op::Login, request, deadline).await
    }

    /// The room for `external_id`, made from `room` if OpenMeetings has none yet, so asking
    /// twice never makes two rooms.
    pub async fn find_or_create_room(
        &self,
        sid: &Sid,
        kind: RoomType,
        room: &NewRoom<'_>,
    ) -> Result<i64, OmError> {
        let url = self.url(&[
            "services",
            "room",
            kind.as_str(),
            room.external_type,
            room.external_id,
        ]);
        let room_json = wire::json_text(room);
        let request = self
            .http
            .get(url)
            .query(&[("sid", sid.id.as_str()), ("room", room_json.as_str())]);
        let answer = self.send(Op::FindRoom, request, sid.deadline).await?;
        let body = judge(Op::FindRoom, answer)?;
        let answer: RoomAnswer =
            wire::parse_wrapped(&body, "roomDTO").map_err(|reason| OmError::Malformed {
                op: Op::FindRoom,
                reason,
            })?;
        match answer.id {
            Some(id) => Ok(id.0),
            None => Err(OmError::Malformed {
                op: Op::FindRoom,
                reason: "the room has no id".into(),
            }),
        }
    }

    /// A single-use secure hash that logs `user` into the room named in `options`.
    pub async fn hash(
        &self,
        sid: &Sid,
        user: &ExternalUser<'_>,
        options: &HashOptions,
    ) -> Result<String, OmError> {
        let url = self.url(&["services", "user", "hash"]);
        let user = wire::json_text(user);
        let options = wire::json_text(options);
        let request = self
            .http
            .post(url)
            .query(&[("sid", sid.id.as_str())])
            .form(&[("user", user.as_str()), ("options", options.as_str())]);
        let body = judge(Op::Hash, self.send(Op::Hash, request, sid.deadline).await?)?;
        service_message(Op::Hash, &body)
    }

    /// Closes a room: whoever is inside or follows an old link is sent away.
    pub async fn close_room(&self, sid: &Sid, id: i64) -> Result<(), OmError> {
        let url = self.url(&["services", "room", "close", &id.to_string()]);
        self.room_call(Op::CloseRoom, Method::GET, url, sid).await
    }

    /// Soft-deletes a room. "Not found" is a success too, so a repeat is harmless.
    pub async fn delete_room(&self, sid: &Sid, id: i64) -> Result<(), OmError> {
        let url = self.url(&["services", "room", &id.to_string()]);
        self.room_call(Op::DeleteRoom, Method::DELETE, url, sid)
            .await
    }

    async fn room_call(&self, op: Op, method: Method, url: Url, sid: &Sid) -> Result<(), OmError> {
        let request = self
            .http
            .request(method, url)
            .query(&[("sid", sid.id.as_str())]);
        let body = judge(op, self.send(op, request, sid.deadline).await?)?;
        service_message(op, &body).map(drop)
    }

    /// Sends with what is left of the exchange's time, so a slow server costs at most the
    /// configured timeout however many calls the exchange makes.
    async fn send(
        &self,
        op: Op,
        request: RequestBuilder,
        deadline: Instant,
    ) -> Result<Answer, OmError> {
        let timed_out = || OmError::Timeout {
            op,
            limit: self.timeout,
            hint: if op == Op::Login {
                " (OpenMeetings 9 answers a wrong password only after 6-15 s)"
            } else {
                ""
            },
        };
        let failed = |source: reqwest::Error| {
            if source.is_timeout() {
                timed_out()
            } else {
                OmError::transport(op, source)
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        let mut response = request.timeout(left).send().await.map_err(failed)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(OmError::Malformed {
                    op,
                    reason: format!("answer larger than {MAX_BODY} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// Turns an HTTP status into success (the body) or a typed error. OpenMeetings 6.3+ answers a
/// bad session or missing right with HTTP 500, a `serviceResult` body and an `exception`
/// header; older releases with HTTP 500 and an HTML page.
fn judge(op: Op, answer: Answer) -> Result<Vec<u8>, OmError> {
    let status = answer.status;
    if status.is_success() {
        return Ok(answer.body);
    }
    if status.is_redirection() {
        return Err(OmError::Redirected { op });
    }
    let exception = answer
        .headers
        .get("exception")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let result = wire::parse_wrapped::<ServiceResult>(&answer.body, "serviceResult").ok();
    let message = exception.or_else(|| {
        result
            .filter(ServiceResult::is_error)
            .and_then(|r| r.message)
    });
    match message {
        Some(m) if m == "error.notallowed" => Err(OmError::NotAllowed { op }),
        Some(message) if status == StatusCode::INTERNAL_SERVER_ERROR => {
            Err(OmError::Refused { op, message })
        }
        _ => Err(OmError::Http { op, status }),
    }
}

/// The message of a `serviceResult` answer: the SID, the hash, or "Closed"/"Deleted".
fn service_message(op: Op, body: &[u8]) -> Result<String, OmError> {
    let result: ServiceResult = wire::parse_wrapped(body, "serviceResult")
        .map_err(|reason| OmError::Malformed { op, reason })?;
    if result.is_error() {
        return Err(OmError::Refused {
            op,
            message: result.message.unwrap_or_else(|| "no reason given".into()),
        });
    }
    match result.message {
        Some(message) if result.is_success() && !message.is_empty() => Ok(message),
        _ => Err(OmError::Malformed {
            op,
            reason: "a serviceResult without type SUCCESS and a message".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str) -> Api {
        Api::new(&OpenMeetingsConfig::new(base, "api", "pw")).unwrap()
    }

    #[test]
    fn builds_encoded_urls_under_the_base() {
        let api = api("https://om.example.org/openmeetings/");
        assert_eq!(
            api.url(&["services", "room", "CONFERENCE", "switchboard", "a/b c"])
                .as_str(),
            "https://om.example.org/openmeetings/services/room/CONFERENCE/switchboard/a%2Fb%20c"
        );
        let api = self::api("http://127.0.0.1:5080");
        assert_eq!(api.url(&["hash"]).as_str(), "http://127.0.0.1:5080/hash");
    }

    #[test]
    fn refuses_urls_that_are_not_http() {
        for bad in ["om.example.org", "ftp://om.example.org", "mailto:a@b"] {
            let config = OpenMeetingsConfig::new(bad, "api", "pw");
            assert!(Api::new(&config).is_err(), "{bad}");
        }
    }

    fn answer(status: u16, exception: Option<&str>, body: &str) -> Answer {
        let mut headers = HeaderMap::new();
        if let Some(e) = exception {
            headers.insert("exception", e.parse().unwrap());
        }
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn judges_error_answers() {
        let not_allowed = r#"{"serviceResult":{"message":"error.notallowed","type":"ERROR"}}"#;
        assert!(matches!(
            judge(Op::Hash, answer(500, Some("error.notallowed"), not_allowed)),
            Err(OmError::NotAllowed { .. })
        ));
        assert!(matches!(
            judge(Op::Hash, answer(500, None, not_allowed)),
            Err(OmError::NotAllowed { .. })
        ));
        assert!(matches!(
            judge(Op::Hash, answer(500, None, "<html>boom</html>")),
            Err(OmError::Http { .. })
        ));
        assert!(matches!(
            judge(Op::Hash, answer(302, None, "")),
            Err(OmError::Redirected { .. })
        ));
        assert_eq!(judge(Op::Hash, answer(200, None, "x")).unwrap(), b"x");
    }

    #[test]
    fn reads_service_messages() {
        let ok = br#"{"serviceResult":{"message":"sid-1","type":"SUCCESS"}}"#;
        assert_eq!(service_message(Op::Login, ok).unwrap(), "sid-1");
        let bad = br#"{"serviceResult":{"message":"error.bad.credentials","type":"ERROR"}}"#;
        assert!(matches!(
            service_message(Op::Login, bad),
            Err(OmError::Refused { message, .. }) if message == "error.bad.credentials"
        ));
        assert!(service_message(Op::Login, br#"{"serviceResult":{"type":"SUCCESS"}}"#).is_err());
    }
}
