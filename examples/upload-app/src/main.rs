//! `upload-app`: serve the example photo service against a running Intake API
//! (`intake up` or `intake serve`). Settings come from the environment:
//!
//! - `INTAKE_API_URL`: the API, default `http://127.0.0.1:8080` (`[api] bind`).
//! - `INTAKE_API_KEY`: a service key of `[[api.keys]]` in the pipeline's config (required).
//! - `UPLOAD_APP_BIND`: where the app listens, default `127.0.0.1:3000`.

use upload_app::{App, IntakeClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api_url =
        std::env::var("INTAKE_API_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let Ok(api_key) = std::env::var("INTAKE_API_KEY") else {
        return Err(
            "INTAKE_API_KEY is not set: set it to a service key of Intake's [[api.keys]] \
             (see examples/upload-app/README.md for adding one to pipeline.toml)"
                .into(),
        );
    };
    let bind = std::env::var("UPLOAD_APP_BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let intake = IntakeClient::new(&api_url, &api_key)?;
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| format!("listening on {bind}: {e}; set UPLOAD_APP_BIND to a free address"))?;
    eprintln!(
        "upload-app: listening on http://{}, using Intake's API at {api_url}",
        listener.local_addr()?
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    upload_app::serve(listener, App::new(intake), shutdown).await?;
    Ok(())
}
