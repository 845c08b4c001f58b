//! `intake bench`: the benchmarks, one module per thing measured: [`thumbnail`] (Intake's
//! thumbnail code path against libvips' `vipsthumbnail`) and [`pipeline`] (objects through
//! the whole pipeline on LocalStack against the emulator's own ceiling). Each measures its
//! named baseline in the same run; `docs/benchmarks.md` explains the methods and records
//! the figures with their commands.

mod pipeline;
mod thumbnail;

use std::path::PathBuf;

use clap::Subcommand;

use crate::common::{ConfigArg, Failure};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Intake's thumbnail code path against libvips' vipsthumbnail, one core each:
    /// throughput, per-image latency and peak memory, on a photo corpus and on the
    /// edge-case images.
    Thumbnail {
        /// Directory of images [default: target/bench-corpus/photos, made by
        /// bench/make-photo-corpus.sh when missing or empty].
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Runs of each side, interleaved; the fastest is reported.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Exit 0 even when files failed on a side. Failed files are always listed and
        /// left out of both sides' figures; without this flag they make the bench fail.
        #[arg(long)]
        allow_failures: bool,
    },
    /// Intake's side of `bench thumbnail` (started pinned by it): renders every file of
    /// --corpus into --out, one JSON line per image on stdout.
    #[command(hide = true)]
    ThumbnailWorker {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes the edge-case images into --out (emptied first), for `bench thumbnail`: in a
    /// child process, so that the benchmark's own process stays small (its RSS is the
    /// floor of every measured child's peak RSS).
    #[command(hide = true)]
    EdgeCases {
        #[arg(long)]
        out: PathBuf,
    },
    /// N objects through the whole pipeline on LocalStack with 1, 2 and 3 `intake run`
    /// processes, beside the emulator's raw S3/SQS ceiling (docs/benchmarks.md).
    Pipeline {
        /// Objects uploaded per measured run.
        #[arg(long, default_value_t = 200)]
        objects: usize,
        /// Worker processes [default: measure 1, 2 and 3].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        workers: Option<u32>,
        #[arg(long, value_enum, default_value = "photos")]
        mix: pipeline::Mix,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &ConfigArg, command: BenchCommand) -> Result<(), Failure> {
    match command {
        BenchCommand::Pipeline {
            objects,
            workers,
            mix,
            json,
        } => Ok(pipeline::run(
            &config.config,
            pipeline::Options {
                objects,
                workers,
                mix,
                json,
            },
        )?),
        BenchCommand::Thumbnail {
            corpus,
            runs,
            json,
            allow_failures,
        } => {
            let pipeline = config.load()?;
            Ok(thumbnail::run(
                config,
                &pipeline,
                corpus,
                runs as usize,
                json,
                allow_failures,
            )?)
        }
        BenchCommand::ThumbnailWorker { corpus, out } => {
            let pipeline = config.load()?;
            Ok(thumbnail::worker(&pipeline, &corpus, &out)?)
        }
        BenchCommand::EdgeCases { out } => Ok(thumbnail::write_edge_cases(&out)?),
    }
}
