//! The `opensearch` exporter.
