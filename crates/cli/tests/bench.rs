//! `intake bench thumbnail` end to end on a tiny corpus: both sides run in the same
//! invocation and report real figures (the numbers themselves belong in
//! docs/benchmarks.md, not in a test). Needs `vipsthumbnail` (Debian `libvips-tools`),
//! which `.ci/run` installs.

use std::process::Command;

use intake_imaging::samples;

#[test]
fn bench_thumbnail_measures_intake_and_vipsthumbnail_in_one_run() {
    let corpus = tempfile::tempdir().unwrap();
    for (i, (w, h)) in [(1600, 1200), (1200, 1600)].into_iter().enumerate() {
        std::fs::write(
            corpus.path().join(format!("photo-{i}.jpg")),
            samples::photo_jpeg(w, h, 85),
        )
        .unwrap();
    }
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(env!("CARGO_BIN_EXE_intake"))
        .current_dir(repo)
        .args([
            "--config",
            "pipeline.toml",
            "bench",
            "thumbnail",
            "--runs",
            "1",
            "--json",
            "--corpus",
        ])
        .arg(corpus.path())
        .env_remove("INTAKE_CONFIG")
        .output()
        .expect("run intake bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "intake bench thumbnail failed (is libvips-tools installed?): {stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON report: {e}\n{stderr}"));
    let photos = &report["sets"][0];
    assert_eq!(photos["name"], "photos");
    assert_eq!(photos["files"], 2);
    let rows = photos["rows"].as_array().expect("rows");
    assert_eq!(rows[0]["tool"], "intake");
    assert_eq!(rows[1]["tool"], "vipsthumbnail");
    assert_eq!(photos["measured_files"], 2);
    assert_eq!(photos["failures"].as_array().map(Vec::len), Some(0));
    for row in rows {
        assert_eq!(row["images"], 2, "{row}");
        assert!(
            row["images_per_s"].as_f64().is_some_and(|v| v > 0.0),
            "{row}"
        );
        assert!(
            row["peak_rss_mib"].as_f64().is_some_and(|v| v > 1.0),
            "{row}"
        );
        assert!(row["p99_ms"].as_f64().is_some_and(|v| v > 0.0), "{row}");
    }
    assert!(
        photos["ratio_images_per_s"]
            .as_f64()
            .is_some_and(f64::is_finite)
    );
    // The edge cases (every format, EXIF orientations, CMYK...) render on both sides.
    let edge = &report["sets"][1];
    assert_eq!(edge["name"], "edge cases");
    assert_eq!(edge["failures"].as_array().map(Vec::len), Some(0), "{edge}");
    assert_eq!(edge["measured_files"], edge["files"]);
}

fn bench(corpus: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    Command::new(env!("CARGO_BIN_EXE_intake"))
        .current_dir(repo)
        .args([
            "--config",
            "pipeline.toml",
            "bench",
            "thumbnail",
            "--runs",
            "1",
            "--corpus",
        ])
        .arg(corpus)
        .args(extra)
        .env_remove("INTAKE_CONFIG")
        .output()
        .expect("run intake bench")
}

/// A file that fails on one side (a truncated JPEG: Intake refuses it, vipsthumbnail pads it
/// with grey) is named, left out of both sides' figures, and fails the bench unless
/// --allow-failures is given.
#[test]
fn a_failing_file_is_reported_excluded_from_both_sides_and_fails_the_bench() {
    let corpus = tempfile::tempdir().unwrap();
    std::fs::write(
        corpus.path().join("good.jpg"),
        samples::photo_jpeg(1600, 1200, 85),
    )
    .unwrap();
    std::fs::write(
        corpus.path().join("cut.jpg"),
        samples::truncated_jpeg(1600, 1200),
    )
    .unwrap();

    let out = bench(corpus.path(), &["--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit code; stderr: {stderr}");
    assert!(
        stderr.contains("--allow-failures"),
        "says how to accept it: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the JSON report is printed before failing: {e}\n{stderr}"));
    let photos = &report["sets"][0];
    assert_eq!(photos["files"], 2);
    assert_eq!(photos["measured_files"], 1, "{photos}");
    let failures = photos["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{photos}");
    assert_eq!(failures[0]["file"], "cut.jpg");
    assert_eq!(failures[0]["side"], "intake");
    assert!(
        failures[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("truncated")),
        "{failures:?}"
    );
    for row in photos["rows"].as_array().expect("rows") {
        assert_eq!(row["images"], 1, "both sides measured only good.jpg: {row}");
        assert!(
            row["images_per_s"].as_f64().is_some_and(|v| v > 0.0),
            "{row}"
        );
    }
    // Both sides measured the same file, so the ratio is a fair one.
    assert!(
        photos["ratio_images_per_s"]
            .as_f64()
            .is_some_and(f64::is_finite),
        "{photos}"
    );

    let out = bench(corpus.path(), &["--allow-failures"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "--allow-failures exits 0: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("FAILED cut.jpg on intake"), "{stdout}");
    assert!(
        stdout.contains("photos (headline): 1 files measured of 2"),
        "{stdout}"
    );
}
