//! The `url-template` provider: every call's room is a URL made from a template, e.g. a Jitsi
//! server's `https://meet.example.org/{room}`.

use async_trait::async_trait;

use super::{JoinTarget, Joiner, RoomError, RoomProvider};

/// Fills `{room}` with a name derived from the call id and `{name}` with the participant's
/// display name (both URL-encoded).
#[derive(Clone, Debug)]
pub struct UrlTemplate {
    template: String,
}

impl UrlTemplate {
    pub fn new(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
        }
    }
}

#[async_trait]
impl RoomProvider for UrlTemplate {
    fn name(&self) -> &'static str {
        "url-template"
    }

    async fn join(&self, joiner: &Joiner) -> Result<JoinTarget, RoomError> {
        let room = format!("switchboard-{}", joiner.room.id);
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        Ok(JoinTarget::Redirect(
            self.template
                .replace("{room}", &encode(&room))
                .replace("{name}", &encode(&joiner.user().name)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use switchboard_proto::{CallId, Role, UserRef};

    use super::*;
    use crate::rooms::CallRoom;

    #[tokio::test]
    async fn fills_the_template() {
        let joiner = Joiner {
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
        };
        let target = UrlTemplate::new("https://meet.example.org/{room}#name={name}")
            .join(&joiner)
            .await
            .unwrap();
        assert_eq!(
            target,
            JoinTarget::Redirect("https://meet.example.org/switchboard-abc#name=Ann+Lee".into())
        );
    }
}
