//! The Dockerfiles cannot be built here (no container engine), so this test checks their shape
//! (multi-stage, distroless non-root runtime, the build stage runs `docker/build.sh`) and runs
//! the operator's build step in the dev profile, then smoke-tests the binary the image would
//! copy. The platform image's step (server and plugins) is checked for shape only: compiling
//! the server again under the test timeout is not affordable on the CI machine.

mod python_tools;

use std::path::Path;
use std::process::Command;

use python_tools::repo;

struct Stage {
    from: String,
    lines: Vec<String>,
}

/// Stages of a Dockerfile, with continuation lines joined.
fn stages(file: &str) -> Vec<Stage> {
    let text = std::fs::read_to_string(repo("docker").join(file)).unwrap();
    let mut stages: Vec<Stage> = Vec::new();
    let mut pending = String::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        let line = format!("{pending}{line}");
        pending.clear();
        if let Some(from) = line.strip_prefix("FROM ") {
            stages.push(Stage {
                from: from.to_owned(),
                lines: Vec::new(),
            });
        } else {
            stages.last_mut().expect("FROM first").lines.push(line);
        }
    }
    stages
}

fn check_shape(file: &str, step: &str, binary: &str) {
    let stages = stages(file);
    assert!(stages.len() >= 2, "{file}: multi-stage");
    let build = &stages[0];
    assert!(build.from.ends_with(" AS build"), "{file}: {}", build.from);
    assert!(
        build
            .lines
            .iter()
            .any(|l| l.starts_with("RUN ") && l.contains(&format!("docker/build.sh {step} /out"))),
        "{file}: the build stage runs docker/build.sh {step}"
    );
    let runtime = stages.last().unwrap();
    assert!(
        runtime.from.starts_with("gcr.io/distroless/") && runtime.from.ends_with(":nonroot"),
        "{file}: {}",
        runtime.from
    );
    assert!(
        runtime.lines.iter().any(|l| l == "USER 65532:65532"),
        "{file}: non-root user"
    );
    assert!(
        !runtime.lines.iter().any(|l| l.starts_with("RUN ")),
        "{file}: nothing runs in the runtime stage"
    );
    assert!(
        runtime
            .lines
            .iter()
            .any(|l| *l == format!("ENTRYPOINT [\"/usr/local/bin/{binary}\"]")),
        "{file}: entrypoint"
    );
    assert!(
        runtime
            .lines
            .iter()
            .any(|l| l.starts_with(&format!("COPY --from=build /out/{binary} ")))
    );
}

fn build_step(step: &str, out: &Path) {
    let mut command = Command::new(repo("docker/build.sh"));
    // The same cargo as the test build, into the same target directory: the binaries the
    // test build made are reused.
    command
        .arg(step)
        .arg(out)
        .env("MEGALIS_PROFILE", "dev")
        .env("CARGO", env!("CARGO"));
    let output = command.output().expect("docker/build.sh runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn operator_image_build_steps() {
    check_shape(
        "megalis-operator.Dockerfile",
        "operator",
        "megalis-operator",
    );
    let out = tempfile::tempdir().unwrap();
    build_step("operator", out.path());
    let crds = Command::new(out.path().join("megalis-operator"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(crds.status.success());
    assert!(String::from_utf8_lossy(&crds.stdout).contains("kind: RegionalPlatform"));
}

#[test]
fn platform_image_runs_the_same_build_step_and_bundles_plugins() {
    check_shape("megalis.Dockerfile", "megalis", "megalis");
    let runtime = stages("megalis.Dockerfile").pop().unwrap();
    assert!(
        runtime
            .lines
            .iter()
            .any(|l| l == "COPY --from=build /out/plugins/ /usr/lib/megalis/plugins/")
    );
    assert!(
        runtime
            .lines
            .iter()
            .any(|l| l == r#"CMD ["--config", "/etc/megalis/megalis.toml", "serve"]"#)
    );
}
