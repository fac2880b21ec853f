//! The import's checkpoint file: which import it is (file, size, table,
//! key), the seed of its rows' ids, and how far it got — every row before
//! `next_row` is written or rejected. Saved after every bulk call by
//! writing a temporary file and renaming it over the old one, so a kill at
//! any moment leaves either the old checkpoint or the new one.

use serde::{Deserialize, Serialize};

use crate::Failure;

/// Bumped when the file's meaning changes: an older one is refused.
const FORMAT: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: u32,
    /// What is being imported: a checkpoint of another import is refused.
    pub file: String,
    pub file_bytes: u64,
    pub table: String,
    pub upsert_key: Vec<String>,
    /// The seed of the rows' ids (hex), fixed for the import's lifetime.
    pub seed: String,
    /// Every row before it is written or rejected.
    pub next_row: u64,
    /// Rows created (CreateMultiple).
    pub created: u64,
    /// Rows upserted (UpsertMultiple: with --upsert-key, and the batches a
    /// resumed import sends again, which it cannot tell created from updated).
    pub upserted: u64,
    /// Rows rejected (in the rejects file).
    pub failed: u64,
    /// Every row was read; a finished import is never run again by accident.
    pub done: bool,
}

impl Checkpoint {
    pub fn new(file: &str, file_bytes: u64, table: &str, upsert_key: &[String], seed: u64) -> Self {
        Checkpoint {
            format: FORMAT,
            file: file.to_string(),
            file_bytes,
            table: table.to_string(),
            upsert_key: upsert_key.to_vec(),
            seed: format!("{seed:016x}"),
            ..Checkpoint::default()
        }
    }

    pub fn seed(&self) -> u64 {
        u64::from_str_radix(&self.seed, 16).unwrap_or(0)
    }

    /// The checkpoint at `path`, if there is one; one that cannot be read
    /// or belongs to another import is an error (never silently ignored:
    /// starting over could write every row twice).
    pub fn load(path: &str, expected: &Checkpoint) -> Result<Option<Checkpoint>, Failure> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Failure::usage(format!(
                    "the checkpoint {path} cannot be read: {e}"
                )));
            }
        };
        let found: Checkpoint = serde_json::from_str(&text)
            .ok()
            .filter(|c: &Checkpoint| c.format == FORMAT && u64::from_str_radix(&c.seed, 16).is_ok())
            .ok_or_else(|| {
                Failure::usage(format!(
                    "the checkpoint {path} is not one this version wrote; delete it to start over"
                ))
            })?;
        let same = found.file == expected.file
            && found.file_bytes == expected.file_bytes
            && found.table == expected.table
            && found.upsert_key == expected.upsert_key;
        if !same {
            return Err(Failure::usage(format!(
                "the checkpoint {path} is of another import ({} into {}, {} bytes{}); \
                 delete it or pass --checkpoint to start this one",
                found.file,
                found.table,
                found.file_bytes,
                if found.upsert_key.is_empty() {
                    String::new()
                } else {
                    format!(", key {}", found.upsert_key.join(","))
                }
            )));
        }
        Ok(Some(found))
    }

    pub fn save(&self, path: &str) -> Result<(), Failure> {
        let temporary = format!("{path}.tmp");
        let text = serde_json::to_string_pretty(self).expect("a checkpoint is JSON");
        std::fs::write(&temporary, text + "\n")
            .and_then(|()| std::fs::rename(&temporary, path))
            .map_err(|e| Failure::host(format!("the checkpoint {path} cannot be written: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("checkpoint-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_saved_checkpoint_is_loaded_only_for_the_same_import() {
        let dir = dir("same");
        let path = dir.join("c.json").to_string_lossy().into_owned();
        let expected = Checkpoint::new("rows.ndjson", 120, "accounts", &[], 0xfeed);
        assert_eq!(Checkpoint::load(&path, &expected).unwrap(), None);
        let mut progress = expected.clone();
        progress.next_row = 300;
        progress.created = 290;
        progress.failed = 10;
        progress.save(&path).unwrap();
        assert!(!std::path::Path::new(&format!("{path}.tmp")).exists());
        let loaded = Checkpoint::load(&path, &expected).unwrap().unwrap();
        assert_eq!(loaded, progress);
        assert_eq!(loaded.seed(), 0xfeed);
        for other in [
            Checkpoint::new("other.ndjson", 120, "accounts", &[], 1),
            Checkpoint::new("rows.ndjson", 121, "accounts", &[], 1),
            Checkpoint::new("rows.ndjson", 120, "contacts", &[], 1),
            Checkpoint::new("rows.ndjson", 120, "accounts", &["accountnumber".into()], 1),
        ] {
            let err = Checkpoint::load(&path, &other).unwrap_err();
            assert!(
                err.message.contains("is of another import"),
                "{}",
                err.message
            );
        }
        std::fs::write(&path, "{\"format\": 99}").unwrap();
        let err = Checkpoint::load(&path, &expected).unwrap_err();
        assert!(
            err.message.contains("delete it to start over"),
            "{}",
            err.message
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
