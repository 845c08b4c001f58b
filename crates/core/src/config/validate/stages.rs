//! Tables only one stage reads: `[stages.scan.scanner]` (a well-formed clamd address, a
//! timeout above 0) and `[stages.thumbnail.images]` (limits that let an image through, a
//! memory budget that holds one, a Cache-Control value). Either table under another stage
//! is a mistake.

use crate::config::pipeline::PipelineConfig;
use crate::config::problem::Problem;
use crate::config::stages::ScannerConfig;

pub(super) fn check_scanners(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    for (name, stage) in &config.stages {
        let Some(scanner) = &stage.scanner else {
            continue;
        };
        let path = format!("stages.{name}.scanner");
        if name != "scan" {
            problems.push(Problem::new(
                &path,
                format!("stage {name} has no scanner"),
                "move the [scanner] table to [stages.scan.scanner]",
            ));
            continue;
        }
        if let ScannerConfig::Clamd {
            address,
            timeout_secs,
        } = scanner
        {
            let valid = address.strip_prefix("tcp://").is_some_and(|hp| {
                hp.rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            }) || address
                .strip_prefix("unix://")
                .is_some_and(|p| p.starts_with('/'));
            if !valid {
                problems.push(Problem::new(
                    format!("{path}.address"),
                    format!("\"{address}\" is not a clamd address"),
                    "write tcp://HOST:PORT (e.g. tcp://127.0.0.1:3310) or unix:///ABSOLUTE/PATH (e.g. unix:///run/clamav/clamd.ctl)",
                ));
            }
            if *timeout_secs == 0 {
                problems.push(Problem::new(
                    format!("{path}.timeout_secs"),
                    "a timeout of 0 s",
                    "use the seconds clamd may take per step, e.g. 120",
                ));
            }
        }
    }
}

pub(super) fn check_image_limits(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    for (name, stage) in &config.stages {
        let Some(limits) = &stage.images else {
            continue;
        };
        let path = format!("stages.{name}.images");
        if name != "thumbnail" {
            problems.push(Problem::new(
                &path,
                format!("stage {name} decodes no images"),
                "move the [images] table to [stages.thumbnail.images]",
            ));
            continue;
        }
        for (field, value) in [
            ("max_width", u64::from(limits.max_width)),
            ("max_height", u64::from(limits.max_height)),
            ("max_pixels", limits.max_pixels),
            ("max_frames", u64::from(limits.max_frames)),
        ] {
            if value == 0 {
                problems.push(Problem::new(
                    format!("{path}.{field}"),
                    format!("{field} of 0 rejects every image"),
                    "use a positive limit, or leave the key out for the default",
                ));
            }
        }
        if limits.max_decoder_memory.bytes() < 16 * 1024 * 1024 {
            problems.push(Problem::new(
                format!("{path}.max_decoder_memory"),
                format!("{} cannot decode a photograph", limits.max_decoder_memory),
                "use at least \"16MiB\" (a 24 MP photo decoded at half size takes ~18 MiB); the default is \"1GiB\"",
            ));
        }
        if limits.memory_budget.bytes() < limits.max_decoder_memory.bytes() {
            problems.push(Problem::new(
                format!("{path}.memory_budget"),
                format!(
                    "memory_budget {} is below max_decoder_memory {}",
                    limits.memory_budget, limits.max_decoder_memory
                ),
                "the budget must hold at least one image at the decoder limit: raise memory_budget or lower max_decoder_memory",
            ));
        }
        if limits.cache_control.trim().is_empty()
            || limits.cache_control.chars().any(|c| c.is_control())
        {
            problems.push(Problem::new(
                format!("{path}.cache_control"),
                "not a Cache-Control header value",
                "write a header value such as \"public, max-age=31536000, immutable\"",
            ));
        }
    }
}
