//! The web page in a real browser: Chromium driven over WebDriver (chromedriver) against the
//! API server, LocalStack, a real clamd with the project's test signatures and every stage
//! worker in-process. The test signs in with the dev-token form, uploads a JPEG and an EICAR
//! file through the page's `<input type=file>` (presigned PUTs straight to the uploads
//! bucket, allowed by its CORS rule for the page's origin), and waits until the page shows
//! the JPEG ready with its thumbnail loaded and the EICAR file quarantined with its reason.
//! It leaves a screenshot of the final page in `$CARGO_TARGET_TMPDIR/web_page/page.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (and `clamav-daemon`, Docker with the
//! LocalStack image, as the other end-to-end tests); without the browser it fails and says
//! which packages to install.

mod api_support;
mod support;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use api_support::ApiStack;
use fantoccini::{Client, ClientBuilder, Locator};
use intake_testkit::clamd::eicar;
use intake_testkit::eventually;
use serde_json::{Value, json};
use tokio::time::Instant;

const CHROMIUM: &str = "/usr/bin/chromium";
const MISSING_BROWSER: &str = "the web page test needs Chromium and chromedriver: install Debian's \
     packages `chromium` and `chromium-driver` (apt-get install chromium chromium-driver)";
/// Time for both files to go through the whole pipeline and the page to show it.
const DEADLINE: Duration = Duration::from_secs(150);

/// `chromedriver --port=N`, in a process group of its own so that dropping it also ends the
/// browser it started, even when the test panics before closing the session.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start(log: &Path) -> ChromeDriver {
        use std::os::unix::process::CommandExt;
        let binary = find_in_path("chromedriver").unwrap_or_else(|| panic!("{MISSING_BROWSER}"));
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: {MISSING_BROWSER}"
        );
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
        ChromeDriver { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        // Ask chromedriver to quit; it ends the browsers it started.
        if let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = socket.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let _ = socket.read(&mut [0u8; 1024]);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of the process group made for chromedriver in `start` (Chromium
        // after a panic). Only ever a positive group id: never a broader kill.
        if let Ok(group) = libc::pid_t::try_from(self.child.id())
            && group > 1
        {
            // SAFETY: killpg only sends a signal, to the group chromedriver leads.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

async fn browser(driver: &ChromeDriver) -> Client {
    // chromedriver takes a moment to listen.
    let address = format!("127.0.0.1:{}", driver.port);
    eventually(
        "chromedriver listening",
        Duration::from_secs(30),
        || async {
            tokio::net::TcpStream::connect(&address)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        },
    )
    .await;
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                // Containers often have a tiny /dev/shm; Chromium then crashes tabs.
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no WebDriver session from chromedriver at {}: {e}",
                driver.url()
            )
        })
}

/// What the page shows: one entry per file row, plus the live region and any script errors.
const SNAPSHOT: &str = r#"
const rows = [...document.querySelectorAll('#files li.file')].map((li) => {
  const img = li.querySelector('img.thumb');
  const bar = li.querySelector('progress');
  const error = li.querySelector('.row-error');
  return {
    name: li.querySelector('.file-name').textContent,
    id: li.dataset.fileId || null,
    state: li.dataset.state,
    follow: li.dataset.follow || null,
    label: li.querySelector('.state-label').textContent,
    error: error && !error.hidden ? error.textContent : null,
    thumb_alt: img ? img.alt : null,
    thumb_width: img ? img.naturalWidth : 0,
    thumb_complete: img ? img.complete : false,
    progress: bar && !bar.closest('.progress-box').hidden ? [bar.value, bar.max] : null,
  };
});
return {
  rows,
  status: document.querySelector('#status').textContent,
  signin_error: document.querySelector('#signin-error').textContent,
  errors: window.__pageErrors || [],
};
"#;

/// Records uncaught errors and rejections of the page's scripts from now on.
const CATCH_ERRORS: &str = r#"
window.__pageErrors = window.__pageErrors || [];
window.addEventListener('error', (e) => window.__pageErrors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => window.__pageErrors.push(String(e.reason && (e.reason.stack || e.reason))));
"#;

async fn snapshot(client: &Client) -> Value {
    client
        .execute(SNAPSHOT, vec![])
        .await
        .expect("read the page")
}

fn row<'a>(page: &'a Value, name: &str) -> Option<&'a Value> {
    page["rows"]
        .as_array()?
        .iter()
        .find(|r| r["name"].as_str() == Some(name))
}

/// Polls the page until `done` accepts its snapshot. Panics, after saving a screenshot,
/// with what the page showed last: at once when `broken` says why the wait is hopeless (a
/// row ended in another state), else at the deadline.
async fn wait_for_page(
    client: &Client,
    what: &str,
    done: impl Fn(&Value) -> bool,
    broken: impl Fn(&Value) -> Option<String>,
) -> Value {
    let started = Instant::now();
    loop {
        let page = snapshot(client).await;
        if done(&page) {
            return page;
        }
        let why = broken(&page).or_else(|| {
            (started.elapsed() >= DEADLINE).then(|| format!("timed out after {DEADLINE:?}"))
        });
        if let Some(why) = why {
            let shot = screenshot_path("failure.png");
            if let Ok(png) = client.screenshot().await {
                let _ = std::fs::write(&shot, png);
            }
            panic!(
                "waiting for {what}: {why}; the page showed:\n{}\nscreenshot: {}",
                serde_json::to_string_pretty(&page).unwrap(),
                shot.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_page");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_uploads_a_photo_to_ready_with_its_thumbnail_and_quarantines_eicar() {
    // Fail first, and clearly, when the browser is missing.
    assert!(
        find_in_path("chromedriver").is_some() && Path::new(CHROMIUM).exists(),
        "{MISSING_BROWSER}"
    );
    let scratch = tempfile::tempdir().expect("temp dir");

    // The API serves the page; its origin is in the bucket's CORS rule, dev tokens are on.
    let mut stack =
        ApiStack::start("INTAKE_TEST_JWT_SECRET_WEB", "dev_tokens = true\n", true).await;
    stack.spawn_workers().await;
    let origin = stack.base.clone();

    // The files, as a user would pick them.
    let photo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/photo.jpg")
        .canonicalize()
        .expect("samples/photo.jpg");
    let infected = scratch.path().join("eicar.txt");
    std::fs::write(&infected, eicar()).expect("write the EICAR file");

    let driver = ChromeDriver::start(&scratch.path().join("chromedriver.log"));
    let client = browser(&driver).await;
    client
        .goto(&format!("{origin}/"))
        .await
        .expect("open the page");
    client.execute(CATCH_ERRORS, vec![]).await.expect("script");
    assert_eq!(client.title().await.unwrap(), "Intake: upload files");

    // Sign in with the dev-token form, shown because the server has dev_tokens on.
    let dev_form = Locator::Css("#dev-form:not([hidden])");
    eventually("the dev-token form", Duration::from_secs(20), || async {
        client
            .find(dev_form)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;
    for (field, value) in [("#dev-tenant", "web-tenant"), ("#dev-user", "web-user")] {
        let input = client.find(Locator::Css(field)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    client
        .find(Locator::Css("#dev-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        "the upload area after signing in",
        Duration::from_secs(20),
        || async {
            let shown = client
                .find(Locator::Css("#app:not([hidden])"))
                .await
                .is_ok();
            let who = client
                .find(Locator::Css("#whoami"))
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if shown && who.contains("web-user") && who.contains("web-tenant") {
                Ok(())
            } else {
                let page = snapshot(&client).await;
                Err(format!("signed in: {shown}, whoami {who:?}, page {page}"))
            }
        },
    )
    .await;

    // Both files at once through the real file input.
    let input = client
        .find(Locator::Css("input#file-input[type=file][multiple]"))
        .await
        .unwrap();
    input
        .send_keys(&format!("{}\n{}", photo.display(), infected.display()))
        .await
        .expect("choose the files");

    let page = wait_for_page(
        &client,
        "photo.jpg ready with its thumbnail shown and eicar.txt quarantined",
        |page| {
            let photo_done = row(page, "photo.jpg").is_some_and(|r| {
                r["state"] == "ready"
                    && r["thumb_complete"] == true
                    && r["thumb_width"].as_u64() > Some(0)
            });
            let eicar_done = row(page, "eicar.txt").is_some_and(|r| r["state"] == "quarantined");
            photo_done && eicar_done
        },
        |page| {
            let wrong = |name: &str, unexpected: &[&str]| {
                row(page, name)
                    .filter(|r| unexpected.iter().any(|s| r["state"] == *s))
                    .map(|r| format!("{name} ended {}: {}", r["state"], r["label"]))
            };
            let errors = page["errors"].as_array().filter(|e| !e.is_empty());
            wrong("photo.jpg", &["failed", "quarantined", "deleted"])
                .or_else(|| wrong("eicar.txt", &["failed", "ready", "deleted"]))
                .or_else(|| errors.map(|e| format!("script errors: {e:?}")))
        },
    )
    .await;
    println!(
        "the page:\n{}",
        serde_json::to_string_pretty(&page).unwrap()
    );

    let jpeg = row(&page, "photo.jpg").unwrap();
    let bad = row(&page, "eicar.txt").unwrap();
    assert_eq!(page["rows"].as_array().unwrap().len(), 2, "{page:#}");
    assert_eq!(jpeg["thumb_alt"], "thumbnail of photo.jpg");
    assert_eq!(jpeg["label"], "ready");
    assert_eq!(jpeg["error"], Value::Null, "{jpeg:#}");
    assert_eq!(bad["error"], Value::Null, "{bad:#}");
    assert_eq!(page["errors"], json!([]), "script errors: {page:#}");
    for r in [jpeg, bad] {
        let id = r["id"].as_str().expect("a file id on the row");
        assert_eq!(id.len(), 36, "a UUID: {id}");
        // Followed through the event stream, not the polling fallback.
        assert_eq!(r["follow"], "stream", "{r:#}");
        // The whole file went up: the bar is full.
        let progress = r["progress"].as_array().expect("a progress bar");
        assert_eq!(progress[0], progress[1], "{r:#}");
    }
    let photo_len = std::fs::metadata(&photo).unwrap().len();
    assert_eq!(jpeg["progress"][1].as_f64(), Some(photo_len as f64));

    // The reason is on screen (WebDriver's text is what is rendered, not hidden text).
    let eicar_id = bad["id"].as_str().unwrap();
    let label = client
        .find(Locator::Css(&format!(
            "li.file[data-file-id=\"{eicar_id}\"][data-state=quarantined] .state-label"
        )))
        .await
        .unwrap();
    assert!(label.is_displayed().await.unwrap());
    let text = label.text().await.unwrap();
    assert!(
        text.starts_with("quarantined — infected") && text.contains("Intake.Test.EICAR"),
        "the quarantine reason as shown: {text:?}"
    );
    // The photo's thumbnail is a rendered image, and its buttons are there.
    let photo_id = jpeg["id"].as_str().unwrap();
    let thumb = client
        .find(Locator::Css(&format!(
            "li.file[data-file-id=\"{photo_id}\"][data-state=ready] img.thumb"
        )))
        .await
        .unwrap();
    assert!(thumb.is_displayed().await.unwrap());
    for button in ["download", "delete"] {
        let b = client
            .find(Locator::Css(&format!(
                "li.file[data-file-id=\"{photo_id}\"] button.{button}"
            )))
            .await
            .unwrap();
        assert!(b.is_displayed().await.unwrap(), "the {button} button");
    }

    // The screenshot, for people.
    let path = screenshot_path("page.png");
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(&path, &png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a {}-byte screenshot is suspiciously small",
        png.len()
    );
    let image = image::load_from_memory(&png).expect("decode the screenshot");
    assert!(
        image.width() >= 1000 && image.height() >= 600,
        "{}x{}",
        image.width(),
        image.height()
    );
    let rgb = image.to_rgb8();
    let mut colours: Vec<[u8; 3]> = rgb.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 200,
        "only {} colours: a blank page?",
        colours.len()
    );

    client.close().await.expect("end the browser session");
    drop(driver);
    stack.shutdown().await;
}
