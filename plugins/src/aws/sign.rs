//! AWS Signature Version 4 for the HTTP-speaking AWS exporters (`opensearch` with services
//! `es` and `aoss`, `appsync`), with credentials from the standard chain.
