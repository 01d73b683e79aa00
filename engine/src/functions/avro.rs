//! Spark's Avro column functions, usable from SQL and the DataFrame API (semantics appendix, §9):
//!
//! - `from_avro(data, jsonFormatSchema[, options])`: each binary value, an Avro value written
//!   with `jsonFormatSchema`, as Spark's type for that schema. Options: `mode` — FAILFAST (the
//!   default: a value that does not decode fails the batch, naming its row and length) or
//!   PERMISSIVE (it becomes null); `avroSchema` — the schema to read as (Avro's schema
//!   resolution: fields added with defaults, fields removed, ints widened), which then gives
//!   the type.
//! - `to_avro(data[, jsonFormatSchema])`: each value as Avro bytes, with the schema Spark
//!   derives from the column's type, or the one given (an enum's symbols, named records).
//!
//! With registry options instead of a schema — `map('schemaRegistryAddress', url, 'subject',
//! 'events-value')` — values are in the Confluent wire format: `from_avro` looks each value's
//! schema id up in the registry and reads it as the subject's latest version (or `avroSchema`),
//! a value whose id the registry does not have being bad; `to_avro` registers its schema under
//! the subject and writes the id before each value. A registry that cannot be reached fails
//! the batch in either mode, naming its URL.
//!
//! A null value gives null both ways. A struct column written without a schema is a record
//! even when nullable (DataFusion marks every `struct(...)` nullable, Spark does not).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

use arrow::array::BinaryArray;

use super::json::{literal_text, options_of, scalars};
use crate::format::avro_binary::{AvroDecoding, AvroEncoding, binary_of, confluent_id};
use crate::format::avro_schema::{TOP_LEVEL_RECORD, avro_type_of, parse};
use crate::options::Options;
use crate::registry::SchemaRegistry;

fn plan_error(function: &str, e: crate::Error) -> DataFusionError {
    DataFusionError::Plan(format!("{function}: {e}"))
}

fn check_binary(function: &str, field: &Field) -> DfResult<()> {
    match field.data_type() {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null => Ok(()),
        other => plan_err!(
            "{function}: the Avro column must be binary, but {} is {}",
            field.name(),
            crate::ddl::spark_type_name(other)
        ),
    }
}

/// What a `from_avro` call reads: its decoding (or, with a registry, how to get one per
/// batch) and whether bad values fail the batch.
struct FromAvroCall {
    source: WriterSchemas,
    fail_fast: bool,
}

/// Where the writer schemas come from.
enum WriterSchemas {
    /// One schema given in the call: bare values.
    Given(AvroDecoding),
    /// The Confluent wire format: each value's schema id looked up in the registry, read as
    /// `reader` (the `avroSchema` option, else the subject's latest version at planning).
    Registry { registry: SchemaRegistry, reader: Value, data_type: DataType },
}

impl FromAvroCall {
    fn try_new(args: &[Option<&ScalarValue>]) -> DfResult<Self> {
        let registry_options = match args.get(1).copied().flatten() {
            Some(ScalarValue::Map(_)) => Some(options_of("from_avro", args[1])?),
            _ => None,
        };
        let options = match &registry_options {
            Some(options) => options.clone(),
            None => options_of("from_avro", args.get(2).copied().flatten())?,
        };
        let known: &[&str] = if registry_options.is_some() {
            &["mode", "avroSchema", REGISTRY, SUBJECT]
        } else {
            &["mode", "avroSchema"]
        };
        refuse_credentials("from_avro", &options)?;
        options.check_known("from_avro", known).map_err(|e| plan_error("from_avro", e))?;
        let fail_fast = match options.get("mode").map(str::to_ascii_uppercase).as_deref() {
            None | Some("FAILFAST") => true,
            Some("PERMISSIVE") => false,
            Some("DROPMALFORMED") => {
                return plan_err!(
                    "from_avro() doesn't support the DROPMALFORMED mode. Acceptable modes are PERMISSIVE and FAILFAST."
                );
            }
            Some(other) => return plan_err!("from_avro: mode '{other}' is not PERMISSIVE or FAILFAST"),
        };
        let reader: Option<Value> = options
            .get("avroSchema")
            .map(|r| parse(r, "the avroSchema option"))
            .transpose()
            .map_err(|e| plan_error("from_avro", e))?;
        let source = match &registry_options {
            None => {
                let Some(schema) = literal_text(args, 1) else {
                    return plan_err!(
                        "from_avro: the schema must be a literal string of an Avro schema in JSON, or a map of registry options"
                    );
                };
                let writer = parse(&schema, "from_avro's schema").map_err(|e| plan_error("from_avro", e))?;
                WriterSchemas::Given(
                    AvroDecoding::bare(&writer, reader.as_ref()).map_err(|e| plan_error("from_avro", e))?,
                )
            }
            Some(options) => {
                let registry = registry_of("from_avro", options)?;
                let reader = match (reader, options.get(SUBJECT)) {
                    (Some(reader), _) => reader,
                    (None, Some(subject)) => registry.latest(subject).map_err(|e| plan_error("from_avro", e))?.schema,
                    (None, None) => {
                        return plan_err!(
                            "from_avro: with a registry, name the '{SUBJECT}' (or give 'avroSchema') to read as"
                        );
                    }
                };
                let data_type = AvroDecoding::confluent(std::iter::empty(), Some(&reader))
                    .map_err(|e| plan_error("from_avro", e))?
                    .data_type()
                    .clone();
                WriterSchemas::Registry { registry, reader, data_type }
            }
        };
        Ok(FromAvroCall { source, fail_fast })
    }

    fn data_type(&self) -> &DataType {
        match &self.source {
            WriterSchemas::Given(decoding) => decoding.data_type(),
            WriterSchemas::Registry { data_type, .. } => data_type,
        }
    }

    /// The decoding for a batch of `messages`: with a registry, one that knows the writer
    /// schema of every id in the batch the registry has (values with other ids are bad).
    fn decoding(&self, messages: &BinaryArray) -> DfResult<std::borrow::Cow<'_, AvroDecoding>> {
        let (registry, reader) = match &self.source {
            WriterSchemas::Given(decoding) => return Ok(std::borrow::Cow::Borrowed(decoding)),
            WriterSchemas::Registry { registry, reader, .. } => (registry, reader),
        };
        let mut ids: Vec<u32> = messages.iter().flatten().filter_map(|m| confluent_id(m).ok()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut writers = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(schema) =
                registry.find_schema(id).map_err(|e| DataFusionError::Execution(format!("from_avro: {e}")))?
            {
                writers.push((id, schema));
            }
        }
        let decoding = AvroDecoding::confluent(writers.iter().map(|(id, s)| (*id, s)), Some(reader))
            .map_err(|e| DataFusionError::Execution(format!("from_avro: {e}")))?;
        Ok(std::borrow::Cow::Owned(decoding))
    }
}

/// The option naming the registry's URL (Databricks' name).
const REGISTRY: &str = "schemaRegistryAddress";
/// The option naming the subject.
const SUBJECT: &str = "subject";

fn registry_of(function: &str, options: &Options) -> DfResult<SchemaRegistry> {
    match options.get(REGISTRY) {
        Some(url) => Ok(SchemaRegistry::new(url)),
        None => plan_err!("{function}: registry options need '{REGISTRY}' (the registry's URL)"),
    }
}

/// Credentials in an expression would show in `explain()`: they go to
/// `SchemaRegistry::with_basic_auth` instead. The error never repeats the value.
fn refuse_credentials(function: &str, options: &Options) -> DfResult<()> {
    let secret = options.iter().map(|(k, _)| k).find(|k| {
        crate::options::is_secret(k) || ["user.info", "auth"].iter().any(|s| k.to_ascii_lowercase().contains(s))
    });
    match secret {
        Some(key) => plan_err!(
            "{function}: option '{key}' would put a credential in the query's plan; register it once with SchemaRegistry::new(url).with_basic_auth(user, password) instead"
        ),
        None => Ok(()),
    }
}

/// `from_avro(data, jsonFormatSchema[, options])`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct FromAvro {
    signature: Signature,
}

impl FromAvro {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(FromAvro { signature: Signature::variadic_any(Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for FromAvro {
    fn name(&self) -> &str {
        "from_avro"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        plan_err!("from_avro's type depends on its schema argument")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        if !(2..=3).contains(&args.arg_fields.len()) {
            return plan_err!("from_avro takes a binary column, an Avro schema in JSON and optionally options");
        }
        check_binary("from_avro", &args.arg_fields[0])?;
        let call = FromAvroCall::try_new(args.scalar_arguments)?;
        Ok(Arc::new(Field::new("from_avro", call.data_type().clone(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let literals = scalars(&args.args);
        let refs: Vec<Option<&ScalarValue>> = literals.iter().map(Option::as_ref).collect();
        let call = FromAvroCall::try_new(&refs)?;
        let data = binary_of(&args.args[0].to_array(args.number_rows)?)?;
        let (values, bad) = call.decoding(&data)?.decode(&data, call.fail_fast)?;
        if let (true, Some(first)) = (call.fail_fast, bad.first()) {
            return exec_err!(
                "from_avro: malformed Avro value in row {} of the batch: {}. Parse Mode: FAILFAST. To process malformed records as null result, try setting the option 'mode' as 'PERMISSIVE'.",
                first.row,
                first.message
            );
        }
        Ok(ColumnarValue::Array(values))
    }
}

/// `to_avro(data[, jsonFormatSchema])`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ToAvro {
    signature: Signature,
}

impl ToAvro {
    pub(crate) fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(ToAvro { signature: Signature::variadic_any(Volatility::Immutable) })
    }
}

/// The encoding of a `to_avro` call on a column described by `field`: with the schema given,
/// or Spark's for the type; with registry options, that schema registered under the subject
/// (or the `avroSchema` option's) and its id written before each value.
fn to_avro_encoding(field: &Field, args: &[Option<&ScalarValue>]) -> DfResult<AvroEncoding> {
    let derived = || {
        // Spark's schema for the type; a struct at the top is a record, never a union.
        let nullable = field.is_nullable() && !matches!(field.data_type(), DataType::Struct(_));
        avro_type_of(field.data_type(), nullable, TOP_LEVEL_RECORD, "").map_err(|e| plan_error("to_avro", e))
    };
    match args.get(1).copied() {
        None => AvroEncoding::bare(&derived()?),
        Some(Some(ScalarValue::Map(_))) => {
            let options = options_of("to_avro", args[1])?;
            refuse_credentials("to_avro", &options)?;
            options.check_known("to_avro", &["avroSchema", REGISTRY, SUBJECT]).map_err(|e| plan_error("to_avro", e))?;
            let registry = registry_of("to_avro", &options)?;
            let Some(subject) = options.get(SUBJECT) else {
                return plan_err!("to_avro: with a registry, name the '{SUBJECT}' to register the schema under");
            };
            let schema = match options.get("avroSchema") {
                Some(text) => parse(text, "the avroSchema option").map_err(|e| plan_error("to_avro", e))?,
                None => derived()?,
            };
            let id = registry.register(subject, &schema).map_err(|e| plan_error("to_avro", e))?;
            AvroEncoding::confluent(&schema, id)
        }
        Some(_) => {
            let Some(text) = literal_text(args, 1) else {
                return plan_err!("to_avro: the schema must be a literal string of an Avro schema in JSON");
            };
            AvroEncoding::bare(&parse(&text, "to_avro's schema").map_err(|e| plan_error("to_avro", e))?)
        }
    }
    .map_err(|e| plan_error("to_avro", e))
}

impl ScalarUDFImpl for ToAvro {
    fn name(&self) -> &str {
        "to_avro"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        if !(1..=2).contains(&args.arg_fields.len()) {
            return plan_err!("to_avro takes a column and optionally an Avro schema in JSON");
        }
        let field = &args.arg_fields[0];
        let encoding = to_avro_encoding(field, args.scalar_arguments)?;
        encoding.check(field.data_type()).map_err(|e| plan_error("to_avro", e))?;
        Ok(Arc::new(Field::new("to_avro", DataType::Binary, field.is_nullable())))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let literals = scalars(&args.args);
        let refs: Vec<Option<&ScalarValue>> = literals.iter().map(Option::as_ref).collect();
        let encoding = to_avro_encoding(&args.arg_fields[0], &refs)?;
        let values = args.args[0].to_array(args.number_rows)?;
        let encoded = encoding.encode(&values).map_err(|e| DataFusionError::Execution(format!("to_avro: {e}")))?;
        Ok(ColumnarValue::Array(Arc::new(encoded)))
    }
}
