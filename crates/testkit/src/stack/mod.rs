//! [`IntakeStack`]: the whole Intake pipeline inside one integration test — LocalStack
//! (a testcontainers container, or the one `INTAKE_TEST_ENDPOINT` names), a uniquely named
//! pipeline provisioned from a `pipeline.toml`, a SQLite ledger in a temporary directory,
//! a clamd with a tiny test signature database, and one worker per stage running as tasks
//! of the test's own tokio runtime.
//!
//! ```no_run
//! use std::time::Duration;
//! use intake_testkit::stack::{IntakeStack, Scanner, State};
//! use intake_testkit::samples;
//!
//! # async fn demo() -> Result<(), intake_testkit::stack::StackError> {
//! let stack = IntakeStack::builder().scanner(Scanner::Clamd).start().await?;
//! let file = stack.upload("tenant-a", "user-1", "photo.jpg", samples::jpeg()).await?;
//! let done = stack.wait_terminal(&file, Duration::from_secs(60)).await?;
//! assert_eq!(done.state, State::Done);
//! let thumb = stack.rendition(&file, "thumb").await?;
//! assert!(!thumb.bytes.is_empty());
//! stack.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Modules: [`builder`] (config, scanner, shared LocalStack), `run` (provisioning, the
//! workers, removing resources), [`status`] (uploads, terminal states, waiting on the
//! ledger), [`error`] ([`StackError`]).
//!
//! **Teardown.** [`IntakeStack::shutdown`] stops the workers gracefully and removes the
//! stack's buckets (every version), queues, topics and alarms; call it at the end of a
//! test. Dropping a stack without it (a panicking test) aborts the workers at once and
//! removes the resources from a separate thread, blocking the dropping thread while that
//! runs (a tenth of a second on LocalStack); when the stack started its own LocalStack
//! container and nobody shares it, only the container is removed (it holds everything).

#![warn(missing_docs)]

pub mod builder;
pub mod error;
mod run;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use intake_aws::AwsClients;
use intake_core::key_template::{fill_key, sanitize_filename};
use intake_core::names::BucketRole;
use intake_core::{PipelineConfig, ResourceNames};
use intake_runtime::StageCx;
use intake_store::Ledger;

pub use builder::{DEFAULT_CONFIG, IntakeStackBuilder, Scanner};
pub use error::StackError;
pub use status::{FileStatus, State, Step, UploadedFile};

use crate::clamd::ClamdFixture;
use crate::localstack::LocalStack;

/// A running Intake pipeline for one test; see the [module docs](self).
///
/// ```no_run
/// # async fn demo() -> Result<(), intake_testkit::stack::StackError> {
/// let stack = intake_testkit::IntakeStack::builder().start().await?;
/// // ... upload, wait, assert ...
/// stack.shutdown().await;
/// # Ok(()) }
/// ```
pub struct IntakeStack {
    localstack: Arc<LocalStack>,
    cx: StageCx,
    workers: Option<run::Workers>,
    _clamd: Option<ClamdFixture>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A rendition the thumbnail stage made, read back from the derivatives bucket.
///
/// ```no_run
/// # async fn demo(stack: intake_testkit::IntakeStack, file: intake_testkit::stack::UploadedFile) -> Result<(), intake_testkit::stack::StackError> {
/// let thumb = stack.rendition(&file, "thumb").await?;
/// assert!(thumb.width <= 256 && thumb.height <= 256);
/// assert_eq!(thumb.content_type, "image/webp");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendition {
    /// Its name in `pipeline.toml`, e.g. `thumb`.
    pub name: String,
    /// Where it is: the derivatives bucket.
    pub bucket: String,
    /// Its key, `{tenant}/{object id}/{name}.{ext}`.
    pub key: String,
    /// E.g. `image/webp`.
    pub content_type: String,
    /// In pixels.
    pub width: u32,
    /// In pixels.
    pub height: u32,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

impl IntakeStack {
    /// A builder with the defaults: the repository's `pipeline.toml`, a real clamd, a
    /// LocalStack of the stack's own.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::stack::StackError> {
    /// let stack = intake_testkit::IntakeStack::builder().start().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> IntakeStackBuilder {
        IntakeStackBuilder::default()
    }

    /// The pipeline's unique name (`it-` and a ULID), the prefix of all its resources.
    ///
    /// ```no_run
    /// # fn demo(stack: &intake_testkit::IntakeStack) {
    /// assert!(stack.name().starts_with("it-"));
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.cx.names.prefix
    }

    /// The LocalStack the stack runs on; pass it to another builder's
    /// [`localstack`](IntakeStackBuilder::localstack) to share it.
    ///
    /// ```no_run
    /// # async fn demo(a: intake_testkit::IntakeStack) -> Result<(), intake_testkit::stack::StackError> {
    /// let b = intake_testkit::IntakeStack::builder()
    ///     .localstack(a.localstack().clone())
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn localstack(&self) -> &Arc<LocalStack> {
        &self.localstack
    }

    /// AWS clients pointed at the stack's LocalStack (for your app under test, or to look
    /// at buckets and queues).
    ///
    /// ```no_run
    /// # async fn demo(stack: &intake_testkit::IntakeStack) {
    /// let buckets = stack.aws().s3.list_buckets().send().await.unwrap();
    /// # }
    /// ```
    pub fn aws(&self) -> &AwsClients {
        &self.cx.aws
    }

    /// The config the stack runs: yours (or the default) with the stack's unique names,
    /// its ledger and its scanner filled in.
    ///
    /// ```no_run
    /// # fn demo(stack: &intake_testkit::IntakeStack) {
    /// let template = &stack.config().uploads.key_template;
    /// # }
    /// ```
    pub fn config(&self) -> &Arc<PipelineConfig> {
        &self.cx.config
    }

    /// The names of the stack's buckets, queues and topics.
    ///
    /// ```no_run
    /// # fn demo(stack: &intake_testkit::IntakeStack) {
    /// use intake_core::names::BucketRole;
    /// assert!(stack.names().bucket(BucketRole::Store).starts_with(stack.name()));
    /// # }
    /// ```
    pub fn names(&self) -> &Arc<ResourceNames> {
        &self.cx.names
    }

    /// The stack's ledger (SQLite): file states, every stage's outcome, the catalog.
    ///
    /// ```no_run
    /// # async fn demo(stack: &intake_testkit::IntakeStack, file: &intake_testkit::stack::UploadedFile) {
    /// let records = stack.ledger().catalog_find(&file.bucket, &file.key).await.unwrap();
    /// # }
    /// ```
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.cx.ledger
    }

    /// The uploads bucket: where uploads land and the pipeline starts.
    ///
    /// ```no_run
    /// # fn demo(stack: &intake_testkit::IntakeStack) {
    /// assert_eq!(stack.uploads_bucket(), format!("{}-uploads", stack.name()));
    /// # }
    /// ```
    pub fn uploads_bucket(&self) -> &str {
        self.cx.names.bucket(BucketRole::Uploads)
    }

    /// Every bucket, queue and topic name of this stack (what shutdown removes).
    ///
    /// ```no_run
    /// # fn demo(stack: &intake_testkit::IntakeStack) {
    /// assert!(stack.resource_names().iter().all(|n| n.starts_with(stack.name())));
    /// # }
    /// ```
    pub fn resource_names(&self) -> Vec<String> {
        let names = &self.cx.names;
        let mut out: Vec<String> = names.buckets.values().cloned().collect();
        out.extend(
            names
                .stages
                .values()
                .flat_map(|q| [q.queue.clone(), q.dlq.clone()]),
        );
        out.extend([names.events_topic.clone(), names.alerts_topic.clone()]);
        out
    }

    /// Upload `bytes` as `filename` for `tenant`/`user`, as a browser would: the key is
    /// made from the config's key template, a PUT URL is presigned for it (signing its
    /// Content-Type, guessed from the filename, and its length) and the bytes are PUT to
    /// it over plain HTTP.
    ///
    /// ```no_run
    /// # async fn demo(stack: &intake_testkit::IntakeStack) -> Result<(), intake_testkit::stack::StackError> {
    /// let file = stack
    ///     .upload("tenant-a", "user-1", "photo.jpg", intake_testkit::samples::jpeg())
    ///     .await?;
    /// assert!(file.key.starts_with("tenant-a/user-1/"));
    /// # Ok(()) }
    /// ```
    pub async fn upload(
        &self,
        tenant: &str,
        user: &str,
        filename: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<UploadedFile, StackError> {
        let bytes = bytes.into();
        let content_type = mime_guess::from_path(filename)
            .first_raw()
            .unwrap_or("application/octet-stream");
        self.upload_as(tenant, user, filename, content_type, bytes)
            .await
    }

    /// [`upload`](Self::upload) with an explicit Content-Type (e.g. a wrong one, to test
    /// what validation makes of it).
    ///
    /// ```no_run
    /// # async fn demo(stack: &intake_testkit::IntakeStack) -> Result<(), intake_testkit::stack::StackError> {
    /// let file = stack
    ///     .upload_as("tenant-a", "user-1", "photo.jpg", "image/jpeg", intake_testkit::samples::jpeg())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn upload_as(
        &self,
        tenant: &str,
        user: &str,
        filename: &str,
        content_type: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<UploadedFile, StackError> {
        let bytes = bytes.into();
        let fail = |message: String| StackError::Upload {
            filename: filename.to_owned(),
            message,
        };
        let config = &self.cx.config;
        let safe = sanitize_filename(filename, config.api.max_filename_bytes as usize)
            .map_err(|e| fail(e.to_string()))?;
        let key = fill_key(
            &config.uploads.key_template,
            tenant,
            user,
            &uuid_like(),
            &safe,
        );
        let bucket = self.uploads_bucket().to_owned();
        let put = intake_aws::presign::presign_put(
            &self.cx.aws,
            &bucket,
            &key,
            content_type,
            bytes.len() as u64,
            Duration::from_secs(900),
        )
        .await
        .map_err(|e| fail(format!("presigning the PUT: {e}")))?;
        let mut request = self.http.put(&put.url).body(bytes);
        for (name, value) in &put.headers {
            // The client derives Content-Length from the body, as a browser does.
            if name != "content-length" {
                request = request.header(name, value);
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| fail(format!("PUT to the presigned URL: {e}")))?;
        let status = response.status();
        let version = response
            .headers()
            .get("x-amz-version-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(fail(format!("S3 answered {status}: {body}")));
        }
        let version_id = version.ok_or_else(|| {
            fail("S3 gave no x-amz-version-id (is the uploads bucket versioned?)".into())
        })?;
        Ok(UploadedFile {
            bucket,
            key,
            version_id,
        })
    }

    /// Wait until `file` reaches a terminal state (done, quarantined or failed), polling
    /// the ledger. Any terminal state is `Ok`; on timeout the error says which stage the
    /// object waits for and what the ledger last recorded (including retries and their
    /// codes).
    ///
    /// ```no_run
    /// # async fn demo(stack: &intake_testkit::IntakeStack, file: &intake_testkit::stack::UploadedFile) -> Result<(), intake_testkit::stack::StackError> {
    /// use std::time::Duration;
    /// use intake_testkit::stack::State;
    ///
    /// let status = stack.wait_terminal(file, Duration::from_secs(60)).await?;
    /// if status.state == State::Quarantined {
    ///     println!("{} said {} ({:?})", status.stage, status.outcome, status.code);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn wait_terminal(
        &self,
        file: &UploadedFile,
        timeout: Duration,
    ) -> Result<FileStatus, StackError> {
        status::wait_terminal(&self.cx.ledger, file, timeout).await
    }

    /// Wait until `file` reaches a terminal state and require it to be `expected`; any
    /// other ending is an error naming the stage, the outcome and the code that decided it.
    ///
    /// ```no_run
    /// # async fn demo(stack: &intake_testkit::IntakeStack) -> Result<(), intake_testkit::stack::StackError> {
    /// use std::time::Duration;
    /// use intake_testkit::{samples, stack::State};
    ///
    /// let file = stack.upload("tenant-a", "user-1", "eicar.txt", samples::eicar()).await?;
    /// stack.wait_for(&file, State::Quarantined, Duration::from_secs(60)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for(
        &self,
        file: &UploadedFile,
        expected: State,
        timeout: Duration,
    ) -> Result<FileStatus, StackError> {
        let status = self.wait_terminal(file, timeout).await?;
        status::expect_state(file, status, expected)
    }

    /// [`wait_for`](Self::wait_for) `State::Done`: the file passed every stage.
    ///
    /// ```no_run
    /// # async fn demo(stack: &intake_testkit::IntakeStack, file: &intake_testkit::stack::UploadedFile) {
    /// use std::time::Duration;
    ///
    /// // Panics with e.g. "... ended quarantined, not done: stage validate, outcome rejected,
    /// // code type_not_allowed (...)"
    /// stack.wait_done(file, Duration::from_secs(60)).await.unwrap();
    /// # }
    /// ```
    pub async fn wait_done(
        &self,
        file: &UploadedFile,
        timeout: Duration,
    ) -> Result<FileStatus, StackError> {
        self.wait_for(file, State::Done, timeout).await
    }

    /// The rendition `name` (e.g. `thumb`) of `file`, from the catalog and the derivatives
    /// bucket. Call it once the file is done.
    ///
    /// ```no_run
    /// # async fn demo(stack: &intake_testkit::IntakeStack, file: &intake_testkit::stack::UploadedFile) -> Result<(), intake_testkit::stack::StackError> {
    /// let thumb = stack.rendition(file, "thumb").await?;
    /// std::fs::write("/tmp/thumb.webp", &thumb.bytes).unwrap();
    /// # Ok(()) }
    /// ```
    pub async fn rendition(
        &self,
        file: &UploadedFile,
        name: &str,
    ) -> Result<Rendition, StackError> {
        let missing = |why: String| StackError::NoRendition {
            object: file.to_string(),
            name: name.to_owned(),
            why,
        };
        let records = self
            .cx
            .ledger
            .catalog_find(&file.bucket, &file.key)
            .await
            .map_err(|e| StackError::Read {
                what: format!("reading the catalog for {file}"),
                message: e.to_string(),
            })?;
        let record = records
            .into_iter()
            .map(|entry| entry.record)
            .find(|r| r.upload.version == file.version_id)
            .ok_or_else(|| {
                missing("it is not in the catalog (not done yet, or quarantined or failed)".into())
            })?;
        let Some(found) = record.renditions.iter().find(|r| r.name == name) else {
            let names: Vec<&str> = record.renditions.iter().map(|r| r.name.as_str()).collect();
            return Err(missing(if names.is_empty() {
                "it has no renditions (only images get them)".into()
            } else {
                format!("it has {}", names.join(", "))
            }));
        };
        let object = self
            .cx
            .aws
            .s3
            .get_object()
            .bucket(&found.bucket)
            .key(&found.key)
            .send()
            .await
            .map_err(|e| StackError::Read {
                what: format!("reading s3://{}/{}", found.bucket, found.key),
                message: e.to_string(),
            })?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| StackError::Read {
                what: format!("reading s3://{}/{}", found.bucket, found.key),
                message: e.to_string(),
            })?
            .into_bytes()
            .to_vec();
        Ok(Rendition {
            name: found.name.clone(),
            bucket: found.bucket.clone(),
            key: found.key.clone(),
            content_type: found.content_type.clone(),
            width: found.width,
            height: found.height,
            bytes,
        })
    }

    /// Stop the workers (each gets half a second to finish what it holds) and remove the stack's
    /// buckets (every version), queues, topics and alarms; then close the ledger. Errors
    /// are printed, not returned: a test's verdict should not depend on its cleanup.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), intake_testkit::stack::StackError> {
    /// let stack = intake_testkit::IntakeStack::builder().start().await?;
    /// stack.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(mut self) {
        if let Some(workers) = self.workers.take() {
            workers.stop().await;
        }
        if let Err(e) = run::remove_resources(&self.cx.aws, &self.cx.names).await {
            eprintln!(
                "intake-testkit: removing stack {}'s resources: {e}",
                self.name()
            );
        }
        self.cx.ledger.close().await;
    }
}

impl std::fmt::Debug for IntakeStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeStack")
            .field("name", &self.name())
            .field("localstack", &self.localstack.endpoint())
            .field("running", &self.workers.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for IntakeStack {
    fn drop(&mut self) {
        let Some(mut workers) = self.workers.take() else {
            return; // shut down already
        };
        workers.abort();
        let exclusive_container =
            Arc::strong_count(&self.localstack) == 1 && self.localstack.container_id().is_some();
        if !exclusive_container {
            run::remove_resources_blocking(&self.localstack, (*self.cx.names).clone());
        }
    }
}

/// A fresh UUID v7 in the 8-4-4-4-12 shape the key template's `{uuid}` takes.
fn uuid_like() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuid_like_matches_the_key_templates_uuid() {
        let key = intake_core::key_template::fill_key(
            "{tenant}/{user}/{uuid}-{filename}",
            "t",
            "u",
            &super::uuid_like(),
            "a-b.png",
        );
        let parts = intake_core::key_template::parse_key("{tenant}/{user}/{uuid}-{filename}", &key)
            .expect("the key parses");
        assert_eq!(parts.filename.as_deref(), Some("a-b.png"));
    }
}
