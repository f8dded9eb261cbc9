//! The output registry seen from outside the crate: a contributor's output, written against the
//! public API only (this test binary is another crate), is registered by scheme and then resolved,
//! gated by its capabilities and opened exactly like the built-in ones.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use intervals_adapters::outputs::{Capabilities, Leases, MetricsContext, OutputConfig, OutputKind, Registry};
use intervals_adapters::sinks::CsvLayout;
use intervals_app::{Sink, SinkError, WindowKey, WindowTarget, WriteStats};
use intervals_domain::MetricRow;

use crate::sinks::support::{golden_query, golden_windows};

/// `memory:NAME`: rows kept in a shared list (a stand-in for a contributor's backend).
#[derive(Default)]
struct MemoryKind {
    rows: Arc<Mutex<Vec<MetricRow>>>,
}

impl OutputKind for MemoryKind {
    fn schemes(&self) -> &'static [&'static str] {
        &["memory"]
    }
    fn form(&self) -> &'static str {
        "memory:NAME"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            checkpoints: false,
            directory: false,
            leases: Leases::None,
            wide_layout: false,
            read_back: false,
        }
    }
    fn parse(&self, url: &str) -> Result<Box<dyn OutputConfig>, String> {
        let name = url.strip_prefix("memory:").filter(|n| !n.is_empty()).ok_or("the name is empty")?;
        Ok(Box::new(MemoryConfig { name: name.to_owned(), rows: Arc::clone(&self.rows) }))
    }
}

#[derive(Debug)]
struct MemoryConfig {
    name: String,
    rows: Arc<Mutex<Vec<MetricRow>>>,
}

#[async_trait]
impl OutputConfig for MemoryConfig {
    fn describe(&self) -> String {
        format!("memory:{}", self.name)
    }
    async fn open_metrics(&self, _: &MetricsContext) -> Result<WindowTarget, SinkError> {
        Ok(WindowTarget::Plain(Arc::new(MemorySink { rows: Arc::clone(&self.rows) })))
    }
}

struct MemorySink {
    rows: Arc<Mutex<Vec<MetricRow>>>,
}

#[async_trait]
impl Sink for MemorySink {
    async fn write_window(&self, _: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError> {
        self.rows.lock().unwrap().extend_from_slice(rows);
        Ok(WriteStats::default())
    }
    async fn finish(&self) -> Result<(), SinkError> {
        Ok(())
    }
    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

#[tokio::test]
async fn an_output_registered_from_outside_the_crate_is_resolved_gated_and_opened() {
    let kind = MemoryKind::default();
    let rows = Arc::clone(&kind.rows);
    let mut registry = Registry::builtin();
    assert!(registry.parse("memory:x").unwrap_err().contains("unknown output type"));
    registry.register(Arc::new(kind));

    let spec = registry.parse("memory:team-a").unwrap();
    assert_eq!((spec.scheme(), spec.to_string()), ("memory", "memory:team-a".to_owned()));
    assert!(registry.forms().contains("memory:NAME") && registry.forms().contains("sqlite:PATH"));
    let refusal = spec.store_refusal().expect("no checkpoints: the daemon cannot use it");
    assert!(refusal.contains("memory"), "{refusal}");
    assert!(registry.parse("memory:").unwrap_err().contains("the name is empty"));

    let cx = MetricsContext { query: golden_query(), layout: CsvLayout::Long };
    let target = spec.config().open_metrics(&cx).await.unwrap();
    assert!(target.checkpoints().is_none());
    let written: usize = golden_windows().iter().map(|(_, rows)| rows.len()).sum();
    for (key, window_rows) in golden_windows() {
        target.sink().write_window(&key, window_rows.as_slice()).await.unwrap();
    }
    assert_eq!(rows.lock().unwrap().len(), written);
    let directory = spec.config().open_directory().await.map(|_| ()).unwrap_err();
    assert!(directory.to_string().contains("cannot hold users"), "{directory}");
}
