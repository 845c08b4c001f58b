//! `intake-ledger-open URL [--after-stdin-closes]`: opens the state ledger at URL
//! (creating a missing SQLite file and running any pending migrations, exactly as every
//! Intake process does at start) and exits: 0 once it is ready, 1 with the reason.
//!
//! Operators can run it to migrate a ledger before starting workers; the migration race
//! test starts many at once. `--after-stdin-closes` holds the open until stdin reaches
//! its end, so a parent that spawned several can release them all at the same moment.

use std::io::Read;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, gate) = match args.as_slice() {
        [url] => (url, false),
        [url, flag] if flag == "--after-stdin-closes" => (url, true),
        _ => {
            eprintln!(
                "usage: intake-ledger-open URL [--after-stdin-closes]\n  URL: sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE"
            );
            return ExitCode::from(2);
        }
    };
    if gate {
        let mut sink = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut sink) {
            eprintln!("reading stdin before opening the ledger failed: {e}");
            return ExitCode::from(2);
        }
    }
    match intake_store::Ledger::connect(url).await {
        Ok(ledger) => {
            ledger.close().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}
