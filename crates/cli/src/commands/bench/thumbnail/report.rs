//! The report of `intake bench thumbnail`: the machine, versions and method, and per set
//! of images a table of both sides, the files excluded because they failed on a side, and
//! the ratio when both sides measured the same files (see `bench_cmd`).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use comfy_table::{CellAlignment, Table, presets::UTF8_BORDERS_ONLY};
use intake_core::config::Fit;
use serde_json::Value;

/// Nearest-rank percentile of sorted values.
pub(super) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

pub(super) fn fit_name(fit: Fit) -> &'static str {
    match fit {
        Fit::Cover => "cover",
        Fit::Contain => "contain",
    }
}

pub(super) fn cpu_model() -> Option<String> {
    fs::read_to_string("/proc/cpuinfo")
        .ok()?
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_owned())
        })
}

pub(super) fn git_describe(workspace: Option<&Path>) -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(workspace?)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub(super) fn print_report(report: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let num = |v: &Value, digits: usize| {
        v.as_f64()
            .map_or_else(|| "–".to_owned(), |x| format!("{x:.digits$}"))
    };
    let machine = &report["machine"];
    println!(
        "intake bench thumbnail: intake {} vs vipsthumbnail {}",
        text(&report["versions"]["intake"]),
        text(&report["versions"]["vips"])
    );
    println!(
        "machine: {} CPUs ({}); each side pinned to CPU {}, VIPS_CONCURRENCY=1",
        machine["nproc"],
        text(&machine["cpu_model"]),
        machine["pinned_cpu"]
    );
    let renditions: Vec<String> = report["renditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{} {}x{} {} {} q{}",
                text(&r["name"]),
                r["width"],
                r["height"],
                text(&r["fit"]),
                text(&r["format"]),
                r["quality"]
            )
        })
        .collect();
    println!("renditions: {}", renditions.join("; "));
    println!(
        "runs: {} per side, interleaved; {}",
        report["runs"],
        text(&report["reported"])
    );
    for (k, set) in report["sets"].as_array().into_iter().flatten().enumerate() {
        println!();
        let excluded = set["failures"].as_array().map_or(0, Vec::len);
        println!(
            "{}{}: {} files{}, {} MB, {}–{} MP ({})",
            text(&set["name"]),
            if k == 0 { " (headline)" } else { "" },
            set["measured_files"],
            if excluded == 0 {
                String::new()
            } else {
                format!(" measured of {}", set["files"])
            },
            num(&set["input_mb"], 1),
            num(&set["mp_min"], 1),
            num(&set["mp_max"], 1),
            text(&set["dir"])
        );
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY).set_header([
            "",
            "images",
            "input MB",
            "images/s per core",
            "MB/s",
            "p50 ms",
            "p99 ms",
            "peak RSS MiB",
        ]);
        for row in set["rows"].as_array().into_iter().flatten() {
            table.add_row([
                if row["tool"] == "intake" {
                    "Intake".to_owned()
                } else {
                    text(&row["tool"])
                },
                row["images"].to_string(),
                num(&row["input_mb"], 1),
                num(&row["images_per_s"], 2),
                num(&row["mb_per_s"], 2),
                num(&row["p50_ms"], 1),
                num(&row["p99_ms"], 1),
                num(&row["peak_rss_mib"], 1),
            ]);
        }
        for column in table.column_iter_mut().skip(1) {
            column.set_cell_alignment(CellAlignment::Right);
        }
        println!("{table}");
        match set["ratio_images_per_s"].as_f64() {
            Some(ratio) => println!(
                "ratio intake/vips images/s: {ratio:.2} (both sides, the same {} files)",
                set["measured_files"]
            ),
            None => println!("no ratio: {}", text(&set["no_ratio"])),
        }
        for f in set["failures"].as_array().into_iter().flatten() {
            println!(
                "  FAILED {} on {} (run {}): {} — excluded from both sides",
                text(&f["file"]),
                text(&f["side"]),
                f["run"],
                text(&f["error"])
            );
        }
    }
    let startup: Vec<String> = report["vips_startup_ms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{} ms ({})", num(&s["ms"], 1), text(&s["rendition"])))
        .collect();
    println!();
    println!(
        "Intake: one process per run renders every file (one decode, all renditions); p50/p99 are read + render + write per image."
    );
    println!(
        "vipsthumbnail: throughput from one process per rendition over all files (start-up amortised); p50/p99 from one process per image and rendition, summed over renditions, minus the start-up measured on a 1×1 JPEG: {}.",
        startup.join(", ")
    );
    println!(
        "peak RSS: ru_maxrss from wait4; a child that does nothing shows {} MiB here (the spawning process's RSS, carried across exec).",
        num(&report["rss_floor_mib"], 1)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=16).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(8.0));
        assert_eq!(percentile(&v, 99.0), Some(16.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
