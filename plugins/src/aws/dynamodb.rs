//! What the DynamoDB users (the `kinesis` receiver's lease table, `dialogue_assembly`'s
//! dialogue table) share.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};

use super::sdk_error;

/// Creates a table with `keys` (name, type, hash or range) on demand unless it exists, with
/// whatever else `more` adds (indexes), and waits until it is `ACTIVE`.
pub async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<(&str, ScalarAttributeType, KeyType)>,
    more: impl FnOnce(
        aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder,
    )
        -> aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder,
) -> Result<(), String> {
    let exists = match client.describe_table().table_name(table).send().await {
        Ok(_) => true,
        Err(e) if e.code() == Some("ResourceNotFoundException") => false,
        Err(e) => return Err(sdk_error(&format!("cannot describe table `{table}`"), &e).1),
    };
    if !exists {
        let mut create = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest);
        for (name, ty, kt) in keys {
            create = create
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(name)
                        .attribute_type(ty)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(name)
                        .key_type(kt)
                        .build()
                        .map_err(|e| e.to_string())?,
                );
        }
        match more(create).send().await {
            Ok(_) => {}
            // Another worker created it first.
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(sdk_error(&format!("cannot create table `{table}`"), &e).1),
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let d = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("cannot describe table `{table}`"), &e).1)?;
        if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("table `{table}` did not become ACTIVE within 120s"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
