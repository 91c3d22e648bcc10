//! Generating services from the template, and the tasks that do it:
//!
//! - [`generate_service`]: the pinned cargo-generate run on a clean copy of the template,
//!   into a scratch directory, for any name and answers;
//! - [`Answers`]: the recorded answers in `xtask/answers/`, one per example;
//! - `generate`, `check-examples` (drift of `examples/` from the template) and `new`.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::shell::{Result, root};
use crate::tools::{self, CargoGenerate};
use crate::tree::{Scratch, compare, copy_tree};

/// One recorded set of answers: `xtask/answers/NAME.toml` generates `examples/NAME`,
/// a service named `NAME-service`.
pub struct Answers {
    pub name: String,
    pub file: PathBuf,
    /// The template repository the answers and the example are in.
    repo: PathBuf,
}

impl Answers {
    /// Every recorded set, by name.
    pub fn all() -> Result<Vec<Self>> {
        Self::all_in(&root())
    }

    /// Every recorded set of the template repository at `repo`.
    pub fn all_in(repo: &Path) -> Result<Vec<Self>> {
        let dir = repo.join("xtask/answers");
        let mut answers = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let file = entry.map_err(|e| e.to_string())?.path();
            if file.extension() == Some(OsStr::new("toml")) {
                let name = file.file_stem().unwrap().to_string_lossy().into_owned();
                answers.push(Self {
                    name,
                    file,
                    repo: repo.to_owned(),
                });
            }
        }
        answers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(answers)
    }

    /// The example's project, package and binary name.
    pub fn service(&self) -> String {
        format!("{}-service", self.name)
    }

    /// Where the example is committed: `examples/NAME`.
    pub fn example(&self) -> PathBuf {
        self.repo.join("examples").join(&self.name)
    }
}

/// Generates the service `name` with the pinned cargo-generate from a clean copy of the
/// template files (never the repository itself: cargo-generate copies the whole folder,
/// `target/` included), into `scratch`, and returns the service's directory.
///
/// `values`: a template values file (`template-answers.toml` or `xtask/answers/*.toml`);
/// `defines`: `key=value` answers on top. Whatever is not answered takes its default. A
/// refusal by the hooks is an error that holds cargo-generate's output.
pub fn generate_service(
    scratch: &Scratch,
    name: &str,
    values: Option<&Path>,
    defines: &[String],
) -> Result<PathBuf> {
    generate_service_with(CargoGenerate::Oldest, scratch, name, values, defines)
}

/// Like [`generate_service`], with the cargo-generate `release`.
pub fn generate_service_with(
    release: CargoGenerate,
    scratch: &Scratch,
    name: &str,
    values: Option<&Path>,
    defines: &[String],
) -> Result<PathBuf> {
    let source = scratch.path.join("template-source");
    if !source.exists() {
        copy_template(&root(), &source)?;
    }
    let output = scratch.path.join("out");
    generate_from(release, &source, &output, name, values, defines)
}

/// Copies what cargo-generate reads of the template repository at `from` to `to`.
pub fn copy_template(from: &Path, to: &Path) -> Result {
    for part in TEMPLATE_PARTS {
        copy_tree(&from.join(part), &to.join(part))?;
    }
    Ok(())
}

/// The parts of the repository cargo-generate reads.
pub const TEMPLATE_PARTS: [&str; 3] = ["cargo-generate.toml", "template", "hooks"];

/// Generates the service `name` with the cargo-generate `release` from the template
/// repository copy at `source` into `output`, and returns the service's directory.
pub fn generate_from(
    release: CargoGenerate,
    source: &Path,
    output: &Path,
    name: &str,
    values: Option<&Path>,
    defines: &[String],
) -> Result<PathBuf> {
    fs::create_dir_all(output).map_err(|e| e.to_string())?;
    let mut command = Command::new(tools::cargo_generate_release(release)?);
    command
        .arg("generate")
        .arg("--path")
        .arg(source)
        .arg("template")
        .args(["--name", name, "--vcs", "none", "--silent"])
        .arg("--destination")
        .arg(output);
    if let Some(values) = values {
        command.arg("--template-values-file").arg(values);
    }
    for define in defines {
        command.args(["--define", define]);
    }
    let result = command
        .output()
        .map_err(|e| format!("cargo-generate: {e}"))?;
    if !result.status.success() {
        return Err(format!(
            "cargo-generate failed for {name}:\n{}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    Ok(output.join(name))
}

/// `cargo xtask generate`: regenerates every example.
pub fn generate() -> Result {
    generate_examples(&root())
}

/// Regenerates every example of the template repository at `repo` from its own template.
pub fn generate_examples(repo: &Path) -> Result {
    let scratch = Scratch::new("generate")?;
    let source = scratch.path.join("template-source");
    copy_template(repo, &source)?;
    for answers in Answers::all_in(repo)? {
        let output = scratch.path.join(&answers.name);
        let generated = generate_from(
            CargoGenerate::Oldest,
            &source,
            &output,
            &answers.service(),
            Some(&answers.file),
            &[],
        )?;
        let example = answers.example();
        if example.exists() {
            fs::remove_dir_all(&example).map_err(|e| format!("{}: {e}", example.display()))?;
        }
        copy_tree(&generated, &example)?;
        println!("regenerated examples/{}", answers.name);
    }
    Ok(())
}

/// `cargo xtask check-examples`: every example is what its answers generate now, and what
/// its own `template-answers.toml` generates; every directory in `examples/` has answers.
pub fn check_examples() -> Result {
    let all = Answers::all()?;
    let mut drifted = Vec::new();
    for release in CargoGenerate::BOTH {
        let version = release.version();
        for answers in &all {
            let scratch = Scratch::new("check")?;
            let generated = generate_service_with(
                release,
                &scratch,
                &answers.service(),
                Some(&answers.file),
                &[],
            )?;
            let example = answers.example();
            let mut differences: Vec<String> = compare(&generated, &example)?
                .iter()
                .map(ToString::to_string)
                .collect();
            // The answers a service records let it be generated again, identically: the
            // upgrade path.
            let recorded = example.join("template-answers.toml");
            if recorded.exists() {
                let again_scratch = Scratch::new("again")?;
                let again = generate_service_with(
                    release,
                    &again_scratch,
                    &answers.service(),
                    Some(&recorded),
                    &[],
                )?;
                differences.extend(compare(&again, &example)?.into_iter().map(|difference| {
                    format!("regenerated from template-answers.toml: {difference}")
                }));
            }
            if differences.is_empty() {
                println!(
                    "examples/{} matches the template (cargo-generate {version})",
                    answers.name
                );
            } else {
                for difference in &differences {
                    eprintln!(
                        "examples/{} (cargo-generate {version}): {difference}",
                        answers.name
                    );
                }
                let _ = Command::new("diff")
                    .arg("-ru")
                    .arg(&example)
                    .arg(&generated)
                    .status();
                drifted.push(format!("{} (cargo-generate {version})", answers.name));
            }
        }
    }
    for entry in fs::read_dir(root().join("examples")).map_err(|e| e.to_string())? {
        let name = entry
            .map_err(|e| e.to_string())?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !all.iter().any(|answers| answers.name == name) {
            drifted.push(format!("{name} (no answers file generates it)"));
        }
    }
    if drifted.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "examples differ from the template: {}; run `cargo xtask generate` and commit the result",
            drifted.join(", ")
        ))
    }
}

/// `cargo xtask new DIR [key=value ...]`: one service from the current template, into DIR,
/// recording this checkout's commit as the template revision it was generated from.
pub fn new(destination: &Path, defines: &[String]) -> Result {
    let name = destination
        .file_name()
        .ok_or("DIR must name a directory")?
        .to_string_lossy()
        .into_owned();
    let scratch = Scratch::new("new")?;
    // The commit this checkout is at: what `cargo xtask upgrade` rebuilds the service from.
    let head = crate::shell::git(&root(), &["rev-parse", "HEAD"])?;
    let mut defines = defines.to_vec();
    defines.push(format!("template_revision={}", head.trim()));
    let generated = generate_service(&scratch, &name, None, &defines)?;
    copy_tree(&generated, destination)?;
    println!("generated {}", destination.display());
    Ok(())
}
