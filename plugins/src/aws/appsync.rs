//! The `appsync` exporter.
