//! The upgrade command, end to end, with real git repositories (part of `cargo xtask test`):
//! a scratch clone of this repository is the template, with commits of its own; services
//! generated from it are changed and committed as a team would; then upgraded.
//!
//! 1. Both sides change different things: each keeps its changes, and the service's own
//!    tests pass.
//! 2. Both sides change the same lines: the conflict is reported, marked, and the command
//!    fails.
//! 3. An answer turned on in `template-answers.toml`: the option arrives, the tests pass,
//!    and the next upgrade starts from the answers applied.
//! 4. A release records its version and tag in what it generates; services generated at the
//!    tag, and from the branch after it, upgrade to a later commit.

use std::fs;
use std::path::{Path, PathBuf};

use super::{ANSWERS, upgrade_from};
use crate::flags::Upgrade;
use crate::generate::{copy_template, generate_from};
use crate::shell::{Result, cargo_in, git, root, run, share_lock};
use crate::tools::CargoGenerate;
use crate::tree::{Scratch, copy_tree};

/// The service the checks generate: the minimal example's answers.
const NAME: &str = "upgrade-service";

pub fn check() -> Result {
    let scratch = Scratch::new("upgrades")?;
    let repo = Repo::clone(&scratch.path.join("template"))?;
    let generated_at = repo.commit("the template as this checkout has it")?;

    team_and_template_both_change(&scratch, &repo, &generated_at)?;
    both_change_the_same_lines(&scratch, &repo, &generated_at)?;
    an_answer_turns_an_option_on(&scratch, &repo, &generated_at)?;
    a_release_is_recorded_and_upgradable(&scratch, &repo)
}

fn a_release_is_recorded_and_upgradable(scratch: &Scratch, repo: &Repo) -> Result {
    repo.git(&["checkout", "--quiet", "-B", "release-check"])?;
    crate::release::release_in(&repo.path, "99.0.0", "2026-11-30")?;
    let examples_record = |revision: &str| -> Result<bool> {
        let answers = repo.git(&["show", &format!("{revision}:examples/default/{ANSWERS}")])?;
        Ok(answers.contains("version = \"99.0.0\"")
            && answers.contains(&format!("revision = \"{revision}\"")))
    };
    expect(
        examples_record("v99.0.0")?,
        "the examples at the tag record the release",
    )?;
    let on_branch = fs::read_to_string(repo.path.join("examples/default").join(ANSWERS))
        .map_err(|e| e.to_string())?;
    expect(
        on_branch.contains("revision = \"v99.0.0+main\""),
        "after the release, the branch's examples record the release with +main",
    )?;
    let changelog =
        fs::read_to_string(repo.path.join("CHANGELOG.md")).map_err(|e| e.to_string())?;
    expect(
        changelog.contains("## 99.0.0 (2026-11-30)"),
        "the changelog names the release",
    )?;
    let released = Service::generate_recording(scratch, repo, "v99.0.0", "released", None)?;
    expect(
        released.read(ANSWERS)?.contains("revision = \"v99.0.0\""),
        "a service generated at the tag records it",
    )?;
    let branch = Service::generate_recording(scratch, repo, "HEAD", "branch", None)?;
    repo.edit(
        "template/.env.example",
        "CONFIG_DIR=config\n",
        "CONFIG_DIR=config\n# After the release.\n",
    )?;
    let later = repo.commit("a change after the release")?;
    for service in [&released, &branch] {
        service.upgrade(repo, &later)?;
        expect(
            service
                .read(".env.example")?
                .contains("# After the release."),
            "the change after the release arrives",
        )?;
        expect(
            service
                .read(ANSWERS)?
                .contains(&format!("revision = \"{later}\"")),
            "the later commit is recorded",
        )?;
    }
    println!(
        "release: the version and tag are recorded; services from the tag and from the branch upgrade"
    );
    Ok(())
}

fn team_and_template_both_change(scratch: &Scratch, repo: &Repo, at: &str) -> Result {
    let service = Service::generate(scratch, repo, at, "merge")?;
    // The team: a route of its own, a setting, and a sample test file it does not want.
    service.write(
        "src/greet.rs",
        "//! A route of the team's own.\n\nuse actix_web::{HttpResponse, web};\n\n/// Mounts `/greet`.\npub fn routes(config: &mut web::ServiceConfig) {\n    config.route(\"/greet\", web::get().to(|| async { HttpResponse::Ok().body(\"hi\") }));\n}\n",
    )?;
    service.edit(
        "src/lib.rs",
        "pub mod client_ip;\n",
        "pub mod client_ip;\npub mod greet;\n",
    )?;
    service.edit(
        "src/server.rs",
        "const API_V1: &[Routes] = &[\n",
        "const API_V1: &[Routes] = &[\n    crate::greet::routes,\n",
    )?;
    service.append(".env.example", "\n# --- The team's ---\nGREETING=hello\n")?;
    fs::remove_file(service.path.join("tests/api/policies.rs")).map_err(|e| e.to_string())?;
    service.edit("tests/api/main.rs", "mod policies;\n", "")?;
    service.commit("the team's changes")?;
    // The template: a changed probe (and its test), a new setting, a new file.
    repo.edit(
        "template/src/health.rs",
        "status: \"alive\"",
        "status: \"up\"",
    )?;
    repo.edit(
        "template/tests/api/health.rs",
        "json!({ \"status\": \"alive\" })",
        "json!({ \"status\": \"up\" })",
    )?;
    repo.edit(
        "template/.env.example",
        "CONFIG_DIR=config\n",
        "CONFIG_DIR=config\n# Added by the template's upgrade check.\n# UPGRADE_CHECK=1\n",
    )?;
    repo.write(
        "template/RUNBOOK.md",
        "# Runbook\n\nWhat to do when it breaks.\n",
    )?;
    let to = repo.commit("a newer template")?;

    service.upgrade(repo, &to)?;

    let text = |path: &str| service.read(path);
    expect(
        text("src/health.rs")?.contains("status: \"up\""),
        "the probe changed",
    )?;
    expect(
        text("src/lib.rs")?.contains("pub mod greet;"),
        "the team's module stayed",
    )?;
    expect(
        text("src/server.rs")?.contains("crate::greet::routes"),
        "the team's route stayed",
    )?;
    let env = text(".env.example")?;
    expect(
        env.contains("GREETING=hello") && env.contains("UPGRADE_CHECK"),
        "both settings",
    )?;
    expect(
        !service.path.join("tests/api/policies.rs").exists(),
        "the deleted test stayed deleted",
    )?;
    expect(
        service.path.join("RUNBOOK.md").exists(),
        "the new file arrived",
    )?;
    expect(
        text(ANSWERS)?.contains(&format!("revision = \"{to}\"")),
        "the new revision is recorded",
    )?;
    service.test()?;
    println!("upgrade: both sides' changes kept, the service's tests pass");
    Ok(())
}

fn both_change_the_same_lines(scratch: &Scratch, repo: &Repo, at: &str) -> Result {
    let service = Service::generate(scratch, repo, at, "conflict")?;
    service.edit(".env.example", "PORT=8000\n", "PORT=9000\n")?;
    service.commit("our port")?;
    repo.checkout(at)?;
    repo.edit("template/.env.example", "PORT=8000\n", "PORT=8080\n")?;
    let to = repo.commit("the template's port")?;

    let outcome = service.upgrade(repo, &to);

    let message = outcome.err().ok_or("a conflicting upgrade succeeded")?;
    expect(
        message.contains("1 file(s) to resolve"),
        &format!("the conflict is reported: {message}"),
    )?;
    let env = service.read(".env.example")?;
    expect(
        env.contains("<<<<<<< yours: .env.example")
            && env.contains("PORT=9000")
            && env.contains("PORT=8080"),
        "the conflict is marked with both sides",
    )?;
    println!("upgrade: a conflict is marked, listed, and fails the command");
    Ok(())
}

fn an_answer_turns_an_option_on(scratch: &Scratch, repo: &Repo, at: &str) -> Result {
    let service = Service::generate(scratch, repo, at, "answer")?;
    service.answer("metrics = false", "metrics = true")?;
    service.commit("metrics, please")?;

    service.upgrade(repo, at)?;

    expect(
        service.path.join("src/metrics.rs").exists(),
        "the metrics module arrived",
    )?;
    expect(
        service
            .read("Cargo.toml")?
            .contains("metrics-exporter-prometheus"),
        "its dependency",
    )?;
    expect(
        service.read("src/lib.rs")?.contains("pub mod metrics;"),
        "its module line",
    )?;
    let answers = service.read(ANSWERS)?;
    let applied = answers.split("[applied]").nth(1).unwrap_or_default();
    expect(
        applied.contains("metrics = true"),
        "the answer is recorded as applied",
    )?;
    service.test()?;
    service.commit("metrics")?;

    // The next upgrade starts from what was applied: the metrics files are the template's,
    // not the team's, so the template's change to them arrives without a conflict.
    repo.checkout(at)?;
    repo.edit(
        "template/src/metrics.rs",
        "/// Histogram samples are folded in this often",
        "/// Histogram samples are folded in this often (changed by the upgrade check)",
    )?;
    let later = repo.commit("a change to the metrics module")?;
    service.upgrade(repo, &later)?;
    expect(
        service
            .read("src/metrics.rs")?
            .contains("(changed by the upgrade check)"),
        "the template's change to the option's file arrived",
    )?;
    println!(
        "upgrade: an answer changed in {ANSWERS} brings its option, the tests pass, and the next upgrade starts from it"
    );
    Ok(())
}

fn expect(holds: bool, what: &str) -> Result {
    if holds {
        Ok(())
    } else {
        Err(format!("upgrade check: not so: {what}"))
    }
}

/// A scratch clone of this repository: the template the services come from.
struct Repo {
    path: PathBuf,
}

impl Repo {
    /// Clones this repository's commits, then puts this checkout's template files on top
    /// (uncommitted changes included).
    fn clone(path: &Path) -> Result<Self> {
        let source = root();
        git(
            &source,
            &[
                "clone",
                "--quiet",
                "--no-hardlinks",
                ".",
                &path.display().to_string(),
            ],
        )?;
        let repo = Self {
            path: path.to_owned(),
        };
        for part in crate::generate::TEMPLATE_PARTS {
            let _ = fs::remove_dir_all(path.join(part));
            let _ = fs::remove_file(path.join(part));
        }
        copy_template(&source, path)?;
        fs::copy(source.join("CHANGELOG.md"), path.join("CHANGELOG.md"))
            .map_err(|e| e.to_string())?;
        repo.git(&["config", "user.name", "upgrade check"])?;
        repo.git(&["config", "user.email", "check@example.invalid"])?;
        Ok(repo)
    }

    fn git(&self, args: &[&str]) -> Result<String> {
        git(&self.path, args)
    }

    /// Commits everything; returns the commit id.
    fn commit(&self, message: &str) -> Result<String> {
        self.git(&["add", "--all"])?;
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message])?;
        Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_owned())
    }

    fn checkout(&self, revision: &str) -> Result {
        self.git(&["checkout", "--quiet", "--detach", revision])
            .map(drop)
    }

    fn edit(&self, path: &str, from: &str, to: &str) -> Result {
        edit(&self.path.join(path), from, to)
    }

    fn write(&self, path: &str, text: &str) -> Result {
        fs::write(self.path.join(path), text).map_err(|e| e.to_string())
    }
}

/// A generated service in a git repository of its own.
struct Service {
    path: PathBuf,
}

impl Service {
    /// Generates the service from `repo` at `revision` with the minimal example's answers,
    /// as `cargo xtask new` does (recording that revision), and commits it.
    fn generate(scratch: &Scratch, repo: &Repo, revision: &str, label: &str) -> Result<Self> {
        Self::generate_recording(scratch, repo, revision, label, Some(revision))
    }

    /// Like [`Service::generate`]; `recorded`, the revision to record, or `None` for what
    /// the template records itself (as `cargo generate` does).
    fn generate_recording(
        scratch: &Scratch,
        repo: &Repo,
        revision: &str,
        label: &str,
        recorded: Option<&str>,
    ) -> Result<Self> {
        let source = scratch.path.join(format!("{label}-source"));
        super::archive(&repo.path, revision, &source)?;
        let answers = root().join("xtask/answers/minimal.toml");
        let defines: Vec<String> = recorded
            .map(|revision| format!("template_revision={revision}"))
            .into_iter()
            .collect();
        let generated = generate_from(
            CargoGenerate::Oldest,
            &source,
            &scratch.path.join(format!("{label}-out")),
            NAME,
            Some(&answers),
            &defines,
        )?;
        let path = scratch.path.join(label).join(NAME);
        copy_tree(&generated, &path)?;
        let service = Self { path };
        git(&service.path, &["init", "--quiet"])?;
        git(&service.path, &["config", "user.name", "a team"])?;
        git(
            &service.path,
            &["config", "user.email", "team@example.invalid"],
        )?;
        service.commit("generated")?;
        Ok(service)
    }

    fn commit(&self, message: &str) -> Result {
        git(&self.path, &["add", "--all"])?;
        git(&self.path, &["commit", "--quiet", "-m", message]).map(drop)
    }

    fn upgrade(&self, repo: &Repo, to: &str) -> Result {
        let flags = Upgrade {
            service: self.path.clone(),
            to: Some(to.to_owned()),
            ..Upgrade::default()
        };
        upgrade_from(&repo.path, &flags)
    }

    /// `cargo test`, sharing this repository's lock file and target directory, so only the
    /// service itself is built.
    fn test(&self) -> Result {
        share_lock(&self.path)?;
        run(cargo_in(&self.path).args(["test", "--quiet"]))
    }

    fn read(&self, path: &str) -> Result<String> {
        fs::read_to_string(self.path.join(path)).map_err(|e| format!("{path}: {e}"))
    }

    fn write(&self, path: &str, text: &str) -> Result {
        fs::write(self.path.join(path), text).map_err(|e| e.to_string())
    }

    fn append(&self, path: &str, text: &str) -> Result {
        let mut current = self.read(path)?;
        current.push_str(text);
        self.write(path, &current)
    }

    fn edit(&self, path: &str, from: &str, to: &str) -> Result {
        edit(&self.path.join(path), from, to)
    }

    /// Changes an answer under `[values]`, as a team would (`[applied]` is the command's).
    fn answer(&self, from: &str, to: &str) -> Result {
        let text = self.read(ANSWERS)?;
        // The table's header line: the file's opening comment names the table too.
        let (values, applied) = text
            .split_once("\n[applied]\n")
            .ok_or("no [applied] table in the answers")?;
        if values.matches(from).count() != 1 {
            return Err(format!("{ANSWERS}: {from:?} is not under [values] once"));
        }
        let values = values.replacen(from, to, 1);
        self.write(ANSWERS, &format!("{values}\n[applied]\n{applied}"))
    }
}

/// Replaces the one occurrence of `from` in the file at `path` with `to`.
fn edit(path: &Path, from: &str, to: &str) -> Result {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if text.matches(from).count() != 1 {
        return Err(format!("{}: {from:?} is not there once", path.display()));
    }
    fs::write(path, text.replacen(from, to, 1)).map_err(|e| e.to_string())
}
