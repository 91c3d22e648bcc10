//! `cargo xtask lint`: every workflow the repository holds or generates, linted with
//! actionlint and zizmor; every Dockerfile with hadolint; every kustomize overlay rendered
//! and validated against the Kubernetes schemas; every compose file validated with
//! `docker-compose config`; every JSON file parsed.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::generate::Answers;
use crate::shell::{Result, root, run};
use crate::tools;
use crate::tree::{Scratch, walk};

pub fn lint() -> Result {
    let root = root();
    let mut workflows = Vec::new();
    for dir in std::iter::once(root.clone())
        .chain(Answers::all()?.into_iter().map(|answers| answers.example()))
    {
        let workflow_dir = dir.join(".github/workflows");
        if workflow_dir.exists() {
            workflows.extend(walk(&workflow_dir)?);
        }
    }
    run(Command::new(tools::python_tool("actionlint")?).args(&workflows))?;
    run(Command::new(tools::python_tool("zizmor")?)
        .args(["--offline", "--no-progress", "--persona", "regular"])
        .args(&workflows))?;
    println!("{} workflows pass actionlint and zizmor", workflows.len());

    for answers in Answers::all()? {
        let example = answers.example();
        if example.join("Dockerfile").exists() {
            run(Command::new(tools::python_tool("hadolint")?)
                .arg("Dockerfile")
                .current_dir(&example))?;
            println!("examples/{}/Dockerfile passes hadolint", answers.name);
        }
        for overlay in ["staging", "production"] {
            let overlay_dir = example.join("deploy/overlays").join(overlay);
            if overlay_dir.exists() {
                validate_kustomization(&overlay_dir)?;
                println!(
                    "examples/{}/deploy/overlays/{overlay} renders and validates",
                    answers.name
                );
            }
        }
        if example.join("compose.yaml").exists() {
            let mut compose = Command::new(tools::docker_compose()?);
            compose.args(["--file", "compose.yaml"]);
            let devcontainer = ".devcontainer/compose.devcontainer.yaml";
            if example.join(devcontainer).exists() {
                compose.args(["--file", devcontainer]);
            }
            run(compose.args(["config", "--quiet"]).current_dir(&example))?;
            println!("examples/{}/compose.yaml is valid", answers.name);
        }
        for json in walk(&example)?
            .into_iter()
            .filter(|path| path.extension() == Some(OsStr::new("json")))
        {
            run(Command::new("python3")
                .args(["-m", "json.tool"])
                .arg(&json)
                .stdout(Stdio::null()))?;
        }
    }
    Ok(())
}

/// Renders a kustomize overlay offline and validates every manifest against the
/// Kubernetes schemas, strictly (unknown fields are errors).
fn validate_kustomization(overlay: &Path) -> Result {
    let rendered = Command::new("kubectl")
        .arg("kustomize")
        .arg(overlay)
        .output()
        .map_err(|e| format!("kubectl (needed to render {}): {e}", overlay.display()))?;
    if !rendered.status.success() {
        return Err(format!(
            "kubectl kustomize {} failed: {}",
            overlay.display(),
            String::from_utf8_lossy(&rendered.stderr)
        ));
    }
    let scratch = Scratch::new("kustomize")?;
    let manifests = scratch.path.join("manifests.yaml");
    fs::write(&manifests, &rendered.stdout).map_err(|e| e.to_string())?;
    run(Command::new(tools::python_tool("kubernetes-validate")?)
        .args(["--kubernetes-version", "1.32.0", "--strict", "--quiet"])
        .arg(&manifests))
}
