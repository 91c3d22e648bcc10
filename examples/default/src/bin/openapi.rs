//! Prints the service's OpenAPI description: `cargo run --bin openapi > openapi.json`.

use default_service::openapi;

fn main() {
    println!("{}", openapi::to_json());
}
