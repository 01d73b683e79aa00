//! The registry's state: schemas by id, subjects' versions, compatibility modes, kept in one
//! JSON file that is rewritten (atomically, by rename) after every change, so a restarted
//! registry gives the same ids.
//!
//! A schema's identity is its JSON with whitespace and key order normalized: registering the
//! same schema again, under any subject, gives the same id. Errors carry Confluent's codes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use apache_avro::Schema;
use serde::{Deserialize, Serialize};

use super::compatibility::Mode;

/// A failed request: Confluent's error code (its first three digits are the HTTP status) and
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `40401`, `42201`, `409`, ...
    pub code: u32,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    fn new(code: u32, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }

    /// The HTTP status of the error.
    pub fn status(&self) -> u16 {
        let mut code = self.code;
        while code >= 1000 {
            code /= 10;
        }
        code as u16
    }

    fn subject_not_found(subject: &str) -> Self {
        ApiError::new(40401, format!("Subject '{subject}' not found."))
    }

    fn version_not_found(version: u32) -> Self {
        ApiError::new(40402, format!("Version {version} not found."))
    }
}

/// The result of a registry operation.
pub type ApiResult<T> = Result<T, ApiError>;

/// One version of a subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Version {
    version: u32,
    id: u32,
    deleted: bool,
}

/// What is persisted.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    schemas: BTreeMap<u32, String>,
    subjects: BTreeMap<String, Vec<Version>>,
    global: Mode,
    configs: BTreeMap<String, Mode>,
}

impl Default for State {
    fn default() -> Self {
        State { schemas: BTreeMap::new(), subjects: BTreeMap::new(), global: Mode::Backward, configs: BTreeMap::new() }
    }
}

/// A registered version as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registered {
    /// The subject.
    pub subject: String,
    /// The version within the subject, from 1.
    pub version: u32,
    /// The schema's id, the same in every subject.
    pub id: u32,
    /// The schema's normalized text.
    pub schema: String,
}

/// Which versions a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    /// The newest version that is not deleted.
    Latest,
    /// A version number.
    Number(u32),
}

impl std::str::FromStr for VersionRef {
    type Err = ApiError;

    fn from_str(s: &str) -> ApiResult<Self> {
        match s {
            "latest" | "-1" => Ok(VersionRef::Latest),
            n => n.parse::<u32>().ok().filter(|n| *n > 0).map(VersionRef::Number).ok_or_else(|| {
                ApiError::new(
                    42202,
                    format!(
                        "The specified version '{s}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
                    ),
                )
            }),
        }
    }
}

/// The registry's state and the file it lives in.
#[derive(Debug)]
pub struct Store {
    state: State,
    file: PathBuf,
}

/// A schema text checked and normalized: its identity.
fn normalize(text: &str) -> ApiResult<(String, Schema)> {
    let invalid = |e: &dyn std::fmt::Display| ApiError::new(42201, format!("Invalid schema {text}, details: {e}"));
    let schema = Schema::parse_str(text).map_err(|e| invalid(&e))?;
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| invalid(&e))?;
    Ok((json.to_string(), schema))
}

impl Store {
    /// The registry kept in `dir` (created if missing), as it was left.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = dir.join("registry.json");
        let state = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e.into()),
        };
        Ok(Store { state, file })
    }

    fn save(&self) -> ApiResult<()> {
        let failed = |e: &dyn std::fmt::Display| ApiError::new(50001, format!("Error in the backend data store: {e}"));
        let temporary = self.file.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&self.state).map_err(|e| failed(&e))?;
        std::fs::write(&temporary, text).map_err(|e| failed(&e))?;
        std::fs::rename(&temporary, &self.file).map_err(|e| failed(&e))
    }

    fn versions_of(&self, subject: &str) -> ApiResult<&Vec<Version>> {
        self.state
            .subjects
            .get(subject)
            .filter(|v| v.iter().any(|v| !v.deleted))
            .ok_or_else(|| ApiError::subject_not_found(subject))
    }

    fn parsed(&self, id: u32) -> Schema {
        Schema::parse_str(&self.state.schemas[&id]).expect("stored schemas parse")
    }

    /// The subject's mode, else the registry's.
    pub fn mode(&self, subject: Option<&str>) -> Mode {
        subject.and_then(|s| self.state.configs.get(s)).copied().unwrap_or(self.state.global)
    }

    /// Why `new` may not be registered under `subject` (against its latest version, or every
    /// version for a transitive mode), if it may not.
    fn violation(&self, subject: &str, new: &Schema) -> Option<String> {
        let mode = self.mode(Some(subject));
        let live: Vec<&Version> =
            self.state.subjects.get(subject).into_iter().flatten().filter(|v| !v.deleted).collect();
        let against: Vec<&Version> = if mode.transitive() { live } else { live.last().copied().into_iter().collect() };
        against
            .iter()
            .find_map(|v| mode.violation(&self.parsed(v.id), new).map(|why| format!("version {}: {why}", v.version)))
    }

    /// Registers `text` under `subject`: the id it already has there or anywhere, or a new one;
    /// refused (409) if the subject's mode does not allow it after its versions.
    pub fn register(&mut self, subject: &str, text: &str) -> ApiResult<u32> {
        let (normal, schema) = normalize(text)?;
        let existing = self.state.schemas.iter().find(|(_, s)| **s == normal).map(|(id, _)| *id);
        let versions = self.state.subjects.get(subject);
        if let Some(id) = existing
            && versions.is_some_and(|vs| vs.iter().any(|v| v.id == id && !v.deleted))
        {
            return Ok(id);
        }
        if let Some(why) = self.violation(subject, &schema) {
            return Err(ApiError::new(
                409,
                format!(
                    "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{why}]"
                ),
            ));
        }
        let id = existing.unwrap_or_else(|| self.state.schemas.keys().last().map_or(1, |last| last + 1));
        self.state.schemas.insert(id, normal);
        let versions = self.state.subjects.entry(subject.to_string()).or_default();
        let version = versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        versions.push(Version { version, id, deleted: false });
        self.save()?;
        Ok(id)
    }

    /// The schema with this id.
    pub fn schema(&self, id: u32) -> ApiResult<&str> {
        self.state
            .schemas
            .get(&id)
            .map(String::as_str)
            .ok_or_else(|| ApiError::new(40403, format!("Schema {id} not found")))
    }

    /// The subjects with a live version (and, with `deleted`, the soft-deleted ones).
    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        self.state
            .subjects
            .iter()
            .filter(|(_, vs)| vs.iter().any(|v| deleted || !v.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// The subject's version numbers (and, with `deleted`, the soft-deleted ones).
    pub fn versions(&self, subject: &str, deleted: bool) -> ApiResult<Vec<u32>> {
        let versions = if deleted {
            self.state
                .subjects
                .get(subject)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ApiError::subject_not_found(subject))?
        } else {
            self.versions_of(subject)?
        };
        Ok(versions.iter().filter(|v| deleted || !v.deleted).map(|v| v.version).collect())
    }

    fn find(&self, subject: &str, version: VersionRef) -> ApiResult<&Version> {
        let versions = self.versions_of(subject)?;
        match version {
            VersionRef::Latest => Ok(versions.iter().rev().find(|v| !v.deleted).expect("a live version")),
            VersionRef::Number(n) => {
                versions.iter().find(|v| v.version == n && !v.deleted).ok_or_else(|| ApiError::version_not_found(n))
            }
        }
    }

    fn registered(&self, subject: &str, v: &Version) -> Registered {
        Registered {
            subject: subject.to_string(),
            version: v.version,
            id: v.id,
            schema: self.state.schemas[&v.id].clone(),
        }
    }

    /// One version of a subject.
    pub fn version(&self, subject: &str, version: VersionRef) -> ApiResult<Registered> {
        Ok(self.registered(subject, self.find(subject, version)?))
    }

    /// The version of `subject` that holds `text`.
    pub fn lookup(&self, subject: &str, text: &str) -> ApiResult<Registered> {
        let (normal, _) = normalize(text)?;
        let versions = self.versions_of(subject)?;
        versions
            .iter()
            .find(|v| !v.deleted && self.state.schemas[&v.id] == normal)
            .map(|v| self.registered(subject, v))
            .ok_or_else(|| ApiError::new(40403, "Schema not found"))
    }

    /// Deletes a subject's versions: soft (they stop being served, and can be deleted for good)
    /// or, once soft-deleted, permanent. The version numbers deleted.
    pub fn delete_subject(&mut self, subject: &str, permanent: bool) -> ApiResult<Vec<u32>> {
        let versions = self
            .state
            .subjects
            .get_mut(subject)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let live = versions.iter().any(|v| !v.deleted);
        let deleted: Vec<u32> = versions.iter().map(|v| v.version).collect();
        match (permanent, live) {
            (false, false) => {
                return Err(ApiError::new(
                    40404,
                    format!("Subject '{subject}' was soft deleted.Set permanent=true to delete permanently"),
                ));
            }
            (true, true) => {
                return Err(ApiError::new(
                    40405,
                    format!("Subject '{subject}' was not deleted first before being permanently deleted"),
                ));
            }
            (false, true) => versions.iter_mut().for_each(|v| v.deleted = true),
            (true, false) => {
                self.state.subjects.remove(subject);
                self.state.configs.remove(subject);
            }
        }
        self.save()?;
        Ok(deleted)
    }

    /// Deletes one version, soft or (once soft-deleted) permanent.
    pub fn delete_version(&mut self, subject: &str, version: VersionRef, permanent: bool) -> ApiResult<u32> {
        let number = match version {
            VersionRef::Number(n) => n,
            VersionRef::Latest => self.find(subject, version)?.version,
        };
        let versions = self
            .state
            .subjects
            .get_mut(subject)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let at =
            versions.iter().position(|v| v.version == number).ok_or_else(|| ApiError::version_not_found(number))?;
        match (permanent, versions[at].deleted) {
            (false, true) => {
                return Err(ApiError::new(
                    40406,
                    format!(
                        "Subject '{subject}' Version {number} was soft deleted.Set permanent=true to delete permanently"
                    ),
                ));
            }
            (true, false) => {
                return Err(ApiError::new(
                    40407,
                    format!(
                        "Subject '{subject}' Version {number} was not deleted first before being permanently deleted"
                    ),
                ));
            }
            (false, false) => versions[at].deleted = true,
            (true, true) => {
                versions.remove(at);
            }
        }
        self.save()?;
        Ok(number)
    }

    /// Whether `text` could follow the named version (or, with `None`, the versions the mode
    /// checks), and why not.
    pub fn test_compatibility(
        &self,
        subject: &str,
        version: Option<VersionRef>,
        text: &str,
    ) -> ApiResult<(bool, Vec<String>)> {
        let (_, schema) = normalize(text)?;
        let why = match version {
            None => {
                self.versions_of(subject)?;
                self.violation(subject, &schema)
            }
            Some(version) => {
                let old = self.find(subject, version)?;
                self.mode(Some(subject)).violation(&self.parsed(old.id), &schema)
            }
        };
        Ok((why.is_none(), why.into_iter().collect()))
    }

    /// Sets the registry's mode (`None`) or a subject's.
    pub fn set_mode(&mut self, subject: Option<&str>, mode: Mode) -> ApiResult<()> {
        match subject {
            None => self.state.global = mode,
            Some(s) => {
                self.state.configs.insert(s.to_string(), mode);
            }
        }
        self.save()
    }

    /// A subject's own mode, if it has one.
    pub fn subject_mode(&self, subject: &str) -> ApiResult<Mode> {
        self.state.configs.get(subject).copied().ok_or_else(|| {
            ApiError::new(40408, format!("Subject '{subject}' does not have subject-level compatibility configured"))
        })
    }

    /// Removes a subject's own mode; the mode it had.
    pub fn delete_mode(&mut self, subject: &str) -> ApiResult<Mode> {
        let mode = self.subject_mode(subject)?;
        self.state.configs.remove(subject);
        self.save()?;
        Ok(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"E","fields":[{"name":"id","type":"string"}]}"#;
    const V2: &str = r#"{"type": "record", "name": "E", "fields": [{"name": "id", "type": "string"}, {"name": "n", "type": "int", "default": 0}]}"#;

    #[test]
    fn the_same_schema_gets_the_same_id_and_a_restart_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.register("a-value", V1).unwrap(), 1);
        let spaced = V1.replace(',', ", ");
        assert_eq!(store.register("a-value", &spaced).unwrap(), 1, "whitespace does not make a new schema");
        assert_eq!(store.register("b-value", V1).unwrap(), 1, "another subject, the same id");
        assert_eq!(store.register("a-value", V2).unwrap(), 2);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.version("a-value", VersionRef::Latest).unwrap().version, 2);
        assert_eq!(store.versions("b-value", false).unwrap(), [1]);
        assert_eq!(store.schema(3).unwrap_err().code, 40403);
    }

    #[test]
    fn deletes_are_soft_first_then_permanent() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.register("s", V1).unwrap();
        assert_eq!(store.delete_subject("s", true).unwrap_err().code, 40405);
        assert_eq!(store.delete_subject("s", false).unwrap(), [1]);
        assert_eq!(store.versions("s", false).unwrap_err().code, 40401);
        assert_eq!(store.subjects(true), ["s"]);
        assert_eq!(store.delete_subject("s", false).unwrap_err().code, 40404);
        assert_eq!(store.delete_subject("s", true).unwrap(), [1]);
        assert!(store.subjects(true).is_empty());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(store.schema(1).unwrap()).unwrap(),
            serde_json::from_str::<serde_json::Value>(V1).unwrap(),
            "an id stays resolvable, so old messages still decode"
        );
    }

    #[test]
    fn an_incompatible_schema_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.register("s", V1).unwrap();
        let no_default =
            r#"{"type":"record","name":"E","fields":[{"name":"id","type":"string"},{"name":"n","type":"int"}]}"#;
        let refused = store.register("s", no_default).unwrap_err();
        assert_eq!((refused.code, refused.status()), (409, 409));
        assert!(
            refused.message.contains("incompatible with an earlier schema for subject \"s\""),
            "{}",
            refused.message
        );
        store.set_mode(Some("s"), Mode::Forward).unwrap();
        assert_eq!(store.register("s", no_default).unwrap(), 2);
        assert_eq!(store.register("s", "{\"type\": \"nope\"}").unwrap_err().code, 42201);
    }
}
