//! The command line: which task, and its flags, read before anything runs.

use std::path::PathBuf;

use crate::harness::Scenario;
use crate::shell::Result;

pub const USAGE: &str = "usage: cargo xtask <generate | check-examples | new DIR [key=value ...] | upgrade SERVICE [--to REVISION] [--from REVISION] [--allow-dirty] [--dry-run] | check-upgrades | matrix [--list] [--only NAME] | release VERSION | lint | book | doc-commands | image-steps | schemathesis | test | bench | fuzz | reliability>";

/// A task and its flags. Tasks without flags ignore any words after their name.
pub enum Task {
    Generate,
    CheckExamples,
    New {
        destination: PathBuf,
        /// `key=value` answers, passed to cargo-generate as `--define`.
        defines: Vec<String>,
    },
    Upgrade(Upgrade),
    /// `check-upgrades`: the upgrade command, end to end.
    CheckUpgrades,
    Matrix(Matrix),
    /// `release VERSION`.
    Release {
        version: String,
    },
    Lint,
    Book,
    /// `doc-commands`: every documented shell block, run or said why not.
    DocCommands,
    /// `image-steps`: the Dockerfile's build steps, without Docker.
    ImageSteps,
    Schemathesis,
    Test,
    Bench(Bench),
    Fuzz(Fuzz),
    Reliability(Reliability),
    /// `oidc-provider rotate DIR`.
    RotateProvider {
        state: PathBuf,
    },
}

/// `upgrade SERVICE [--to REVISION] [--from REVISION] [--allow-dirty] [--dry-run]`.
#[derive(Default)]
pub struct Upgrade {
    /// The generated service's directory.
    pub service: PathBuf,
    /// The template revision to upgrade to; this checkout's commit when absent.
    pub to: Option<String>,
    /// The template revision the service was generated from, when its answers file does
    /// not name it exactly (a service generated from a branch).
    pub from: Option<String>,
    /// Without `--to`: merge this checkout's uncommitted template changes too.
    pub allow_dirty: bool,
    /// Say what would change, change nothing.
    pub dry_run: bool,
}

impl Upgrade {
    fn parse(args: &[String]) -> Result<Self> {
        let mut upgrade = Self::default();
        let mut service = None;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--to" => upgrade.to = Some(args.next().ok_or("--to needs a revision")?.clone()),
                "--from" => {
                    upgrade.from = Some(args.next().ok_or("--from needs a revision")?.clone());
                }
                "--allow-dirty" => upgrade.allow_dirty = true,
                "--dry-run" => upgrade.dry_run = true,
                flag if flag.starts_with("--") => {
                    return Err(format!("upgrade: unknown flag {flag}"));
                }
                _ if service.is_none() => service = Some(PathBuf::from(arg)),
                _ => return Err(USAGE.to_owned()),
            }
        }
        upgrade.service = service.ok_or(USAGE)?;
        Ok(upgrade)
    }
}

/// `matrix [--list] [--only NAME]`.
pub struct Matrix {
    /// Print the combinations as JSON instead of checking them.
    pub list: bool,
    /// Check this combination only.
    pub only: Option<String>,
}

impl Matrix {
    fn parse(args: &[String]) -> Result<Self> {
        let mut matrix = Self {
            list: false,
            only: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--list" => matrix.list = true,
                "--only" => matrix.only = Some(args.next().ok_or("--only needs a name")?.clone()),
                other => return Err(format!("matrix: unknown argument {other}")),
            }
        }
        Ok(matrix)
    }
}

/// `bench [--seconds N] [--rounds N] [--no-write] [--only SCENARIO,...]`.
pub struct Bench {
    /// How long each measured run lasts.
    pub seconds: u32,
    /// How many runs each row is the median of.
    pub rounds: u32,
    /// Whether `docs/benchmarks.md` is rewritten.
    pub write: bool,
    /// The scenarios to run, by [`Scenario::name`]; all of them when empty. A partial run
    /// prints its table and does not write it.
    pub only: Vec<Scenario>,
}

/// `fuzz [--seconds N]`.
pub struct Fuzz {
    pub seconds: u32,
}

/// `reliability [--debug] [--soak-seconds N]`.
pub struct Reliability {
    /// `"release"`, or `"debug"` with `--debug`.
    pub profile: &'static str,
    pub soak_seconds: u32,
}

impl Task {
    /// `args`: the words after `cargo xtask`.
    pub fn parse(args: &[String]) -> Result<Self> {
        let rest = args.get(1..).unwrap_or_default();
        Ok(match args.first().map(String::as_str) {
            Some("generate") => Self::Generate,
            Some("check-examples") => Self::CheckExamples,
            Some("new") => {
                let (destination, defines) = rest.split_first().ok_or(USAGE)?;
                Self::New {
                    destination: PathBuf::from(destination),
                    defines: defines.to_vec(),
                }
            }
            Some("upgrade") => Self::Upgrade(Upgrade::parse(rest)?),
            Some("check-upgrades") => Self::CheckUpgrades,
            Some("matrix") => Self::Matrix(Matrix::parse(rest)?),
            Some("release") => match rest {
                [version] => Self::Release {
                    version: version.clone(),
                },
                _ => return Err(USAGE.to_owned()),
            },
            Some("lint") => Self::Lint,
            Some("test") => Self::Test,
            Some("book") => Self::Book,
            Some("doc-commands") => Self::DocCommands,
            Some("image-steps") => Self::ImageSteps,
            Some("schemathesis") => Self::Schemathesis,
            Some("bench") => Self::Bench(Bench::parse(rest)?),
            Some("fuzz") => Self::Fuzz(Fuzz::parse(rest)?),
            Some("reliability") => Self::Reliability(Reliability::parse(rest)?),
            Some("oidc-provider") => match rest {
                [command, state] if command == "rotate" => Self::RotateProvider {
                    state: PathBuf::from(state),
                },
                _ => return Err(USAGE.to_owned()),
            },
            _ => return Err(USAGE.to_owned()),
        })
    }
}

impl Bench {
    fn parse(args: &[String]) -> Result<Self> {
        let mut flags = Self {
            seconds: 8,
            rounds: 7,
            write: true,
            only: Vec::new(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--seconds" => {
                    flags.seconds = args
                        .next()
                        .and_then(|value| value.parse().ok())
                        .ok_or("--seconds takes a whole number")?;
                }
                "--rounds" => {
                    flags.rounds = args
                        .next()
                        .and_then(|value| value.parse().ok())
                        .filter(|rounds| rounds % 2 == 1)
                        .ok_or("--rounds takes an odd whole number (a row is their median)")?;
                }
                "--no-write" => flags.write = false,
                "--only" => {
                    let names = args.next().ok_or("--only needs scenario names")?;
                    for name in names.split(',') {
                        let scenario = Scenario::ALL
                            .into_iter()
                            .find(|scenario| scenario.name() == name)
                            .ok_or_else(|| {
                                let known: Vec<_> =
                                    Scenario::ALL.iter().map(|s| s.name()).collect();
                                format!(
                                    "bench: no scenario {name}; the scenarios: {}",
                                    known.join(", ")
                                )
                            })?;
                        flags.only.push(scenario);
                    }
                    flags.write = false;
                }
                other => return Err(format!("bench: unknown argument {other}")),
            }
        }
        Ok(flags)
    }
}

impl Fuzz {
    fn parse(args: &[String]) -> Result<Self> {
        let seconds = match args {
            [] => 300,
            [flag, value] if flag == "--seconds" => value
                .parse()
                .map_err(|_| "--seconds takes a whole number")?,
            _ => return Err("usage: cargo xtask fuzz [--seconds N]".into()),
        };
        Ok(Self { seconds })
    }
}

impl Reliability {
    fn parse(args: &[String]) -> Result<Self> {
        const USAGE: &str = "usage: cargo xtask reliability [--debug] [--soak-seconds N]";
        let mut flags = Self {
            profile: "release",
            soak_seconds: 60,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--debug" => flags.profile = "debug",
                "--soak-seconds" => {
                    flags.soak_seconds = args
                        .next()
                        .and_then(|value| value.parse().ok())
                        .ok_or(USAGE)?;
                }
                _ => return Err(USAGE.into()),
            }
        }
        Ok(flags)
    }
}
