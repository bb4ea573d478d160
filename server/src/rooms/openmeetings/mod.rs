//! The OpenMeetings provider: one room per call, found or created by the call id, and a fresh
//! single-use secure hash for every click on a participant's link.

mod api;
mod call_rooms;
mod config;
mod error;
mod wire;

use async_trait::async_trait;
use tokio::time::Instant;

use self::api::{Api, Sid};
use self::call_rooms::{CallEntry, Calls};
use self::error::OmError;
use self::wire::{ExternalUser, HashOptions, NewRoom};
use super::{CallRoom, JoinTarget, Joiner, RoomError, RoomProvider};

pub use self::api::SetupError;
pub use self::config::{AfterCall, OpenMeetingsConfig, RoomType, UnknownValue};

/// The external group Switchboard's rooms and users live in on the OpenMeetings side, so they
/// never collide with another integration's ids.
const EXTERNAL_TYPE: &str = "switchboard";

pub struct OpenMeetings {
    api: Api,
    config: OpenMeetingsConfig,
    /// The rooms of calls in progress, by call id.
    calls: Calls,
}

impl OpenMeetings {
    pub fn new(config: OpenMeetingsConfig) -> Result<Self, SetupError> {
        Ok(Self {
            api: Api::new(&config)?,
            config,
            calls: Calls::default(),
        })
    }

    /// Logs in, finds the room and mints a hash; once more with a new session if OpenMeetings
    /// dropped the first one half-way (idle expiry, a restart).
    async fn mint(
        &self,
        joiner: &Joiner,
        entry: &CallEntry,
        deadline: Instant,
    ) -> Result<String, OmError> {
        match self.mint_once(joiner, entry, deadline).await {
            Err(err) if err.may_be_lost_session() => {
                tracing::debug!(
                    call = %joiner.room.id, %err,
                    "OpenMeetings session lost; retrying once"
                );
                self.mint_once(joiner, entry, deadline).await
            }
            result => result,
        }
    }

    async fn mint_once(
        &self,
        joiner: &Joiner,
        entry: &CallEntry,
        deadline: Instant,
    ) -> Result<String, OmError> {
        // A session per hash: using a hash turns its session into the participant's.
        let sid = self.api.login(deadline).await?;
        let room_id = self.room_id(&sid, &joiner.room, entry).await?;
        let user = joiner.user();
        let person = ExternalUser {
            login: &user.id,
            firstname: &user.name,
            lastname: "",
            email: "",
            profile_picture_url: "",
            external_id: &user.id,
            external_type: EXTERNAL_TYPE,
        };
        let options = HashOptions {
            room_id,
            moderator: self.config.moderators,
            show_audio_video_test: false,
            allow_same_url_multiple_times: false,
            allow_recording: false,
        };
        self.api.hash(&sid, &person, &options).await
    }

    async fn room_id(&self, sid: &Sid, room: &CallRoom, entry: &CallEntry) -> Result<i64, OmError> {
        let name = format!("Call {}", room.id);
        let new_room = NewRoom::private_call(
            &name,
            self.config.room_type.as_str(),
            self.config.capacity,
            &room.id.0,
            EXTERNAL_TYPE,
        );
        entry
            .room_id(|| {
                self.api
                    .find_or_create_room(sid, self.config.room_type, &new_room)
            })
            .await
    }

    fn link(&self, hash: &str) -> String {
        let mut url = self.api.url(&["hash"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("secure", hash);
            if let Some(language) = self.config.language {
                query.append_pair("language", &language.to_string());
            }
        }
        url.into()
    }

    async fn release(&self, room_id: i64, deadline: Instant) -> Result<(), OmError> {
        let sid = self.api.login(deadline).await?;
        match self.config.after_call {
            AfterCall::Close => self.api.close_room(&sid, room_id).await,
            AfterCall::Delete => self.api.delete_room(&sid, room_id).await,
            AfterCall::Keep => Ok(()),
        }
    }

    /// Closes or deletes the room as configured; a failure is only logged (the call is over
    /// either way, and OpenMeetings may be down).
    async fn release_logged(&self, room: &CallRoom, entry: &CallEntry) {
        if self.config.after_call == AfterCall::Keep {
            return;
        }
        let Some(room_id) = entry.take_for_release() else {
            return;
        };
        let deadline = Instant::now() + self.config.timeout;
        let result = match self.release(room_id, deadline).await {
            Err(err) if err.may_be_lost_session() => self.release(room_id, deadline).await,
            result => result,
        };
        match result {
            Ok(()) => tracing::debug!(
                call = %room.id, room_id, after_call = ?self.config.after_call,
                "OpenMeetings room released"
            ),
            Err(err) => tracing::warn!(
                call = %room.id, room_id, %err,
                "could not release the OpenMeetings room"
            ),
        }
    }
}

#[async_trait]
impl RoomProvider for OpenMeetings {
    fn name(&self) -> &'static str {
        "openmeetings"
    }

    async fn join(&self, joiner: &Joiner) -> Result<JoinTarget, RoomError> {
        // One deadline for the whole exchange (logins, room, hash, a retry), so a slow server
        // costs a waiting browser at most the configured timeout.
        let deadline = Instant::now() + self.config.timeout;
        let entry = self.calls.entry(&joiner.room.id);
        let result = self
            .mint(joiner, &entry, deadline)
            .await
            .map_err(RoomError::from);
        if !self.calls.is_current(&joiner.room.id, &entry) {
            // The call ended while this click was busy, too early for `call_over` to see the
            // room this click may have made.
            self.release_logged(&joiner.room, &entry).await;
            return Err(RoomError::CallEnded);
        }
        match result {
            Ok(hash) => Ok(JoinTarget::Redirect(self.link(&hash))),
            Err(err) => {
                // `/join` logs the failure for every provider; this adds who clicked.
                tracing::debug!(
                    call = %joiner.room.id, role = ?joiner.role, %err,
                    "no OpenMeetings room link"
                );
                Err(err)
            }
        }
    }

    async fn call_over(&self, room: &CallRoom) {
        // No entry: nobody followed a link, so no room was made. A click still busy making
        // the room releases it itself when it finds the call gone.
        if let Some(entry) = self.calls.end(&room.id) {
            self.release_logged(room, &entry).await;
        }
    }
}
