//! Columns between arrow-avro's shapes and Spark's (semantics appendix, §9).
//!
//! arrow-avro decodes an enum as a dictionary, a `fixed` as fixed-size binary and a union of
//! several types as an Arrow union; Spark reads them as a string, binary and a struct of
//! `member0, member1, ...` (one per non-null branch, the one the value took set), with two
//! exceptions: `[int, long]` is a long and `[float, double]` a double. [`to_spark`] turns a
//! decoded column into Spark's shape, [`spark_type`] says its type beforehand, and
//! [`to_avro_shape`] turns a Spark-shaped column into the shape arrow-avro writes as a
//! given Avro schema.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema as Avro;
use apache_avro::schema::Name;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, FixedSizeBinaryArray, Int32Array, ListArray, MapArray,
    NullArray, StringArray, StructArray, UInt32Array, UnionArray,
};
use arrow::buffer::ScalarBuffer;
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Int32Type, TimeUnit, UnionFields};
use arrow::error::ArrowError;

use crate::error::{Error, Result};

/// The Spark type of a column arrow-avro decodes as `data_type`.
pub(crate) fn spark_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Dictionary(_, _) | DataType::Utf8View => DataType::Utf8,
        DataType::FixedSizeBinary(_) => DataType::Binary,
        DataType::Timestamp(_, _) => crate::ddl::timestamp_type(),
        DataType::List(item) => DataType::List(spark_field(item)),
        DataType::Map(entries, sorted) => DataType::Map(spark_field(entries), *sorted),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(spark_field).collect()),
        DataType::Union(fields, _) => {
            let branches: Vec<&FieldRef> = fields.iter().map(|(_, f)| f).filter(|f| !f.data_type().is_null()).collect();
            match union_kind(&branches) {
                UnionKind::One(t) | UnionKind::Widened(t) => t,
                UnionKind::Members => DataType::Struct(
                    branches
                        .iter()
                        .enumerate()
                        .map(|(i, f)| Field::new(format!("member{i}"), spark_type(f.data_type()), true))
                        .collect(),
                ),
            }
        }
        other => other.clone(),
    }
}

fn spark_field(field: &FieldRef) -> FieldRef {
    Arc::new(Field::new(field.name(), spark_type(field.data_type()), field.is_nullable()))
}

/// How Spark reads a union of these (non-null) branches.
enum UnionKind {
    /// One branch: its type.
    One(DataType),
    /// `[int, long]` or `[float, double]`: the wider type.
    Widened(DataType),
    /// A struct of `member0, member1, ...`.
    Members,
}

fn union_kind(branches: &[&FieldRef]) -> UnionKind {
    let types: Vec<&DataType> = branches.iter().map(|f| f.data_type()).collect();
    match types.as_slice() {
        [one] => UnionKind::One(spark_type(one)),
        [DataType::Int32, DataType::Int64] | [DataType::Int64, DataType::Int32] => UnionKind::Widened(DataType::Int64),
        [DataType::Float32, DataType::Float64] | [DataType::Float64, DataType::Float32] => {
            UnionKind::Widened(DataType::Float64)
        }
        _ => UnionKind::Members,
    }
}

/// A column arrow-avro decoded, in Spark's shape (of type [`spark_type`] of its own).
pub(crate) fn to_spark(array: &ArrayRef) -> std::result::Result<ArrayRef, ArrowError> {
    Ok(match array.data_type() {
        DataType::Dictionary(_, _) | DataType::Utf8View | DataType::FixedSizeBinary(_) | DataType::Timestamp(_, _) => {
            cast(array, &spark_type(array.data_type()))?
        }
        DataType::List(item) => {
            let list = array.as_list::<i32>();
            Arc::new(ListArray::try_new(
                spark_field(item),
                list.offsets().clone(),
                to_spark(list.values())?,
                list.nulls().cloned(),
            )?)
        }
        DataType::Map(entries, sorted) => {
            let map = array.as_map();
            let DataType::Struct(_) = spark_type(entries.data_type()) else { unreachable!("map entries") };
            let converted = to_spark(&(Arc::new(map.entries().clone()) as ArrayRef))?;
            Arc::new(MapArray::try_new(
                spark_field(entries),
                map.offsets().clone(),
                converted.as_struct().clone(),
                map.nulls().cloned(),
                *sorted,
            )?)
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let columns = s.columns().iter().map(to_spark).collect::<std::result::Result<Vec<_>, _>>()?;
            let fields: Fields = fields.iter().map(spark_field).collect();
            Arc::new(StructArray::try_new(fields, columns, s.nulls().cloned())?)
        }
        DataType::Union(fields, _) => union_to_spark(array.as_union(), fields)?,
        _ => array.clone(),
    })
}

/// A union column in Spark's shape: each branch's values gathered to the rows that took it.
fn union_to_spark(union: &UnionArray, fields: &UnionFields) -> std::result::Result<ArrayRef, ArrowError> {
    let null_branch = fields.iter().find(|(_, f)| f.data_type().is_null()).map(|(id, _)| id);
    let branches: Vec<(i8, &FieldRef)> = fields.iter().filter(|(_, f)| !f.data_type().is_null()).collect();
    // Branch `id`'s values at the rows that took it, null elsewhere.
    let gathered = |id: i8| -> std::result::Result<ArrayRef, ArrowError> {
        let indices: UInt32Array =
            (0..union.len()).map(|row| (union.type_id(row) == id).then(|| union.value_offset(row) as u32)).collect();
        take(to_spark(union.child(id))?.as_ref(), &indices, None)
    };
    let refs: Vec<&FieldRef> = branches.iter().map(|(_, f)| *f).collect();
    match union_kind(&refs) {
        UnionKind::One(_) => gathered(branches[0].0),
        UnionKind::Widened(wide) => {
            let (first, second) = (cast(&gathered(branches[0].0)?, &wide)?, cast(&gathered(branches[1].0)?, &wide)?);
            let took_first: BooleanArray =
                (0..union.len()).map(|row| Some(union.type_id(row) == branches[0].0)).collect();
            arrow::compute::kernels::zip::zip(&took_first, &first, &second)
        }
        UnionKind::Members => {
            let columns = branches.iter().map(|(id, _)| gathered(*id)).collect::<std::result::Result<Vec<_>, _>>()?;
            let fields: Fields = columns
                .iter()
                .enumerate()
                .map(|(i, c)| Field::new(format!("member{i}"), c.data_type().clone(), true))
                .collect();
            let nulls = null_branch.map(|null| {
                arrow::buffer::NullBuffer::from_iter((0..union.len()).map(|row| union.type_id(row) != null))
            });
            Ok(Arc::new(StructArray::try_new(fields, columns, nulls)?))
        }
    }
}

/// The named types of a schema, to follow references by name.
pub(crate) type Names = HashMap<Name, Avro>;

/// The named types defined in `schema`.
pub(crate) fn names_of(schema: &Avro) -> Result<Names> {
    let resolved = apache_avro::schema::ResolvedSchema::try_from(schema).map_err(avro_error)?;
    Ok(resolved.get_names().iter().map(|(n, s)| (n.clone(), (*s).clone())).collect())
}

fn avro_error(e: apache_avro::Error) -> Error {
    Error::Analysis(format!("invalid Avro schema: {e}"))
}

fn mismatch(data_type: &DataType, schema: &Avro) -> Error {
    let avro = serde_json::to_string(schema).unwrap_or_default();
    Error::Analysis(format!("cannot write a {} as the Avro type {avro}", crate::ddl::spark_type_name(data_type)))
}

/// `array` (a column in Spark's shape) in the shape arrow-avro writes as `schema`: strings of
/// an enum as a dictionary of its symbols, binary of a `fixed` at its size, a struct of
/// `member0, member1, ...` as a union, timestamps in the unit the logical type says.
pub(crate) fn to_avro_shape(array: &ArrayRef, schema: &Avro, names: &Names) -> Result<ArrayRef> {
    let data_type = array.data_type();
    let cast_to = |t: DataType| -> Result<ArrayRef> { Ok(cast(array, &t)?) };
    match (schema, data_type) {
        (Avro::Ref { name }, _) => {
            let named = names.get(name).ok_or_else(|| Error::Analysis(format!("Avro type {name} is not defined")))?;
            to_avro_shape(array, named, names)
        }
        (Avro::Null, _) => Ok(Arc::new(NullArray::new(array.len()))),
        (Avro::Boolean, DataType::Boolean) => Ok(array.clone()),
        (Avro::Int, DataType::Int8 | DataType::Int16 | DataType::Int32) => cast_to(DataType::Int32),
        (Avro::Date, DataType::Date32) => Ok(array.clone()),
        (Avro::Int, DataType::Date32) => cast_to(DataType::Int32),
        (Avro::Long, DataType::Int64) => Ok(array.clone()),
        (Avro::Float, DataType::Float32) | (Avro::Double, DataType::Float64) => Ok(array.clone()),
        (Avro::String | Avro::Uuid(_), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
            cast_to(DataType::Utf8)
        }
        (
            Avro::Bytes,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_),
        ) => cast_to(DataType::Binary),
        (Avro::Fixed(fixed), DataType::Binary | DataType::LargeBinary | DataType::BinaryView) => {
            let binary = cast(array, &DataType::Binary)?;
            let values = binary.as_binary::<i32>();
            if let Some(bad) = values.iter().flatten().find(|v| v.len() != fixed.size) {
                return Err(Error::Analysis(format!(
                    "cannot write {} bytes as the Avro fixed {} of {} bytes",
                    bad.len(),
                    fixed.name,
                    fixed.size
                )));
            }
            let sized = FixedSizeBinaryArray::try_from_sparse_iter_with_size(values.iter(), fixed.size as i32)?;
            Ok(Arc::new(sized))
        }
        (Avro::Fixed(fixed), DataType::FixedSizeBinary(n)) if *n as usize == fixed.size => Ok(array.clone()),
        (Avro::Long | Avro::TimestampMicros, DataType::Timestamp(_, _)) => {
            cast_to(DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())))
        }
        (Avro::TimestampMillis, DataType::Timestamp(_, _)) => {
            cast_to(DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())))
        }
        (Avro::LocalTimestampMicros, DataType::Timestamp(_, _)) => {
            cast_to(DataType::Timestamp(TimeUnit::Microsecond, None))
        }
        (Avro::LocalTimestampMillis, DataType::Timestamp(_, _)) => {
            cast_to(DataType::Timestamp(TimeUnit::Millisecond, None))
        }
        (Avro::Decimal(decimal), DataType::Decimal128(_, _) | DataType::Decimal256(_, _)) => {
            let (p, s) = (decimal.precision as u8, decimal.scale as i8);
            let t = if p <= 38 { DataType::Decimal128(p, s) } else { DataType::Decimal256(p, s) };
            cast_to(t)
        }
        (Avro::Enum(e), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
            let text = cast(array, &DataType::Utf8)?;
            let keys = text
                .as_string::<i32>()
                .iter()
                .map(|v| match v {
                    None => Ok(None),
                    Some(v) => e.symbols.iter().position(|s| s == v).map(|i| Some(i as i32)).ok_or_else(|| {
                        Error::Analysis(format!(
                            "cannot write \"{v}\" as the Avro enum {}: its symbols are {}",
                            e.name,
                            e.symbols.join(", ")
                        ))
                    }),
                })
                .collect::<Result<Int32Array>>()?;
            let symbols: ArrayRef = Arc::new(StringArray::from(e.symbols.clone()));
            Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(keys, symbols)?))
        }
        (Avro::Array(items), DataType::List(_) | DataType::LargeList(_)) => {
            let list = cast(array, &DataType::List(Arc::new(Field::new("item", list_item(data_type).clone(), true))))?;
            let list = list.as_list::<i32>();
            let values = to_avro_shape(list.values(), &items.items, names)?;
            let item = Field::new("item", values.data_type().clone(), true);
            Ok(Arc::new(ListArray::try_new(Arc::new(item), list.offsets().clone(), values, list.nulls().cloned())?))
        }
        (Avro::Map(map_schema), DataType::Map(_, _)) => {
            let map = array.as_map();
            let keys = cast(map.keys(), &DataType::Utf8)?;
            let values = to_avro_shape(map.values(), &map_schema.types, names)?;
            let fields = Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", values.data_type().clone(), true),
            ]);
            let entries = StructArray::try_new(fields.clone(), vec![keys, values], None)?;
            let entries_field = Field::new("entries", DataType::Struct(fields), false);
            Ok(Arc::new(MapArray::try_new(
                Arc::new(entries_field),
                map.offsets().clone(),
                entries,
                map.nulls().cloned(),
                false,
            )?))
        }
        (Avro::Record(record), DataType::Struct(fields)) => {
            let s = array.as_struct();
            let mut out_fields = Vec::new();
            let mut columns = Vec::new();
            for avro_field in &record.fields {
                let Some(i) = fields.iter().position(|f| f.name() == &avro_field.name) else {
                    return Err(Error::Analysis(format!(
                        "cannot write a {} as the Avro record {}: it has no field {}",
                        crate::ddl::spark_type_name(data_type),
                        record.name,
                        avro_field.name
                    )));
                };
                let column = to_avro_shape(s.column(i), &avro_field.schema, names)?;
                out_fields.push(Field::new(&avro_field.name, column.data_type().clone(), fields[i].is_nullable()));
                columns.push(column);
            }
            Ok(Arc::new(StructArray::try_new(out_fields.into(), columns, s.nulls().cloned())?))
        }
        (Avro::Union(union), _) => {
            let variants = union.variants();
            let non_null: Vec<(usize, &Avro)> =
                variants.iter().enumerate().filter(|(_, v)| **v != Avro::Null).collect();
            if let [(_, only)] = non_null.as_slice() {
                // `[T, "null"]` or `["null", T]`: a nullable T.
                return to_avro_shape(array, only, names);
            }
            members_to_union(array, variants, &non_null, names).ok_or_else(|| mismatch(data_type, schema))?
        }
        _ => Err(mismatch(data_type, schema)),
    }
}

fn list_item(data_type: &DataType) -> &DataType {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) => item.data_type(),
        _ => unreachable!("called on lists"),
    }
}

/// A struct of `member0, member1, ...` (Spark's shape of a union) as an Arrow dense union of
/// `variants`: each row takes the branch of its first non-null member, or the null branch.
/// `None` if `array` is not such a struct.
fn members_to_union(
    array: &ArrayRef,
    variants: &[Avro],
    non_null: &[(usize, &Avro)],
    names: &Names,
) -> Option<Result<ArrayRef>> {
    let DataType::Struct(fields) = array.data_type() else { return None };
    if fields.len() != non_null.len() {
        return None;
    }
    let s = array.as_struct();
    let null_branch = variants.iter().position(|v| *v == Avro::Null);
    let mut type_ids = Vec::with_capacity(s.len());
    let mut offsets = Vec::with_capacity(s.len());
    let mut taken: Vec<Vec<u32>> = vec![Vec::new(); variants.len()];
    for row in 0..s.len() {
        let member = (0..non_null.len()).find(|m| s.is_valid(row) && s.column(*m).is_valid(row));
        let branch = match (member, null_branch) {
            (Some(m), _) => non_null[m].0,
            (None, Some(null)) => null,
            (None, None) => {
                return Some(Err(Error::Analysis(format!(
                    "cannot write row {row} as an Avro union without null: none of its members is set"
                ))));
            }
        };
        type_ids.push(branch as i8);
        offsets.push(taken[branch].len() as i32);
        taken[branch].push(row as u32);
    }
    let mut children = Vec::with_capacity(variants.len());
    let mut union_fields = Vec::with_capacity(variants.len());
    for (branch, variant) in variants.iter().enumerate() {
        let rows = UInt32Array::from(std::mem::take(&mut taken[branch]));
        let child: ArrayRef = match non_null.iter().position(|(b, _)| *b == branch) {
            None => Arc::new(NullArray::new(rows.len())),
            Some(m) => match take(s.column(m).as_ref(), &rows, None) {
                Ok(values) => match to_avro_shape(&values, variant, names) {
                    Ok(shaped) => shaped,
                    Err(e) => return Some(Err(e)),
                },
                Err(e) => return Some(Err(e.into())),
            },
        };
        union_fields
            .push((branch as i8, Arc::new(Field::new(format!("member{branch}"), child.data_type().clone(), true))));
        children.push(child);
    }
    let union_fields: UnionFields = union_fields.into_iter().collect();
    let union =
        UnionArray::try_new(union_fields, ScalarBuffer::from(type_ids), Some(ScalarBuffer::from(offsets)), children);
    Some(union.map(|u| Arc::new(u) as ArrayRef).map_err(Error::from))
}
