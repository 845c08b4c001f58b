//! Build script: rebuilds when migrations change, and compiles the PostgreSQL test
//! variants only when `INTAKE_TEST_POSTGRES_URL` is set.

fn main() {
    // `sqlx::migrate!` embeds the SQL files at compile time; without this, a new
    // migration would not be picked up until some Rust file changed.
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rustc-check-cfg=cfg(intake_pg_tests)");
    println!("cargo::rerun-if-env-changed=INTAKE_TEST_POSTGRES_URL");
    // The PostgreSQL variants of the tests are generated only when a server is named,
    // so that a run without one reports fewer tests rather than tests that pass
    // without having checked anything.
    if std::env::var_os("INTAKE_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=intake_pg_tests");
    }
}
