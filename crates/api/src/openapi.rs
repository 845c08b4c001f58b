//! `GET /v1/openapi.json`: the OpenAPI 3.1 document, generated from the handlers'
//! annotations and the request and response types, so it cannot drift from the code.

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{downloads, error, events, files, health, multipart, uploads, web};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Intake API",
        description = "Tenant-scoped presigned uploads (PUT, POST, multipart) to S3, the state of every file through the pipeline, downloads of promoted files and deletes.",
    ),
    paths(
        uploads::create_upload,
        multipart::sign_parts,
        multipart::complete_upload,
        multipart::abort_upload,
        files::list_files,
        files::get_file,
        events::file_events,
        downloads::download,
        files::delete_file,
        web::client_config,
        web::dev_token,
        health::healthz,
        health::readyz,
        health::metrics,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&Security),
    tags(
        (name = "uploads", description = "Signed upload URLs"),
        (name = "files", description = "The caller's files"),
        (name = "web", description = "What the web page needs"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
    }
}
