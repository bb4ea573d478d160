//! Rooms at a URL template for a Jitsi deployment with token authentication: each
//! participant's redirect carries a token that expires when the call must end.

use std::time::Duration;

use jsonwebtoken::{DecodingKey, Validation, decode};
use switchboard_proto::CallState;

use crate::common::{TestServer, server::http};

const SECRET: &str = "jitsi-app-secret";

#[derive(serde::Deserialize)]
struct Claims {
    room: String,
    exp: u64,
    context: serde_json::Value,
}

/// Follows a join link and reads the token in the redirect.
async fn token_behind(link: &str) -> Claims {
    let answer = http().get(link).send().await.expect("switchboard answers");
    assert_eq!(answer.status(), reqwest::StatusCode::SEE_OTHER);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let jwt = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "jwt")
        .map(|(_, v)| v.into_owned())
        .expect("a jwt in the redirect");
    let mut validation = Validation::default();
    validation.set_audience(&["jitsi"]);
    validation.set_issuer(&["switchboard"]);
    decode::<Claims>(
        &jwt,
        &DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .expect("a valid token")
    .claims
}

#[tokio::test]
async fn each_participant_gets_a_token_that_ends_with_the_call() {
    let server = TestServer::start_with(|s| {
        s.room_url_template = Some("https://meet.example.org/{room}".into());
        s.room_jwt_secret = Some(SECRET.into());
        s.room_jwt_app_id = Some("switchboard".into());
        s.max_call_duration = Duration::from_secs(2 * 3600);
    })
    .await;
    let mut ann = server.user("ann").await;
    let mut bob = server.user("bob").await;
    ann.call("bob").await;
    let ringing = bob.call_in(CallState::Ringing).await;
    // Following the link answers the call.
    let bobs = token_behind(&ringing.link.unwrap()).await;
    let answered = ann.call_in(CallState::Answered).await;
    assert_eq!(bobs.context["user"]["id"], "bob");

    // However late a participant follows the link, the token ends when the call must.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let anns = token_behind(&answered.link.unwrap()).await;
    assert_eq!(anns.context["user"]["id"], "ann");
    assert_eq!(anns.room, bobs.room);
    assert_eq!(anns.exp, bobs.exp);
}
