//! Repository tasks, run as `cargo xtask <task>`:
//!
//! - `generate`: regenerates `examples/` from the answers in `xtask/answers/`.
//! - `check-examples`: fails if any example differs by one byte from what the template
//!   generates now.
//! - `new DIR [key=value ...]`: generates one service from the current template into DIR.
//! - `lint`: lints every GitHub workflow (template and generated) with actionlint and zizmor.
//! - `schemathesis`: builds the default example, runs it with its development issuer and
//!   fuzzes every operation of its OpenAPI document (part of `test`).
//! - `book`: builds the guide in `docs/` into `target/book`, failing on a missing include
//!   or anchor, any mdBook warning and any broken link (part of `test`).
//! - `test`: everything CI runs, in order; the README's test command.
//! - `bench [--seconds N] [--no-write]`: load tests the default example against a bare
//!   actix-web floor and writes `docs/benchmarks.md` (see `bench.rs`).
//! - `fuzz [--seconds N]`: fuzzes the bearer token path of the default example (see `fuzz.rs`).
//! - `reliability [--debug] [--soak-seconds N]`: soak, SIGTERM, provider outage, unknown-kid
//!   flood and hostile requests against the default example (see `reliability.rs`).
//! - `oidc-provider rotate DIR`: rotates the keys of the provider the end-to-end tests
//!   started (they call it themselves).
//!
//! Tools this needs and a new machine lacks are installed under `target/xtask-tools`,
//! pinned, on first use.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod book;
mod fuzz;
mod postgres;
mod provider;
mod reliability;
mod schemathesis;
mod tools;

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") => generate(),
        Some("check-examples") => check_examples(),
        Some("new") => new(&args[1..]),
        Some("lint") => lint(),
        Some("test") => test(),
        Some("book") => book::build(),
        Some("schemathesis") => schemathesis(),
        Some("bench") => bench::bench(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("reliability") => reliability::reliability(&args[1..]),
        Some("oidc-provider") => match args.get(1..) {
            Some([command, state]) if command == "rotate" => provider::rotate(Path::new(state)),
            _ => Err(USAGE.to_owned()),
        },
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <generate | check-examples | new DIR [key=value ...] | lint | book | schemathesis | test | bench | fuzz | reliability>";

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_owned()
}

/// One recorded set of answers: `xtask/answers/NAME.toml` generates `examples/NAME`,
/// a service named `NAME-service`.
struct Answers {
    name: String,
    file: PathBuf,
}

impl Answers {
    /// The example's project, package and binary name.
    fn service(&self) -> String {
        format!("{}-service", self.name)
    }
}

fn answers() -> Result<Vec<Answers>> {
    let dir = root().join("xtask/answers");
    let mut answers = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let file = entry.map_err(|e| e.to_string())?.path();
        if file.extension() == Some(OsStr::new("toml")) {
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            answers.push(Answers { name, file });
        }
    }
    answers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(answers)
}

fn generate() -> Result {
    let scratch = Scratch::new("generate")?;
    for answers in answers()? {
        let generated = expand(&scratch, &answers)?;
        let example = root().join("examples").join(&answers.name);
        if example.exists() {
            fs::remove_dir_all(&example).map_err(|e| format!("{}: {e}", example.display()))?;
        }
        copy_tree(&generated, &example)?;
        println!("regenerated examples/{}", answers.name);
    }
    Ok(())
}

fn check_examples() -> Result {
    let scratch = Scratch::new("check")?;
    let all = answers()?;
    let mut drifted = Vec::new();
    for answers in &all {
        let generated = expand(&scratch, answers)?;
        let example = root().join("examples").join(&answers.name);
        let mut differences = compare(&generated, &example)?;
        // The answers a service records let it be generated again, identically: the upgrade path.
        let recorded = example.join("template-answers.toml");
        if recorded.exists() {
            let again_scratch = Scratch::new("again")?;
            let again =
                run_cargo_generate(&again_scratch, &answers.service(), Some(&recorded), &[])?;
            differences.extend(
                compare(&again, &example)?.into_iter().map(|difference| {
                    format!("regenerated from template-answers.toml: {difference}")
                }),
            );
        }
        if differences.is_empty() {
            println!("examples/{} matches the template", answers.name);
        } else {
            for difference in &differences {
                eprintln!("examples/{}: {difference}", answers.name);
            }
            let _ = Command::new("diff")
                .arg("-ru")
                .arg(&example)
                .arg(&generated)
                .status();
            drifted.push(answers.name.clone());
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

fn new(args: &[String]) -> Result {
    let (destination, defines) = args.split_first().ok_or(USAGE)?;
    let destination = PathBuf::from(destination);
    let name = destination
        .file_name()
        .ok_or("DIR must name a directory")?
        .to_string_lossy()
        .into_owned();
    let scratch = Scratch::new("new")?;
    let generated = run_cargo_generate(&scratch, &name, None, defines)?;
    copy_tree(&generated, &destination)?;
    println!("generated {}", destination.display());
    Ok(())
}

/// Generates one example into the scratch directory and returns where it is.
fn expand(scratch: &Scratch, answers: &Answers) -> Result<PathBuf> {
    run_cargo_generate(scratch, &answers.service(), Some(&answers.file), &[])
}

/// Runs the pinned cargo-generate on a clean copy of the template files (never the
/// repository itself: cargo-generate copies the whole folder, `target/` included).
fn run_cargo_generate(
    scratch: &Scratch,
    name: &str,
    values: Option<&Path>,
    defines: &[String],
) -> Result<PathBuf> {
    let source = scratch.path.join("template-source");
    if !source.exists() {
        for part in ["cargo-generate.toml", "template", "hooks"] {
            copy_tree(&root().join(part), &source.join(part))?;
        }
    }
    let output = scratch.path.join("out");
    fs::create_dir_all(&output).map_err(|e| e.to_string())?;
    let mut command = Command::new(tools::cargo_generate()?);
    command
        .arg("generate")
        .arg("--path")
        .arg(&source)
        .arg("template")
        .args(["--name", name, "--vcs", "none", "--silent"])
        .arg("--destination")
        .arg(&output);
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

/// Lists every difference between two trees: missing, extra and changed files,
/// contents and the executable bit alike.
fn compare(generated: &Path, example: &Path) -> Result<Vec<String>> {
    let want = snapshot(generated)?;
    let have = if example.exists() {
        snapshot(example)?
    } else {
        BTreeMap::new()
    };
    let mut differences = Vec::new();
    for (path, file) in &want {
        match have.get(path) {
            None => differences.push(format!("{path} is missing")),
            Some(existing) if existing != file => differences.push(format!("{path} differs")),
            Some(_) => {}
        }
    }
    for path in have.keys().filter(|path| !want.contains_key(*path)) {
        differences.push(format!("{path} is not generated by the template"));
    }
    Ok(differences)
}

/// Relative path → (contents, executable).
fn snapshot(dir: &Path) -> Result<BTreeMap<String, (Vec<u8>, bool)>> {
    let mut files = BTreeMap::new();
    for path in walk(dir)? {
        let relative = path
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let contents = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        files.insert(relative, (contents, is_executable(&path)));
    }
    Ok(files)
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    false
}

/// Every file below `dir`, recursively.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).map_err(|e| format!("{}: {e}", current.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn copy_tree(from: &Path, to: &Path) -> Result {
    if from.is_file() {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        fs::copy(from, to).map_err(|e| format!("{}: {e}", from.display()))?;
        return Ok(());
    }
    for file in walk(from)? {
        copy_tree(&file, &to.join(file.strip_prefix(from).unwrap()))?;
    }
    Ok(())
}

/// Every workflow the repository holds or generates, linted with actionlint and zizmor;
/// every Dockerfile with hadolint; every kustomize overlay rendered and validated against
/// the Kubernetes schemas; every compose file validated with
/// `docker-compose config`; every JSON file parsed.
fn lint() -> Result {
    let root = root();
    let mut workflows = Vec::new();
    for dir in std::iter::once(root.clone()).chain(
        answers()?
            .into_iter()
            .map(|answers| root.join("examples").join(answers.name)),
    ) {
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

    for answers in answers()? {
        let example = root.join("examples").join(&answers.name);
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
                .stdout(std::process::Stdio::null()))?;
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

/// The whole suite, cheapest checks first.
fn test() -> Result {
    section("tools");
    tools::cargo_generate()?;
    tools::python_tool("actionlint")?;
    tools::docker_compose()?;
    section("examples match the template");
    check_examples()?;
    section("hooks refuse bad answers");
    hooks()?;
    section("workflows, Dockerfiles, Kubernetes manifests, compose files and JSON");
    lint()?;
    section("the book");
    book::build()?;
    section("format");
    run(cargo().args(["fmt", "--all", "--check"]))?;
    section("clippy");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    section("a throwaway PostgreSQL cluster");
    let postgres = postgres::Postgres::start()?;
    println!("PostgreSQL at {}", postgres.url);
    section("auth against a real OpenID provider");
    end_to_end(&postgres)?;
    // One example at a time: built together, Cargo would unify their dependencies'
    // features, and an example could pass only thanks to another's.
    for answers in answers()? {
        section(&format!("tests of examples/{}", answers.name));
        let package = answers.service();
        run(cargo()
            .args(["test", "--locked", "--package", &package])
            .env("TEST_DATABASE_URL", &postgres.url))?;
    }
    section("fuzzing the bearer token path for 30 s");
    fuzz::run_for(30)?;
    schemathesis()?;
    // The debug build the previous step made: the checks are about behaviour, not speed.
    reliability::check(&root().join("target/debug/default-service"), 60)
}

/// Builds the default example and fuzzes its API with schemathesis.
fn schemathesis() -> Result {
    section("schemathesis against examples/default");
    run(cargo().args(["build", "--locked", "--package", "default-service"]))?;
    schemathesis::check(&root().join("target/debug/default-service"))
}

/// Runs the ignored `tests/provider.rs` of every example with OIDC auth against the npm
/// `oidc-provider` on loopback.
fn end_to_end(postgres: &postgres::Postgres) -> Result {
    provider::install()?;
    let rotate = std::env::current_exe().map_err(|e| e.to_string())?;
    for answers in answers()? {
        let example = root().join("examples").join(&answers.name);
        if !example.join("tests/provider.rs").exists() {
            continue;
        }
        let state = root()
            .join("target/xtask-tools/oidc-provider")
            .join(&answers.name);
        let provider = provider::Provider::start(&state)?;
        println!(
            "oidc-provider for examples/{} at {}",
            answers.name, provider.issuer
        );
        let package = answers.service();
        run(cargo()
            .args([
                "test",
                "--locked",
                "--package",
                &package,
                "--test",
                "provider",
            ])
            .args(["--", "--ignored", "--test-threads=1"])
            .env("OIDC_TEST_ISSUER", &provider.issuer)
            .env("TEST_DATABASE_URL", &postgres.url)
            .env(
                "OIDC_TEST_ROTATE",
                format!(
                    "{} oidc-provider rotate {}",
                    rotate.display(),
                    state.display()
                ),
            ))?;
    }
    Ok(())
}

/// The hooks turn away answers that cannot make a working service, naming the answers.
fn hooks() -> Result {
    let refused = [
        ("9lives", "must start with a lowercase letter"),
        ("std", "reserved"),
        (
            "a-very-long-name-that-goes-on-and-on-and-on-well-past-what-anyone-types",
            "longer than 64",
        ),
    ];
    for (name, reason) in refused {
        expect_refusal(name, &[], reason)?;
    }
    // Combinations of answers that cannot work are refused, naming the answers.
    let combinations: [(&[&str], &str); 3] = [
        (
            &["auth=none", "database=sqlite"],
            "database=sqlite needs auth=oidc",
        ),
        (
            &["database=none", "scheduler=true"],
            "scheduler=true needs a database (database=none)",
        ),
        (
            &["database=sqlite", "kubernetes=true"],
            "kubernetes=true with database=sqlite",
        ),
    ];
    for (defines, reason) in combinations {
        let defines: Vec<String> = defines.iter().map(|d| (*d).to_owned()).collect();
        expect_refusal("combo-service", &defines, reason)?;
    }
    // Recorded answers survive quotes and backslashes: generating again from them gives
    // the same service.
    let scratch = Scratch::new("answers")?;
    let tricky = [
        r#"description=Says "hi" \o/"#.to_owned(),
        "auth=none".into(),
        "database=none".into(),
    ];
    let first = run_cargo_generate(&scratch, "quoted-service", None, &tricky)?;
    let again_scratch = Scratch::new("answers-again")?;
    let again = run_cargo_generate(
        &again_scratch,
        "quoted-service",
        Some(&first.join("template-answers.toml")),
        &[],
    )?;
    let differences = compare(&again, &first)?;
    if !differences.is_empty() {
        return Err(format!(
            "recorded answers do not round-trip: {differences:?}"
        ));
    }
    println!("recorded answers round-trip, quotes and backslashes included");
    Ok(())
}

/// Generation with these answers must fail, and say `reason`.
fn expect_refusal(name: &str, defines: &[String], reason: &str) -> Result {
    let scratch = Scratch::new("hooks")?;
    let answers = format!("{name} {}", defines.join(" "));
    match run_cargo_generate(&scratch, name, None, defines) {
        Ok(_) => Err(format!("the hooks accepted {answers}")),
        Err(message) if message.contains(reason) => {
            println!("refused {answers}: {reason}");
            Ok(())
        }
        Err(message) => Err(format!(
            "{answers} was refused without saying {reason:?}: {message}"
        )),
    }
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root());
    command
}

fn run(command: &mut Command) -> Result {
    let status = command
        .status()
        .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed: {status}", command.get_program()))
    }
}

fn section(title: &str) {
    println!("\n==> {title}");
}

/// A temporary directory, removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(purpose: &str) -> Result<Self> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "xtask-{purpose}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
