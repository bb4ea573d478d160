//! The OpenMeetings provider: one room per call, found or created by the call id, and a fresh
//! single-use secure hash for every click on a participant's link.

mod api;
mod config;
mod error;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use switchboard_proto::CallId;
use tokio::sync::OnceCell;

use self::api::{Api, Sid};
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
    /// Room ids by call. A cell per call makes concurrent first clicks of both participants
    /// wait for one find-or-create instead of racing two; a failed attempt leaves the cell
    /// empty so the next click tries again.
    rooms: Mutex<HashMap<CallId, Arc<OnceCell<i64>>>>,
}

impl OpenMeetings {
    pub fn new(config: OpenMeetingsConfig) -> Result<Self, SetupError> {
        Ok(Self {
            api: Api::new(&config)?,
            config,
            rooms: Mutex::default(),
        })
    }

    /// Logs in, finds the room and mints a hash; once more with a new session if OpenMeetings
    /// dropped the first one half-way (idle expiry, a restart).
    async fn mint(&self, joiner: &Joiner) -> Result<String, OmError> {
        match self.mint_once(joiner).await {
            Err(err) if err.is_not_allowed() => {
                tracing::debug!(call = %joiner.room.id, %err, "OpenMeetings session lost; retrying once");
                self.mint_once(joiner).await
            }
            result => result,
        }
    }

    async fn mint_once(&self, joiner: &Joiner) -> Result<String, OmError> {
        // A session per hash: using a hash turns its session into the participant's.
        let sid = self.api.login().await?;
        let room_id = self.room_id(&sid, &joiner.room).await?;
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

    async fn room_id(&self, sid: &Sid, room: &CallRoom) -> Result<i64, OmError> {
        let cell = self
            .rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(room.id.clone())
            .or_default()
            .clone();
        let name = format!("Call {}", room.id);
        let new_room = NewRoom {
            name: &name,
            kind: self.config.room_type.as_str(),
            capacity: self.config.capacity,
            is_public: false,
            appointment: false,
            demo: false,
            moderated: false,
            wait_moderator: false,
            allow_user_questions: false,
            allow_recording: false,
            audio_only: false,
            external_id: &room.id.0,
            external_type: EXTERNAL_TYPE,
        };
        let id = cell
            .get_or_try_init(|| {
                self.api
                    .find_or_create_room(sid, self.config.room_type, &new_room)
            })
            .await?;
        Ok(*id)
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

    async fn release(&self, room_id: i64) -> Result<(), OmError> {
        let sid = self.api.login().await?;
        match self.config.after_call {
            AfterCall::Close => self.api.close_room(&sid, room_id).await,
            AfterCall::Delete => self.api.delete_room(&sid, room_id).await,
            AfterCall::Keep => Ok(()),
        }
    }
}

#[async_trait]
impl RoomProvider for OpenMeetings {
    fn name(&self) -> &'static str {
        "openmeetings"
    }

    async fn join(&self, joiner: &Joiner) -> Result<JoinTarget, RoomError> {
        // One deadline for the whole exchange (up to four requests), so a slow server costs a
        // waiting browser at most the configured timeout.
        let limit = self.config.timeout;
        let result = match tokio::time::timeout(limit, self.mint(joiner)).await {
            Ok(result) => result.map_err(RoomError::from),
            Err(_) => Err(RoomError::Unreachable(format!(
                "OpenMeetings did not answer within {limit:?}"
            ))),
        };
        match result {
            Ok(hash) => Ok(JoinTarget::Redirect(self.link(&hash))),
            Err(err) => {
                // `/join` logs the failure for every provider; this adds who clicked.
                tracing::debug!(call = %joiner.room.id, role = ?joiner.role, %err, "no OpenMeetings room link");
                Err(err)
            }
        }
    }

    async fn call_over(&self, room: &CallRoom) {
        let cell = self
            .rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&room.id);
        // Nobody followed a link, so no room was made.
        let Some(room_id) = cell.and_then(|cell| cell.get().copied()) else {
            return;
        };
        if self.config.after_call == AfterCall::Keep {
            return;
        }
        let limit = self.config.timeout;
        let attempt = async {
            match self.release(room_id).await {
                Err(err) if err.is_not_allowed() => self.release(room_id).await,
                result => result,
            }
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(())) => {
                tracing::debug!(call = %room.id, room_id, after_call = ?self.config.after_call, "OpenMeetings room released");
            }
            Ok(Err(err)) => {
                tracing::warn!(call = %room.id, room_id, %err, "could not release the OpenMeetings room");
            }
            Err(_) => {
                tracing::warn!(call = %room.id, room_id, "could not release the OpenMeetings room: no answer within {limit:?}");
            }
        }
    }
}
