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
    for row in rows {
        assert_eq!(row["images"], 2, "{row}");
        assert_eq!(row["failed"].as_array().map(Vec::len), Some(0), "{row}");
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
    for row in edge["rows"].as_array().expect("rows") {
        assert_eq!(row["failed"].as_array().map(Vec::len), Some(0), "{row}");
    }
}
