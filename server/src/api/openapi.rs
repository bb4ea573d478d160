//! The API's OpenAPI description: the document's frame (title, key scheme, tags) here, each
//! route's part from its handler, gathered as the router registers them; served as JSON at
//! `/api/v1/openapi.json`, without a key (it holds nothing secret).

use std::sync::Arc;

use axum::{
    Extension,
    http::{HeaderValue, header},
    response::IntoResponse,
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

/// The name the key scheme goes by in the document (the `security` above spells it too).
const SCHEME: &str = "api_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard server API",
        description = "For the site's backend: who is online, live calls and call history, and \
                       acting for users (placing and ending calls, logging out everywhere). \
                       Every endpoint but this description needs `Authorization: Bearer <key>` \
                       with a key from the server's `api_keys`. Errors answer \
                       `{\"error\": {\"code\", \"message\"}}`; times are ms since the Unix epoch.",
    ),
    modifiers(&KeyScheme),
    security(("api_key" = [])),
    tags(
        (name = "presence", description = "Who is online"),
        (name = "calls", description = "Live calls, and acting on calls"),
        (name = "history", description = "Recorded calls"),
        (name = "users", description = "Acting on users"),
        (name = "meta", description = "This description"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer key every operation requires unless it says otherwise.
struct KeyScheme;

impl Modify for KeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("One of the server's `api_keys`"))
                    .build(),
            ),
        );
    }
}

/// The document, serialised once when the router is built.
#[derive(Clone)]
pub struct Document(pub Arc<str>);

/// This description (OpenAPI 3.1), listing every route under `/api/v1`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn document(Extension(document): Extension<Document>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0.to_string(),
    )
}
