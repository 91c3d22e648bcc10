//! Its own test binary: the panic hook is process-wide.

use std::io::Write;
use std::sync::{Arc, Mutex};

use default_service::bunyan::Bunyan;
use default_service::telemetry;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_panic_is_logged_as_an_error_in_the_log_format() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::registry().with(Bunyan::new("test", move || writer.clone()));
    telemetry::log_panics();

    tracing::subscriber::with_default(subscriber, || {
        let _ = std::panic::catch_unwind(|| panic!("the flux capacitor overheated"));
    });

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let record: serde_json::Value = serde_json::from_str(output.lines().next().unwrap()).unwrap();
    assert_eq!(record["level"], 50, "logged as an error: {output}");
    assert_eq!(record["panic.message"], "the flux capacitor overheated");
    assert!(
        record["panic.location"]
            .as_str()
            .unwrap()
            .contains("panics.rs")
    );
}
