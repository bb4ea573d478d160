//! The `url-template` provider: every call's room is a URL made from a template, e.g. a Jitsi
//! server's `https://meet.example.org/{room}`, signed with a per-participant token when the
//! Jitsi deployment requires one.

use std::time::SystemTime;

use async_trait::async_trait;

use super::jitsi::{Entrant, JitsiTokens};
use super::{JoinTarget, Joiner, RoomError, RoomProvider};

/// Fills `{room}` with a name derived from the call id and `{name}` with the participant's
/// display name (both URL-encoded), and, with tokens, `{jwt}` with the participant's token (or
/// appends `jwt=` to the query when the template has no `{jwt}`).
#[derive(Clone, Debug)]
pub struct UrlTemplate {
    template: String,
    /// Set when the conferencing server admits only participants with a signed token.
    tokens: Option<JitsiTokens>,
}

impl UrlTemplate {
    pub fn new(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
            tokens: None,
        }
    }

    pub fn with_tokens(self, tokens: JitsiTokens) -> Self {
        Self {
            tokens: Some(tokens),
            ..self
        }
    }

    fn fill(&self, joiner: &Joiner, now: SystemTime) -> Result<String, RoomError> {
        let room = format!("switchboard-{}", joiner.room.id);
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let url = self
            .template
            .replace("{room}", &encode(&room))
            .replace("{name}", &encode(&joiner.user().name));
        let Some(tokens) = &self.tokens else {
            return Ok(url);
        };
        let user = joiner.user();
        let jwt = tokens
            .token(
                &Entrant {
                    room: &room,
                    user_id: &user.id,
                    name: &user.name,
                    call_ends_at: joiner.ends_at,
                },
                now,
            )
            .map_err(RoomError::Protocol)?;
        // A JWT is base64url and dots: nothing in it needs encoding.
        if url.contains("{jwt}") {
            return Ok(url.replace("{jwt}", &jwt));
        }
        let (before, fragment) = match url.find('#') {
            Some(at) => url.split_at(at),
            None => (url.as_str(), ""),
        };
        let joint = if before.contains('?') { '&' } else { '?' };
        Ok(format!("{before}{joint}jwt={jwt}{fragment}"))
    }
}

#[async_trait]
impl RoomProvider for UrlTemplate {
    fn name(&self) -> &'static str {
        "url-template"
    }

    async fn join(&self, joiner: &Joiner) -> Result<JoinTarget, RoomError> {
        self.fill(joiner, SystemTime::now())
            .map(JoinTarget::Redirect)
    }
}

#[cfg(test)]
mod tests {
    use switchboard_proto::{CallId, Role, UserRef};

    use super::*;
    use crate::rooms::CallRoom;

    fn joiner() -> Joiner {
        Joiner {
            room: CallRoom {
                id: CallId("abc".into()),
                caller: UserRef {
                    id: "a".into(),
                    name: "Ann Lee".into(),
                },
                callee: UserRef {
                    id: "b".into(),
                    name: "Bob".into(),
                },
            },
            role: Role::Caller,
            token: "t".into(),
            ends_at: None,
        }
    }

    #[tokio::test]
    async fn fills_the_template() {
        let joiner = joiner();
        let target = UrlTemplate::new("https://meet.example.org/{room}#name={name}")
            .join(&joiner)
            .await
            .unwrap();
        assert_eq!(
            target,
            JoinTarget::Redirect("https://meet.example.org/switchboard-abc#name=Ann+Lee".into())
        );
    }

    fn tokens() -> JitsiTokens {
        JitsiTokens {
            secret: b"jitsi-app-secret".to_vec(),
            app_id: "switchboard".into(),
            sub: "meet.example.org".into(),
            call_lifetime: std::time::Duration::from_secs(3600),
        }
    }

    /// The `jwt` query parameter of a filled URL, decoded and checked with the secret.
    fn claims_in(url: &str) -> crate::rooms::jitsi::Claims {
        let url = url::Url::parse(url).unwrap();
        let (_, jwt) = url.query_pairs().find(|(k, _)| k == "jwt").unwrap();
        let mut validation = jsonwebtoken::Validation::default();
        validation.set_audience(&["jitsi"]);
        jsonwebtoken::decode(
            jwt.as_bytes(),
            &jsonwebtoken::DecodingKey::from_secret(b"jitsi-app-secret"),
            &validation,
        )
        .unwrap()
        .claims
    }

    #[tokio::test]
    async fn a_signed_room_carries_the_participants_token() {
        let template = UrlTemplate::new("https://meet.example.org/{room}#config.prejoin=false")
            .with_tokens(tokens());
        let ends = std::time::UNIX_EPOCH + std::time::Duration::from_secs(4_000_000_000);
        let caller = Joiner {
            ends_at: Some(ends),
            ..joiner()
        };
        let JoinTarget::Redirect(url) = template.join(&caller).await.unwrap() else {
            panic!("a redirect");
        };
        assert!(url.starts_with("https://meet.example.org/switchboard-abc?jwt="));
        assert!(url.ends_with("#config.prejoin=false"));
        let claims = claims_in(&url);
        assert_eq!(claims.room, "switchboard-abc");
        assert_eq!(claims.context.user.id, "a");
        assert_eq!(claims.context.user.name, "Ann Lee");
        // The token expires when the call must end, however late the link is followed.
        assert_eq!(claims.exp, 4_000_000_000);

        let mut callee = joiner();
        callee.role = Role::Callee;
        let JoinTarget::Redirect(url) = template.join(&callee).await.unwrap() else {
            panic!("a redirect");
        };
        assert_eq!(claims_in(&url).context.user.id, "b");
    }

    #[test]
    fn the_token_goes_where_the_template_says() {
        let now = SystemTime::now();
        let placed = UrlTemplate::new("https://meet.example.org/{room}?lang=en&token={jwt}")
            .with_tokens(tokens())
            .fill(&joiner(), now)
            .unwrap();
        assert!(placed.starts_with("https://meet.example.org/switchboard-abc?lang=en&token=ey"));
        let appended = UrlTemplate::new("https://meet.example.org/{room}?lang=en")
            .with_tokens(tokens())
            .fill(&joiner(), now)
            .unwrap();
        assert!(appended.starts_with("https://meet.example.org/switchboard-abc?lang=en&jwt=ey"));
        assert_eq!(claims_in(&appended).room, "switchboard-abc");
    }
}
