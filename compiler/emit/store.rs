//! The content store every host file is a hard link into.
//!
//! Each (content, mode) pair the hosts use is one file,
//! `.store/<sha256>.<mode>`, hard-linked into every tree that has it: hard
//! links share their inode, so the mode is part of the name. A host file
//! holds the right content exactly when its inode is its store file's, which
//! is how a rebuild checks a host tree without reading it. When a store file
//! reaches the file system's link limit (65,000 on ext4), new links go to a
//! further copy, `.store/<sha256>.<mode>.1`, and so on.
//!
//! A rebuild keeps every store file whose state record still matches it,
//! writes the pairs that are new, and removes those no host uses any more.

use std::collections::{HashMap, HashSet};
use std::fs::{self, DirEntry};
use std::io::ErrorKind;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use rayon::prelude::*;

use super::stage::{Delta, Op, Stage};
use super::state::Record;
use super::tree::write_file;
use super::EmitError;
use crate::plan::{BlobId, BuildPlan, EntryKind};

/// The build's store directory.
pub const DIR: &str = ".store";

/// Every (content, mode) pair of the build's hosts: the plan's contents,
/// and the apply engine every tree carries.
pub struct Store<'a> {
    items: Vec<Item<'a>>,
    by_blob: HashMap<(BlobId, u32), usize>,
    engine: usize,
}

/// One (content, mode) pair.
pub struct Item<'a> {
    bytes: &'a [u8],
    /// The content's SHA-256, hex.
    sha: String,
    mode: u32,
    /// `<sha256>.<mode>`.
    name: String,
    /// Inodes of the copies kept from the previous build: a host file with
    /// one of them is this pair.
    kept: Vec<u64>,
    /// True when every copy of the previous build is kept, so host files
    /// that were this pair still are.
    intact: bool,
    /// Copies new links go to (kept ones in the build, new ones in
    /// staging); the last one takes new links.
    sources: RwLock<Sources>,
}

struct Sources {
    paths: Vec<PathBuf>,
    /// The number the next new copy gets.
    next: u32,
}

impl Item<'_> {
    /// True when a file with inode `ino` is this pair as kept.
    pub fn holds(&self, ino: u64) -> bool {
        self.kept.contains(&ino)
    }

    /// True when the previous build's copies are all kept.
    pub fn intact(&self) -> bool {
        self.intact
    }

    /// True when this is the pair of the content with SHA-256 `sha` (hex)
    /// and `mode`.
    pub fn is(&self, sha: &str, mode: u32) -> bool {
        self.mode == mode && self.sha == sha
    }
}

/// A store copy's name split up: `<sha256>.<mode>[.<copy>]` gives
/// (`<sha256>.<mode>`, copy).
fn parse_name(name: &str) -> Option<(&str, u32)> {
    let base_len = 64 + 1 + 4;
    let base = name.get(..base_len)?;
    let copy = match name.get(base_len..)? {
        "" => 0,
        rest => rest.strip_prefix('.')?.parse().ok().filter(|n| *n > 0)?,
    };
    Some((base, copy))
}

fn copy_name(name: &str, copy: u32) -> String {
    if copy == 0 {
        name.to_string()
    } else {
        format!("{name}.{copy}")
    }
}

/// A pair to store: content, its hash, mode, and the plan's blob if it is
/// one.
type Pair<'a> = (&'a [u8], String, u32, Option<BlobId>);

/// A store copy found in the previous build.
struct Found {
    copy: u32,
    ino: u64,
}

impl<'a> Store<'a> {
    /// Decides, for every pair the plan's hosts use (and the apply engine,
    /// `engine`), which store copies to keep and which to write; writes the
    /// new ones into staging. Copies no host uses any more, or that changed
    /// behind accord's back, are set aside in `delta`.
    pub fn prepare(
        plan: &'a BuildPlan,
        engine: &'a [u8],
        stage: &Stage,
        delta: &mut Delta,
    ) -> Result<Store<'a>, EmitError> {
        // Pair name -> (content, its hash, mode, the plan's blob if any).
        let mut pairs = HashSet::new();
        for host in &plan.hosts {
            for entry in &host.entries {
                if let EntryKind::File(blob) = entry.kind {
                    pairs.insert((blob, entry.mode));
                }
            }
        }
        let mut names: HashMap<String, Pair> = pairs
            .into_iter()
            .map(|(blob, mode)| {
                let sha = plan.blobs.hash_hex(blob);
                let name = format!("{sha}.{mode:04o}");
                (name, (plan.blobs.get(blob), sha, mode, Some(blob)))
            })
            .collect();
        let engine_sha = super::stage::sha_hex(engine);
        let engine_name = format!("{engine_sha}.0644");
        names
            .entry(engine_name.clone())
            .or_insert((engine, engine_sha, 0o644, None));
        let (mut kept, tainted) = if stage.is_fresh() {
            Default::default()
        } else {
            keep_copies(stage, &names, delta)?
        };
        let mut items = Vec::with_capacity(names.len());
        let mut by_blob = HashMap::with_capacity(names.len());
        let mut engine_item = 0;
        let mut to_write = Vec::new();
        let mut names: Vec<_> = names.into_iter().collect();
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (name, (bytes, sha, mode, blob)) in names {
            let mut copies = kept.remove(&name).unwrap_or_default();
            copies.sort_unstable_by_key(|f| f.copy);
            let paths: Vec<PathBuf> = copies
                .iter()
                .map(|f| stage.target().join(DIR).join(copy_name(&name, f.copy)))
                .collect();
            let next = copies.last().map_or(0, |f| f.copy + 1);
            if paths.is_empty() {
                to_write.push(items.len());
            }
            match blob {
                Some(blob) => {
                    by_blob.insert((blob, mode), items.len());
                }
                None => engine_item = items.len(),
            }
            let item = Item {
                bytes,
                sha,
                mode,
                intact: !copies.is_empty() && !tainted.contains(&name),
                kept: copies.iter().map(|f| f.ino).collect(),
                sources: RwLock::new(Sources { paths, next }),
                name,
            };
            items.push(item);
        }
        super::stage::ensure_dir(&stage.staging().join(DIR))?;
        let store = Store {
            items,
            by_blob,
            engine: engine_item,
        };
        let written: Vec<Delta> = to_write
            .par_iter()
            .map(|&i| {
                let mut part = Delta::default();
                store.new_copy(&store.items[i], stage, &mut part)?;
                stage.checkpoint()?;
                Ok(part)
            })
            .collect::<Result<_, EmitError>>()?;
        written.into_iter().for_each(|part| delta.absorb(part));
        Ok(store)
    }

    /// The pair a host file needs.
    pub fn item(&self, blob: BlobId, mode: u32) -> &Item<'a> {
        &self.items[self.by_blob[&(blob, mode)]]
    }

    /// The apply engine, which every tree carries.
    pub fn engine(&self) -> &Item<'a> {
        &self.items[self.engine]
    }

    /// Writes the next copy of `item` into staging and makes it the one
    /// new links go to.
    fn new_copy(&self, item: &Item, stage: &Stage, delta: &mut Delta) -> Result<(), EmitError> {
        let mut sources = item.sources.write().unwrap_or_else(|p| p.into_inner());
        let file = copy_name(&item.name, sources.next);
        let path = stage.staging().join(DIR).join(&file);
        let meta = write_file(&path, item.bytes, item.mode, stage)?;
        let rel = format!("{DIR}/{file}");
        if !stage.is_fresh() {
            delta.ops.push(Op::Place(rel.clone()));
        }
        delta.written += 1;
        delta.census(super::stat::disk(&meta));
        delta
            .records
            .push((rel, Record::of(&meta, item.sha.clone())));
        sources.next += 1;
        sources.paths.push(path);
        Ok(())
    }

    /// Hard-links `item` to `dest`, starting a new copy when the current
    /// one is at the file system's link limit. On a file system without
    /// hard links, `dest` gets a copy of its own (rewritten by every
    /// rebuild, since its inode is no store copy's).
    pub fn link(
        &self,
        item: &Item,
        dest: &Path,
        stage: &Stage,
        delta: &mut Delta,
    ) -> Result<(), EmitError> {
        loop {
            let (source, count) = {
                let sources = item.sources.read().unwrap_or_else(|p| p.into_inner());
                (sources.paths.last().cloned(), sources.paths.len())
            };
            let Some(source) = source else {
                // Unreachable: prepare gives every item a copy.
                return Err(EmitError::io("link", dest)(ErrorKind::NotFound.into()));
            };
            match fs::hard_link(&source, dest) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::TooManyLinks => {
                    let full = item.sources.read().map_or(count, |s| s.paths.len()) == count;
                    if full {
                        self.new_copy(item, stage, delta)?;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::CrossesDevices
                            | ErrorKind::PermissionDenied
                            | ErrorKind::Unsupported
                    ) =>
                {
                    write_file(dest, item.bytes, item.mode, stage)?;
                    return Ok(());
                }
                Err(e) => return Err(EmitError::io("hard-link", dest)(e)),
            }
        }
    }
}

/// Copies kept by pair name, and the pairs some copy of which was not.
type Kept = (HashMap<String, Vec<Found>>, HashSet<String>);

/// The previous build's store copies that still hold what their record
/// says, by pair name, and the pairs some copy of which does not; every
/// copy not kept is set aside.
fn keep_copies<T>(
    stage: &Stage,
    names: &HashMap<String, T>,
    delta: &mut Delta,
) -> Result<Kept, EmitError> {
    let dir = stage.target().join(DIR);
    let entries: Vec<DirEntry> = fs::read_dir(&dir)
        .and_then(|d| d.collect::<Result<_, _>>())
        .map_err(EmitError::io("read", &dir))?;
    let mut kept: HashMap<String, Vec<Found>> = HashMap::new();
    let mut tainted = HashSet::new();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("{DIR}/{name}");
        let pair = parse_name(&name).filter(|(base, _)| names.contains_key(*base));
        let keep = match pair {
            Some((base, _)) => {
                let sum = &base[..64];
                entry.file_type().is_ok_and(|t| t.is_file()) && stage.keeps(&rel, sum, delta)
            }
            None => false,
        };
        match pair {
            Some((base, copy)) if keep => kept.entry(base.to_string()).or_default().push(Found {
                copy,
                ino: entry.ino(),
            }),
            _ => {
                if let Some((base, _)) = pair {
                    tainted.insert(base.to_string());
                }
                delta.ops.push(Op::Trash(entry.ino(), rel));
            }
        }
    }
    Ok((kept, tainted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_split_into_pair_and_copy() {
        let sha = "a".repeat(64);
        let base = format!("{sha}.0644");
        assert_eq!(parse_name(&base), Some((base.as_str(), 0)));
        assert_eq!(parse_name(&format!("{base}.3")), Some((base.as_str(), 3)));
        assert_eq!(parse_name(&format!("{base}.0")), None);
        assert_eq!(parse_name(&format!("{base}x")), None);
        assert_eq!(parse_name("short"), None);
    }
}
