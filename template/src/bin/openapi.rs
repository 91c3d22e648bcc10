//! Prints the service's OpenAPI description: `cargo run --bin openapi > openapi.json`.

use {{crate_name}}::openapi;

fn main() {
    println!("{}", openapi::to_json());
}
