//! The report of `intake bench pipeline`: per worker count, objects per second, latency
//! percentiles, requests per object and peak memory, beside the ceiling and the replay of
//! the same call mix.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

pub(super) fn print_report(r: &serde_json::Value) {
    println!(
        "\nPipeline {} · {} objects ({}) · upload concurrency {} · scanner: {} · {} CPUs",
        r["pipeline"].as_str().unwrap_or(""),
        r["objects"],
        r["mix"].as_str().unwrap_or(""),
        r["concurrency"],
        r["scanner"].as_str().unwrap_or(""),
        r["cpus"]
    );
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header([
        "workers",
        "done",
        "quar.",
        "failed",
        "unended",
        "s",
        "objects/s",
        "MB/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "stage means ms",
        "peak RSS MiB",
    ]);
    for run in r["runs"].as_array().into_iter().flatten() {
        let stages = run["stage_mean_ms"].as_object().map_or(String::new(), |m| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let rss = run["peak_rss_kib"].as_array().map_or(String::new(), |a| {
            a.iter()
                .map(|v| format!("{:.0}", v.as_f64().unwrap_or(0.0) / 1024.0))
                .collect::<Vec<_>>()
                .join("/")
        });
        t.add_row([
            run["workers"].to_string(),
            run["done"].to_string(),
            run["quarantined"].to_string(),
            run["failed"].to_string(),
            run["not_ended"].to_string(),
            run["seconds"].to_string(),
            run["objects_per_s"].to_string(),
            run["mb_per_s"].to_string(),
            run["latency_ms"]["p50"].to_string(),
            run["latency_ms"]["p95"].to_string(),
            run["latency_ms"]["p99"].to_string(),
            stages,
            rss,
        ]);
    }
    println!("{t}");
    for run in r["runs"].as_array().into_iter().flatten() {
        let Some(calls) = run["calls_per_object"].as_object() else {
            continue;
        };
        let mix = calls
            .iter()
            .filter(|(op, _)| *op != "total")
            .map(|(op, n)| format!("{op} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "AWS requests per object, {} worker(s): {} in all — {mix}",
            run["workers"], calls["total"]
        );
    }
    let c = &r["ceiling"];
    println!(
        "Emulator ceiling (same objects, concurrency {}): S3 PUT {}/s ({} MB/s), SQS send {}/s, SQS receive+delete {}/s",
        r["concurrency"],
        c["s3_put_per_s"],
        c["s3_put_mb_per_s"],
        c["sqs_send_per_s"],
        c["sqs_receive_delete_per_s"]
    );
    let replay = &r["replay"];
    if let Some(rate) = replay["objects_per_s"].as_f64() {
        println!(
            "Same call mix replayed with no Intake logic: {rate} objects/s ({} calls in {} s, {} failed; not replayed: {})",
            replay["calls"], replay["seconds"], replay["failed_calls"], replay["not_replayed"]
        );
    }
    if let Some(best) = r["runs"].as_array().and_then(|a| {
        a.iter()
            .filter_map(|x| x["objects_per_s"].as_f64())
            .reduce(f64::max)
    }) && let Some(put) = c["s3_put_per_s"].as_f64()
        && put > 0.0
    {
        println!(
            "Best pipeline rate is {:.1}% of the raw PUT rate.",
            best / put * 100.0
        );
    }
}

pub(super) fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(super) fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
