//! Prints the service's OpenAPI description: `cargo run --bin openapi > openapi.json`.

use full_service::openapi;

fn main() {
    println!("{}", openapi::to_json());
}
