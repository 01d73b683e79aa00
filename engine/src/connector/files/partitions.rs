//! Which files of a batch Spark reads together: its file scan packs files into input
//! partitions by size, and `spark_partition_id()` and the order rows reach a sink follow from
//! that packing (semantics appendix, §10).
//!
//! ```text
//!   maxSplitBytes = min(128 MB, max(4 MB, Σ(size + 4 MB) / parallelism))
//!   files by size, largest first; each goes into the current partition unless
//!   current + size > maxSplitBytes, which starts a new one; each file counts size + 4 MB
//! ```
//!
//! 4 MB is `spark.sql.files.openCostInBytes` (what opening a file is worth in bytes) and 128 MB
//! `spark.sql.files.maxPartitionBytes`. Small files therefore mostly get a partition each
//! until the 4 MB a file counts adds up past the even share per core. Spark also cuts a file
//! larger than `maxSplitBytes` into several splits; Brooklet keeps every file whole, in one
//! partition (said in the semantics appendix).

use std::path::Path;

use arrow::array::RecordBatch;

use crate::error::{Error, Result};
use crate::source::InputPartitions;

/// `spark.sql.files.maxPartitionBytes`'s default.
const MAX_PARTITION_BYTES: u64 = 128 * 1024 * 1024;
/// `spark.sql.files.openCostInBytes`'s default.
const OPEN_COST_BYTES: u64 = 4 * 1024 * 1024;

/// The files (by index into `sizes`) of each input partition, in partition order. Files of
/// equal size keep their order in `sizes`.
pub(crate) fn pack(sizes: &[u64], parallelism: usize) -> Vec<Vec<usize>> {
    let total: u64 = sizes.iter().map(|s| s + OPEN_COST_BYTES).sum();
    let per_core = total / parallelism.max(1) as u64;
    let max_split = MAX_PARTITION_BYTES.min(OPEN_COST_BYTES.max(per_core));
    let mut largest_first: Vec<usize> = (0..sizes.len()).collect();
    largest_first.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut partitions: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_size = 0;
    for i in largest_first {
        if current_size + sizes[i] > max_split && !current.is_empty() {
            partitions.push(std::mem::take(&mut current));
            current_size = 0;
        }
        current_size += sizes[i] + OPEN_COST_BYTES;
        current.push(i);
    }
    if !current.is_empty() {
        partitions.push(current);
    }
    partitions
}

/// Each file's decoded rows (`rows[i]` read from `paths[i]`) grouped into the partitions
/// [`pack`] makes of the files' sizes.
pub(crate) fn group(paths: &[&Path], mut rows: Vec<Vec<RecordBatch>>, parallelism: usize) -> Result<InputPartitions> {
    let sizes = paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).map_err(|e| Error::io(p, e)))
        .collect::<Result<Vec<u64>>>()?;
    let partitions = pack(&sizes, parallelism);
    Ok(partitions.iter().map(|p| p.iter().flat_map(|&i| std::mem::take(&mut rows[i])).collect()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_as_spark_does() {
        // Spark 4.3 on local[2]: files of 5 and 3 lines are a partition each, the larger first.
        assert_eq!(pack(&[81, 135], 2), [vec![1], vec![0]]);
        // Five small files: the 4 MB each counts fills the first partition after three.
        assert_eq!(pack(&[54, 162, 108, 27, 162], 2), [vec![1, 4, 2], vec![0, 3]]);
        // One core: two small files share its one partition.
        assert_eq!(pack(&[10, 20], 1), [vec![1, 0]]);
        assert!(pack(&[], 2).is_empty());
    }

    #[test]
    fn large_files_stay_whole_and_alone() {
        let mb = 1024 * 1024;
        assert_eq!(pack(&[300 * mb, mb, 200 * mb], 2), [vec![0], vec![2], vec![1]]);
    }
}
