//! `intake catalog list` and `intake catalog show` as a user runs them: the real binary
//! against a SQLite ledger in a tempdir that the test fills through `intake_store`, named
//! by `INTAKE_DATABASE_URL`, with a copy of the repository's `pipeline.toml`.

use std::path::PathBuf;
use std::process::{Command, Output};

use intake_store::{
    CatalogEntry, CatalogFilter, CatalogRecord, Completion, Ledger, RenditionRecord, ScanRecord,
    StageResult, StoredAt, VersionKey,
};

const REPO_CONFIG: &str = include_str!("../../../pipeline.toml");

/// 2023-11-14T22:13:20.000Z
const START_MS: i64 = 1_700_000_000_000;
const PHOTO_KEY: &str = "acme/user-1/0b7c3e1e-photo.png";

/// A readable 32-hex-digit object id: `c` repeated.
fn id(c: char) -> String {
    c.to_string().repeat(32)
}

/// A ledger file and a config in a tempdir that lives as long as this.
struct Ledgered {
    dir: tempfile::TempDir,
    url: String,
}

impl Ledgered {
    fn config(&self) -> PathBuf {
        self.dir.path().join("pipeline.toml")
    }

    fn intake(&self, args: &[&str]) -> Output {
        let config = self.config();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_intake"));
        cmd.arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("INTAKE_CONFIG")
            .env("INTAKE_DATABASE_URL", &self.url);
        cmd.output().expect("run intake")
    }

    /// Runs `intake` expecting success; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.intake(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "intake {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs `intake` expecting exit code `code`; its stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.intake(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "intake {args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "intake {args:?} printed to stdout on failure: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// Reads the ledger directly, to compare with what the binary printed.
    fn read<T>(&self, f: impl AsyncFnOnce(&Ledger) -> T) -> T {
        block_on(async {
            let ledger = Ledger::connect(&self.url).await.expect("open the ledger");
            let out = f(&ledger).await;
            ledger.close().await;
            out
        })
    }
}

fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

/// An empty ledger.
fn empty() -> Ledgered {
    let dir = tempfile::tempdir().expect("a tempdir");
    std::fs::write(dir.path().join("pipeline.toml"), REPO_CONFIG).expect("write the config");
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    block_on(async {
        Ledger::connect(&url)
            .await
            .expect("create the ledger")
            .close()
            .await
    });
    Ledgered { dir, url }
}

/// Five records, cataloged a second apart in this order:
///
/// | id | tenant | upload | state |
/// |---|---|---|---|
/// | a | acme | PHOTO_KEY v1, image with a rendition, archived to GLACIER_IR | done |
/// | b | acme | report.pdf, no dimensions, renditions or scan | archive |
/// | c | globex | cat.jpg | archive |
/// | d | acme | PHOTO_KEY v2 | archive |
/// | e | none | anonymous.bin, nothing but the required fields | (no ledger row) |
fn catalog() -> Ledgered {
    let fx = empty();
    block_on(async {
        let l = Ledger::connect(&fx.url).await.expect("open the ledger");
        let photo_v1 = VersionKey::new("intake-uploads", PHOTO_KEY, "v1");
        let mut a = record('a', &photo_v1, Some("acme"), "photo.png", 1);
        a.size = 1_234_567;
        insert(&l, &a).await;
        pass(
            &l,
            &photo_v1,
            &["validate", "scan", "thumbnail", "catalog", "archive"],
        )
        .await;
        assert!(
            l.catalog_set_storage(&id('a'), Some("sv1-ir"), "GLACIER_IR", "moved: 30 days")
                .await
                .unwrap()
        );

        let report = VersionKey::new("intake-uploads", "acme/user-2/9f-report.pdf", "r1");
        let mut b = record('b', &report, Some("acme"), "report.pdf", 2);
        b.content_type = Some("application/pdf".into());
        b.class = Some("document".into());
        (b.width, b.height, b.scan) = (None, None, None);
        b.renditions.clear();
        insert(&l, &b).await;
        pass(&l, &report, &["validate", "scan", "thumbnail", "catalog"]).await;

        let cat = VersionKey::new("intake-uploads", "globex/user-9/77-cat.jpg", "c1");
        insert(&l, &record('c', &cat, Some("globex"), "cat.jpg", 3)).await;
        pass(&l, &cat, &["validate", "scan", "thumbnail", "catalog"]).await;

        let photo_v2 = VersionKey::new("intake-uploads", PHOTO_KEY, "v2");
        insert(&l, &record('d', &photo_v2, Some("acme"), "photo.png", 4)).await;
        pass(&l, &photo_v2, &["validate", "scan", "thumbnail", "catalog"]).await;

        let anonymous = VersionKey::new("intake-uploads", "anonymous.bin", "x1");
        let mut e = record('e', &anonymous, None, "", 5);
        (e.user, e.filename, e.content_type, e.class) = (None, None, None, None);
        (e.width, e.height, e.scan, e.store.version) = (None, None, None, None);
        e.renditions.clear();
        insert(&l, &e).await;
        l.close().await;
    });
    fx
}

fn record(
    c: char,
    upload: &VersionKey,
    tenant: Option<&str>,
    filename: &str,
    second: i64,
) -> CatalogRecord {
    let at = START_MS + second * 1_000;
    CatalogRecord {
        object_id: id(c),
        upload: upload.clone(),
        tenant: tenant.map(str::to_owned),
        user: Some("user-1".into()),
        filename: Some(filename.into()),
        store: StoredAt {
            bucket: "intake-store".into(),
            key: upload.key.clone(),
            version: Some(format!("s{}", upload.version)),
        },
        size: 48_213,
        content_type: Some("image/png".into()),
        class: Some("image".into()),
        sha256: format!("{c}0").repeat(32),
        width: Some(640),
        height: Some(480),
        renditions: vec![RenditionRecord {
            name: "thumb".into(),
            bucket: "intake-derivatives".into(),
            key: format!("{}/{}/thumb.webp", tenant.unwrap_or("_"), id(c)),
            width: 256,
            height: 192,
            bytes: 9_812,
            content_type: "image/webp".into(),
        }],
        scan: Some(ScanRecord {
            verdict: "clean".into(),
            engine: Some("ClamAV 1.4.3/27500".into()),
            scanned_at: Some("2023-11-14T22:13:20.500Z".into()),
        }),
        storage_class: "STANDARD".into(),
        archive_note: None,
        cataloged_ms: at,
        updated_ms: at,
    }
}

async fn insert(l: &Ledger, r: &CatalogRecord) {
    assert!(l.catalog_insert(r).await.unwrap(), "{}", r.object_id);
}

/// Completes `stages` in order, each taking (its index + 1) × 100 ms, leaving the version
/// in the stage after the last (or `done` after archive).
async fn pass(l: &Ledger, v: &VersionKey, stages: &[&str]) {
    const ORDER: [&str; 6] = [
        "validate",
        "scan",
        "thumbnail",
        "catalog",
        "archive",
        "done",
    ];
    let mut started = START_MS;
    for (i, stage) in stages.iter().enumerate() {
        let next = ORDER[ORDER.iter().position(|s| s == stage).unwrap() + 1];
        let took = (i as i64 + 1) * 100;
        let result = StageResult {
            outcome: "passed".into(),
            code: None,
            detail: None,
            outcome_json: "{}".into(),
            started_ms: started,
            finished_ms: started + took,
        };
        l.begin_stage(v, stage, "test", std::time::Duration::from_secs(30))
            .await
            .unwrap();
        let done = l.complete_stage(v, stage, "test", &result, next).await;
        assert_eq!(done.unwrap(), Completion::Recorded, "{v} {stage}");
        started += took;
    }
}

/// Object ids in the order they appear in `text`, each once.
fn ids_in(text: &str) -> Vec<char> {
    let mut seen = Vec::new();
    for word in text.split(|c: char| !c.is_ascii_hexdigit()) {
        if word.len() == 32 {
            let c = word.chars().next().unwrap();
            if word.chars().all(|d| d == c) && !seen.contains(&c) {
                seen.push(c);
            }
        }
    }
    seen
}

fn entries(json: &str) -> Vec<CatalogEntry> {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not a list of entries ({e}): {json}"))
}

#[test]
fn list_prints_a_table_of_every_record_newest_first() {
    let fx = catalog();
    let out = fx.ok(&["catalog", "list"]);
    assert_eq!(ids_in(&out), ['e', 'd', 'c', 'b', 'a'], "{out}");
    let header = out.lines().nth(1).unwrap_or_default();
    for column in [
        "object id",
        "tenant",
        "filename",
        "type",
        "size",
        "storage",
        "state",
        "cataloged (UTC)",
    ] {
        assert!(header.contains(column), "no {column} column: {out}");
    }
    let row = |c: char| {
        out.lines()
            .find(|l| l.contains(&id(c)))
            .unwrap_or_else(|| panic!("no row for {c}: {out}"))
    };
    for cell in [
        "acme",
        "photo.png",
        "image/png",
        "1.2 MiB",
        "GLACIER_IR",
        "done",
        "2023-11-14T22:13:21.000Z",
    ] {
        assert!(row('a').contains(cell), "{cell} missing from {}", row('a'));
    }
    for cell in [
        "report.pdf",
        "application/pdf",
        "47.1 KiB",
        "STANDARD",
        "archive",
    ] {
        assert!(row('b').contains(cell), "{cell} missing from {}", row('b'));
    }
    assert!(row('e').contains("unknown"), "{}", row('e'));
    assert!(!out.contains("--before"), "one page holds all: {out}");
}

#[test]
fn list_filters_by_tenant_and_state() {
    let fx = catalog();
    let ids = |args: &[&str]| ids_in(&fx.ok(&[&["catalog", "list"], args].concat()));
    assert_eq!(ids(&["--tenant", "globex"]), ['c']);
    assert_eq!(ids(&["--tenant", "acme"]), ['d', 'b', 'a']);
    assert_eq!(ids(&["--state", "done"]), ['a']);
    assert_eq!(ids(&["--state", "archive"]), ['d', 'c', 'b']);
    assert_eq!(ids(&["--tenant", "acme", "--state", "archive"]), ['d', 'b']);
    assert_eq!(ids(&["--state", "unknown"]), ['e']);
}

#[test]
fn list_json_parses_back_into_the_ledgers_entries() {
    let fx = catalog();
    let want = fx.read(async |l| l.catalog_list(&CatalogFilter::default()).await.unwrap());
    assert_eq!(want.len(), 5);
    assert_eq!(entries(&fx.ok(&["catalog", "list", "--json"])), want);

    let acme_done = entries(&fx.ok(&[
        "catalog", "list", "--json", "--tenant", "acme", "--state", "done",
    ]));
    assert_eq!(acme_done, want[4..]);
    assert_eq!(acme_done[0].record.storage_class, "GLACIER_IR");
    assert_eq!(acme_done[0].stages.len(), 5);
}

#[test]
fn a_full_page_prints_the_command_for_the_next_one() {
    let fx = catalog();
    let first = fx.ok(&["catalog", "list", "--tenant", "acme", "--limit", "2"]);
    assert_eq!(ids_in(&first), ['d', 'b'], "{first}");
    let next = format!(
        "intake catalog list --tenant acme --limit 2 --before {}",
        id('b')
    );
    let hint = first
        .lines()
        .find(|l| l.contains("--before"))
        .unwrap_or_else(|| panic!("no next-page hint: {first}"));
    assert!(hint.ends_with(&next), "{hint}");

    // The printed command, run as printed, gives the rest and no further hint.
    let args: Vec<&str> = next.split(' ').skip(1).collect();
    let second = fx.ok(&args);
    assert_eq!(ids_in(&second), ['a'], "{second}");
    assert!(!second.contains("--before"), "{second}");

    // Exactly `limit` records left: no empty page is promised.
    let exact = fx.ok(&["catalog", "list", "--tenant", "acme", "--limit", "3"]);
    assert!(!exact.contains("--before"), "{exact}");

    // JSON output is the page alone, with no hint to break parsing.
    let page = entries(&fx.ok(&["catalog", "list", "--json", "--limit", "2"]));
    let page_ids: Vec<_> = page.iter().map(|e| e.record.object_id.clone()).collect();
    assert_eq!(page_ids, [id('e'), id('d')]);
}

#[test]
fn an_empty_result_says_so_plainly() {
    let fx = empty();
    let out = fx.ok(&["catalog", "list"]);
    assert!(out.starts_with("No catalog records"), "{out}");
    assert!(
        out.contains("INTAKE_DATABASE_URL"),
        "names the ledger: {out}"
    );
    assert_eq!(fx.ok(&["catalog", "list", "--json"]).trim(), "[]");

    let fx = catalog();
    let out = fx.ok(&["catalog", "list", "--tenant", "initech", "--state", "done"]);
    assert!(
        out.starts_with("No catalog records match (tenant initech, state done)"),
        "{out}"
    );
    // The page after the last one is empty, not an error.
    let out = fx.ok(&["catalog", "list", "--before", &id('a')]);
    assert!(out.starts_with("No catalog records match"), "{out}");
}

#[test]
fn show_by_id_prints_every_field() {
    let fx = catalog();
    let out = fx.ok(&["catalog", "show", &id('a')]);
    for want in [
        format!("object {}", id('a')),
        format!("s3://intake-uploads/{PHOTO_KEY}  version v1"),
        format!("s3://intake-store/{PHOTO_KEY}  version sv1-ir"),
        "acme".into(),
        "user-1".into(),
        "photo.png".into(),
        "image/png".into(),
        "1.2 MiB (1234567 bytes)".into(),
        "a0".repeat(32),
        "640 × 480".into(),
        // The rendition: name, pixels, type, size and where it is.
        "thumb".into(),
        "256 × 192".into(),
        "image/webp".into(),
        "9.6 KiB (9812 bytes)".into(),
        format!("s3://intake-derivatives/acme/{}/thumb.webp", id('a')),
        "clean by ClamAV 1.4.3/27500 at 2023-11-14T22:13:20.500Z".into(),
        "GLACIER_IR".into(),
        "moved: 30 days".into(),
        "2023-11-14T22:13:21.000Z".into(),
    ] {
        assert!(out.contains(&want), "{want:?} missing from:\n{out}");
    }
    // Each stage with its completion time and duration, in order.
    let stages: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("stages:"))
        .collect();
    let finished = [
        ("validate", "2023-11-14T22:13:20.100Z", "100 ms"),
        ("scan", "2023-11-14T22:13:20.300Z", "200 ms"),
        ("thumbnail", "2023-11-14T22:13:20.600Z", "300 ms"),
        ("catalog", "2023-11-14T22:13:21.000Z", "400 ms"),
        ("archive", "2023-11-14T22:13:21.500Z", "500 ms"),
    ];
    let mut rows = stages.iter().filter(|l| l.contains(" ms"));
    for (stage, at, took) in finished {
        let row = rows
            .next()
            .unwrap_or_else(|| panic!("no {stage} row:\n{out}"));
        for cell in [stage, at, took] {
            assert!(row.contains(cell), "{cell} missing from {row}");
        }
    }

    // Ids are accepted in capitals too; the optional fields show as absent.
    let bare = fx.ok(&["catalog", "show", &id('e').to_uppercase()]);
    for want in [
        "unknown",
        "s3://intake-store/anonymous.bin  (unversioned)",
        "not recorded",
        "renditions: none",
        "stages: none completed",
    ] {
        assert!(bare.contains(want), "{want:?} missing from:\n{bare}");
    }

    let json = entries(&fx.ok(&["catalog", "show", &id('a'), "--json"]));
    let want = fx.read(async |l| l.catalog_get(&id('a')).await.unwrap().unwrap());
    assert_eq!(json, [want]);
}

#[test]
fn show_by_uri_matches_upload_or_stored_location_every_version_newest_first() {
    let fx = catalog();
    for uri in [
        format!("s3://intake-uploads/{PHOTO_KEY}"),
        format!("s3://intake-store/{PHOTO_KEY}"),
    ] {
        let out = fx.ok(&["catalog", "show", &uri]);
        assert!(
            out.starts_with(&format!("2 catalog records match {uri}, newest first")),
            "{out}"
        );
        assert_eq!(ids_in(&out), ['d', 'a'], "{out}");
        let json = entries(&fx.ok(&["catalog", "show", &uri, "--json"]));
        let ids: Vec<_> = json.iter().map(|e| e.record.object_id.clone()).collect();
        assert_eq!(ids, [id('d'), id('a')]);
    }
    let one = fx.ok(&[
        "catalog",
        "show",
        "s3://intake-uploads/globex/user-9/77-cat.jpg",
    ]);
    assert!(one.starts_with(&format!("object {}", id('c'))), "{one}");
}

#[test]
fn nothing_matching_fails_and_points_to_catalog_list() {
    let fx = catalog();
    let err = fx.fails(&["catalog", "show", &id('f')], 1);
    assert!(
        err.contains(&format!(
            "nothing in the catalog matches object id {}",
            id('f')
        )),
        "{err}"
    );
    assert!(err.contains("`intake catalog list`"), "{err}");

    let uri = "s3://intake-uploads/acme/user-1/missing.png";
    let err = fx.fails(&["catalog", "show", uri], 1);
    assert!(
        err.contains(&format!("nothing in the catalog matches {uri}")),
        "{err}"
    );
    assert!(err.contains("`intake catalog list`"), "{err}");
    assert!(err.contains(&format!("`intake status {uri}`")), "{err}");

    // A well-formed cursor that names no record is a mistake, not the end of the list.
    let err = fx.fails(&["catalog", "list", "--before", &id('f')], 1);
    assert!(err.contains("no catalog record has this id"), "{err}");
}

#[test]
fn malformed_arguments_say_which_forms_are_accepted() {
    let fx = empty();
    for arg in [
        "photo.png",
        "abc123",
        &format!("{}0", id('a')),
        "intake-uploads/k",
    ] {
        let err = fx.fails(&["catalog", "show", arg], 2);
        assert!(
            err.contains("32-hex-digit object id") && err.contains("s3://BUCKET/KEY"),
            "{arg}: {err}"
        );
    }
    for arg in ["s3://intake-uploads", "s3://intake-uploads/", "s3:///key"] {
        let err = fx.fails(&["catalog", "show", arg], 2);
        assert!(err.contains("write s3://BUCKET/KEY"), "{arg}: {err}");
    }
    let err = fx.fails(&["catalog", "list", "--before", "page-2"], 2);
    assert!(err.contains("expected 32 hex digits"), "{err}");
    let err = fx.fails(&["catalog", "list", "--limit", "0"], 2);
    assert!(err.contains("--limit"), "{err}");
}
