//! Schemathesis (PyPI, installed by `.ci/run`) against the running API's own
//! `/v1/openapi.json`: generated requests to every operation, with a valid token, must
//! never get a server error (5xx) nor a response (status, content type, body) that breaks
//! the document. A missing `schemathesis` fails the test with how to install it.

mod api_support;
mod support;

use api_support::ApiStack;

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() {
    let installed = std::process::Command::new("schemathesis")
        .arg("--version")
        .output();
    let version = match installed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => panic!(
            "schemathesis is not installed: `pip install schemathesis==4.32.5` (.ci/run does this)"
        ),
    };
    println!("{version}");
    let stack = ApiStack::start(
        "INTAKE_TEST_JWT_SECRET_SCHEMA",
        "[api.rate_limits]\nper_ip_per_minute = 1000000\nper_tenant_per_minute = 1000000\nburst = 100000\n",
        true,
    )
    .await;
    let token = stack.token("tenant-s", "fuzzer");
    let schema = format!("{}/v1/openapi.json", stack.base);
    let base = stack.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("schemathesis")
            .args(["run", &schema, "--url", &base])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            ])
            .args(["--max-examples", "15", "--seed", "1", "--no-color"])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "schemathesis found problems (output above)"
    );
    stack.shutdown().await;
}
