//! Embeds every `migrations/*.sql` file in the binary, in order, so a new migration needs
//! no code change: `src/db/migrations.rs` includes the list this writes. A file's name is
//! `<version>_<description>.sql`, the version a number unique among them. The list names
//! each file from `CARGO_MANIFEST_DIR`, so a moved or copied project still builds.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=migrations");
    let mut migrations: Vec<(i64, String, String)> = std::fs::read_dir("migrations")
        .expect("the migrations directory is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "sql"))
        .map(|path| {
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            let (version, description) = stem.split_once('_').unwrap_or((&stem, ""));
            let version = version.parse().unwrap_or_else(|_| {
                panic!(
                    "{}: the name must start with a number and `_`",
                    path.display()
                )
            });
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            (
                version,
                description.replace('_', " "),
                format!("/migrations/{file}"),
            )
        })
        .collect();
    migrations.sort();
    if let Some(pair) = migrations.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        panic!("two migrations have the version {}", pair[0].0);
    }
    let mut code = String::from("&[\n");
    for (version, description, path) in &migrations {
        writeln!(
            code,
            "    ({version}, {description:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {path:?}))),"
        )
        .expect("writing to a String");
    }
    code.push(']');
    let out = std::env::var("OUT_DIR").expect("Cargo sets OUT_DIR");
    std::fs::write(Path::new(&out).join("migrations.rs"), code).expect("OUT_DIR is writable");
}
