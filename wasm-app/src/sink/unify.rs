//! One dictionary per dictionary field across all the batches of an output,
//! for the Arrow IPC file format, where a dictionary cannot be replaced.
//!
//! A stream may give each batch its own dictionary (a guest often does).
//! [`Unifier`] re-keys every dictionary array, at any depth (inside lists,
//! structs, maps, unions, run-end arrays), against a growing *union*
//! dictionary per field: the distinct values seen so far, in first-seen
//! order. Each batch's dictionary is then the previous one plus new values
//! at the end, which the IPC writer sends as a delta dictionary. A
//! dictionary whose values hold another dictionary is not re-keyed: it must
//! be the same in every batch, else the error names its column.
//!
//! Invariants: every value reads back the same (`dict.values()[key]` of the
//! output equals that of the input, nulls included); keys change where a
//! batch's dictionary differs from the union; the first batch of a field
//! keeps its keys unless its own dictionary repeats a value.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{make_array, Array, ArrayData, ArrayRef, AsArray, RecordBatch, UInt64Array};
use arrow::compute::kernels::cast::{cast_with_options, CastOptions};
use arrow::compute::{concat, take};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::row::{RowConverter, SortField};

/// Rewrites batches so that each dictionary field has one growing dictionary.
pub struct Unifier {
    /// One per dictionary position, in depth-first order of the schema.
    dicts: Vec<UnionDict>,
    any: bool,
}

/// The union dictionary of one dictionary field.
struct UnionDict {
    /// The column, for messages (`a.b` for a nested field).
    column: String,
    /// `None` for a dictionary whose values hold another dictionary: it is
    /// not re-keyed, and must be the same in every batch.
    converter: Option<RowConverter>,
    /// Row encoding of each value in `values` -> its index there.
    index: HashMap<Box<[u8]>, u64>,
    values: ArrayRef,
    /// The last source dictionary and where its values are in `values`:
    /// batches that share a dictionary are re-keyed without hashing it again.
    last: Option<(ArrayData, Arc<UInt64Array>)>,
}

impl UnionDict {
    fn new(column: String, value_type: &DataType) -> anyhow::Result<Self> {
        let converter =
            RowConverter::new(vec![SortField::new(value_type.clone())]).with_context(|| {
                format!("column {column}: cannot unify dictionaries of {value_type} values")
            })?;
        Ok(UnionDict {
            column,
            converter: Some(converter),
            index: HashMap::new(),
            values: arrow::array::new_empty_array(value_type),
            last: None,
        })
    }

    fn fixed(column: String) -> Self {
        UnionDict {
            column,
            converter: None,
            index: HashMap::new(),
            values: arrow::array::new_null_array(&DataType::Null, 0),
            last: None,
        }
    }

    /// Checks that a fixed dictionary's `source` is the one of earlier
    /// batches.
    fn same(&mut self, source: &ArrayRef) -> anyhow::Result<()> {
        let data = source.to_data();
        match &self.last {
            None => self.last = Some((data, Arc::new(UInt64Array::from(Vec::<u64>::new())))),
            Some((prev, _)) if ArrayData::ptr_eq(prev, &data) || *prev == data => {}
            Some(_) => bail!(
                "column {}: its dictionary holds another dictionary and changes between \
                 batches, which an Arrow IPC file cannot hold; write an IPC stream (.arrows)",
                self.column
            ),
        }
        Ok(())
    }

    /// Where each of `source`'s values is in the union, adding new ones.
    fn map(&mut self, source: &ArrayRef) -> anyhow::Result<Arc<UInt64Array>> {
        let data = source.to_data();
        if let Some((prev, mapping)) = &self.last {
            if ArrayData::ptr_eq(prev, &data) || *prev == data {
                return Ok(mapping.clone());
            }
        }
        let Some(converter) = &self.converter else {
            bail!("internal: column {} is not re-keyed", self.column);
        };
        let rows = converter
            .convert_columns(std::slice::from_ref(source))
            .with_context(|| format!("column {}: cannot unify its dictionaries", self.column))?;
        let mut fresh: Vec<u64> = Vec::new();
        let mut mapping = Vec::with_capacity(rows.num_rows());
        let base = self.values.len() as u64;
        for (i, row) in rows.iter().enumerate() {
            let next = base + fresh.len() as u64;
            let at = *self.index.entry(row.as_ref().into()).or_insert_with(|| {
                fresh.push(i as u64);
                next
            });
            mapping.push(at);
        }
        if !fresh.is_empty() {
            let added = take(source.as_ref(), &UInt64Array::from(fresh), None)?;
            self.values = if self.values.is_empty() {
                added
            } else {
                concat(&[self.values.as_ref(), added.as_ref()])?
            };
        }
        let mapping = Arc::new(UInt64Array::from(mapping));
        self.last = Some((data, mapping.clone()));
        Ok(mapping)
    }
}

fn has_dictionary(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(..) => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => has_dictionary(f.data_type()),
        DataType::Struct(fs) => fs.iter().any(|f| has_dictionary(f.data_type())),
        DataType::Union(fs, _) => fs.iter().any(|(_, f)| has_dictionary(f.data_type())),
        DataType::RunEndEncoded(_, v) => has_dictionary(v.data_type()),
        _ => false,
    }
}

/// The child fields of a nested type, in the order of its `ArrayData`
/// children.
fn children(t: &DataType) -> Vec<&Field> {
    match t {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => vec![f.as_ref()],
        DataType::Struct(fs) => fs.iter().map(|f| f.as_ref()).collect(),
        DataType::Union(fs, _) => fs.iter().map(|(_, f)| f.as_ref()).collect(),
        DataType::RunEndEncoded(r, v) => vec![r.as_ref(), v.as_ref()],
        _ => Vec::new(),
    }
}

/// Adds a [`UnionDict`] per dictionary under `name` of type `t`, depth first.
fn collect(name: &str, t: &DataType, out: &mut Vec<UnionDict>) -> anyhow::Result<()> {
    if let DataType::Dictionary(_, v) = t {
        out.push(if has_dictionary(v) {
            UnionDict::fixed(name.to_string())
        } else {
            UnionDict::new(name.to_string(), v)?
        });
        return Ok(());
    }
    for c in children(t) {
        if has_dictionary(c.data_type()) {
            collect(&format!("{name}.{}", c.name()), c.data_type(), out)?;
        }
    }
    Ok(())
}

impl Unifier {
    /// A unifier for batches of `schema`; an error names a dictionary column
    /// that cannot be unified.
    pub fn new(schema: &SchemaRef) -> anyhow::Result<Self> {
        let mut dicts = Vec::new();
        for f in schema.fields() {
            collect(f.name(), f.data_type(), &mut dicts)?;
        }
        Ok(Unifier {
            any: !dicts.is_empty(),
            dicts,
        })
    }

    /// `batch` with every dictionary re-keyed against its field's union.
    pub fn unify(&mut self, batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
        if !self.any {
            return Ok(batch.clone());
        }
        let mut slot = 0;
        let columns = batch
            .columns()
            .iter()
            .map(|c| self.rekey(c, &mut slot))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(batch.schema(), columns)?)
    }

    fn rekey(&mut self, array: &ArrayRef, slot: &mut usize) -> anyhow::Result<ArrayRef> {
        let t = array.data_type();
        if !has_dictionary(t) {
            return Ok(array.clone());
        }
        let Some(dict) = array.as_any_dictionary_opt() else {
            let data = array.to_data();
            let mut kids = Vec::with_capacity(data.child_data().len());
            for child in data.child_data() {
                kids.push(self.rekey(&make_array(child.clone()), slot)?.to_data());
            }
            return Ok(make_array(data.into_builder().child_data(kids).build()?));
        };
        let Some(u) = self.dicts.get_mut(*slot) else {
            bail!("internal: more dictionaries in a batch than in its schema");
        };
        *slot += 1;
        if u.converter.is_none() {
            u.same(dict.values())?;
            return Ok(array.clone());
        }
        let mapping = u.map(dict.values())?;
        let keys = dict.keys();
        // Null keys stay null (take of a null index is null).
        let wide = take(&*mapping, keys, None)?;
        let DataType::Dictionary(key_type, _) = t else {
            bail!("internal: dictionary array of type {t}");
        };
        let narrow = cast_with_options(
            &wide,
            key_type,
            &CastOptions {
                safe: false,
                ..Default::default()
            },
        )
        .with_context(|| {
            format!(
                "column {}: its dictionaries hold {} distinct values across batches, \
                 more than {key_type} keys can index; cast it to wider keys or write \
                 an IPC stream (.arrows)",
                u.column,
                u.values.len()
            )
        })?;
        let k = narrow.to_data();
        let data = ArrayData::builder(t.clone())
            .len(k.len())
            .offset(k.offset())
            .nulls(k.nulls().cloned())
            .buffers(k.buffers().to_vec())
            .child_data(vec![u.values.to_data()])
            .build()?;
        Ok(make_array(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{DictionaryArray, ListArray, StringArray};
    use arrow::datatypes::{Int32Type, Int8Type, Schema};

    fn dict(keys: &[Option<i8>], values: &[&str]) -> ArrayRef {
        Arc::new(
            DictionaryArray::<Int8Type>::try_new(
                keys.iter().copied().collect(),
                Arc::new(StringArray::from(values.to_vec())),
            )
            .expect("dictionary"),
        )
    }

    fn strings(a: &ArrayRef) -> Vec<Option<String>> {
        let s = arrow::compute::cast(a, &DataType::Utf8).expect("cast");
        let s = s.as_any().downcast_ref::<StringArray>().expect("strings");
        s.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn replaced_dictionaries_become_one_growing_dictionary() {
        let t = DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8));
        let schema = Arc::new(Schema::new(vec![Field::new("c", t, true)]));
        let b1 = RecordBatch::try_new(
            schema.clone(),
            vec![dict(&[Some(0), Some(1), None], &["x", "y"])],
        )
        .expect("b1");
        let b2 = RecordBatch::try_new(schema.clone(), vec![dict(&[Some(1), Some(0)], &["z", "y"])])
            .expect("b2");
        let mut u = Unifier::new(&schema).expect("unifier");
        let o1 = u.unify(&b1).expect("o1");
        let o2 = u.unify(&b2).expect("o2");
        assert_eq!(strings(o1.column(0)), strings(b1.column(0)));
        assert_eq!(strings(o2.column(0)), strings(b2.column(0)));
        let d1 = o1.column(0).as_any_dictionary();
        let d2 = o2.column(0).as_any_dictionary();
        // Batch 2's dictionary extends batch 1's: a delta, not a replacement.
        assert_eq!(
            strings(d2.values()),
            [Some("x"), Some("y"), Some("z")].map(|s| s.map(String::from))
        );
        assert_eq!(
            d2.values().slice(0, d1.values().len()).to_data(),
            d1.values().to_data()
        );
    }

    #[test]
    fn nested_dictionaries_are_unified_and_overflow_names_the_column() {
        let inner = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let item = Arc::new(Field::new("item", inner, true));
        let schema = Arc::new(Schema::new(vec![Field::new(
            "tags",
            DataType::List(item.clone()),
            true,
        )]));
        let list = |values: &[&str]| -> ArrayRef {
            let d: DictionaryArray<Int32Type> = values.iter().copied().collect();
            let offsets = arrow::buffer::OffsetBuffer::from_lengths([values.len()]);
            Arc::new(ListArray::new(item.clone(), offsets, Arc::new(d), None))
        };
        let mut u = Unifier::new(&schema).expect("unifier");
        let b1 = RecordBatch::try_new(schema.clone(), vec![list(&["a", "b"])]).expect("b1");
        let b2 = RecordBatch::try_new(schema.clone(), vec![list(&["c", "a"])]).expect("b2");
        u.unify(&b1).expect("o1");
        let o2 = u.unify(&b2).expect("o2");
        let l = o2
            .column(0)
            .as_any()
            .downcast_ref::<ListArray>()
            .expect("list");
        assert_eq!(
            strings(l.values()),
            [Some("c"), Some("a")].map(|s| s.map(String::from))
        );
        let d = l.values().as_any_dictionary();
        assert_eq!(d.values().len(), 3);

        // 200 distinct values across batches do not fit Int8 keys.
        let t = DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8));
        let schema = Arc::new(Schema::new(vec![Field::new("small", t, true)]));
        let mut u = Unifier::new(&schema).expect("unifier");
        let mut err = None;
        for b in 0..2 {
            let names: Vec<String> = (0..100).map(|i| format!("v{b}_{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let keys: Vec<Option<i8>> = (0..100).map(Some).collect();
            let batch = RecordBatch::try_new(schema.clone(), vec![dict(&keys, &refs)]).expect("b");
            if let Err(e) = u.unify(&batch) {
                err = Some(format!("{e:#}"));
            }
        }
        let err = err.expect("overflow error");
        assert!(err.contains("column small"), "{err}");
    }
}
