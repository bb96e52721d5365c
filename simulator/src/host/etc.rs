//! RAM `/etc`: the image's files with this host's changes on top, and the `.#` marker rule.
//!
//! Facts section 1: a file is saved iff a sibling `.#<name>` exists. The RAM file system creates that
//! marker (holding the pristine copy) the first time a *sticky* file is modified; files created by
//! hand are not sticky and get no marker, so they are lost at reboot. Markers are ordinary files
//! here, so a test can delete or forge one exactly as `rm /etc/.#hosts` would on a real host.
//!
//! Memory: the image is shared (`Arc<Image>`); a host owns only its overlay, and file contents are
//! `Arc<[u8]>`, so a pristine copy or a restored file shares bytes with the image or the bundle.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::image::Image;

/// File contents, shared wherever they are equal by construction.
pub type Bytes = Arc<[u8]>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub data: Bytes,
    pub mode: u32,
    /// Seconds since the epoch (virtual).
    pub mtime: u64,
    /// The sticky bit of facts section 1: set on image files that persist, and on files the boot
    /// restored from state.tgz (they came from sticky files).
    pub sticky: bool,
}

/// A path that is not a plain relative path under `etc/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError(pub String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl std::error::Error for PathError {}

/// Normalises `/etc/hosts` or `etc/hosts` to `etc/hosts`; rejects anything outside `/etc`,
/// `..`, empty components and directories.
pub fn normalize(path: &str) -> Result<String, PathError> {
    let p = path.strip_prefix('/').unwrap_or(path);
    let bad = |why: &str| Err(PathError(format!("{path:?}: {why}")));
    if !p.starts_with("etc/") {
        return bad("only files under /etc are modelled");
    }
    if p.len() > 1024 {
        return bad("path longer than 1024 bytes");
    }
    for c in p.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return bad("empty, '.' or '..' path component");
        }
        if c.bytes().any(|b| b == 0 || b.is_ascii_control()) {
            return bad("control character in path");
        }
    }
    Ok(p.to_string())
}

/// `etc/vmware/esx.conf` → `etc/vmware/.#esx.conf`.
pub fn marker_of(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => format!("{}/.#{}", &path[..i], &path[i + 1..]),
        None => format!(".#{path}"),
    }
}

/// `etc/vmware/.#esx.conf` → `Some("etc/vmware/esx.conf")`.
pub fn marked_by(marker: &str) -> Option<String> {
    let (dir, base) = match marker.rfind('/') {
        Some(i) => (&marker[..=i], &marker[i + 1..]),
        None => ("", marker),
    };
    let name = base.strip_prefix(".#")?;
    if name.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(dir.len() + name.len());
    out.push_str(dir);
    out.push_str(name);
    Some(out)
}

/// Whether a path is a marker (`.#name`), without building the name it marks.
fn is_marker(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.len() > 2 && base.starts_with(".#")
}

#[derive(Clone, Debug)]
pub struct EtcFs {
    image: Arc<Image>,
    /// `None` is a whiteout: an image file this host deleted.
    overlay: BTreeMap<String, Option<Node>>,
    /// Bumped on every change; lets auto-backup skip the diff when nothing was touched.
    generation: u64,
}

impl PartialEq for EtcFs {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.image, &other.image) && self.overlay == other.overlay
    }
}

impl EtcFs {
    /// The image as it boots with no saved state.
    pub fn pristine(image: Arc<Image>) -> Self {
        EtcFs {
            image,
            overlay: BTreeMap::new(),
            generation: 0,
        }
    }

    /// The image with a saved state overlaid, as the boot loader mounts state.tgz last (facts
    /// section 1). Restored files are sticky and get their marker, whose pristine copy is the
    /// image's version (empty for files the image lacks), so they keep being saved.
    pub fn booted(image: Arc<Image>, saved: &BTreeMap<String, Node>) -> Self {
        let mut fs = EtcFs::pristine(image);
        for (path, node) in saved {
            let pristine = fs.image.files.get(path).cloned().unwrap_or(Node {
                data: Arc::from(&b""[..]),
                mode: node.mode,
                mtime: node.mtime,
                sticky: true,
            });
            fs.overlay.insert(marker_of(path), Some(pristine));
            let mut n = node.clone();
            n.sticky = true;
            fs.overlay.insert(path.clone(), Some(n));
        }
        fs
    }

    pub fn image(&self) -> &Arc<Image> {
        &self.image
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        match self.overlay.get(path) {
            Some(o) => o.as_ref(),
            None => self.image.files.get(path),
        }
    }

    pub fn read(&self, path: &str) -> Option<&Bytes> {
        self.get(path).map(|n| &n.data)
    }

    pub fn exists(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// Writes a file (creating it if needed), applying the marker rule. `path` must be normalised.
    pub fn write(&mut self, path: &str, data: Bytes, now_secs: u64) {
        let existing = self.get(path).cloned();
        let (mode, sticky) = match &existing {
            Some(n) => (n.mode, n.sticky),
            None => (0o644, false),
        };
        if let Some(old) = existing.filter(|n| n.sticky) {
            let marker = marker_of(path);
            if !self.exists(&marker) {
                let pristine = Node {
                    sticky: false,
                    ..old
                };
                self.overlay.insert(marker, Some(pristine));
            }
        }
        self.put(
            path,
            Node {
                data,
                mode,
                mtime: now_secs,
                sticky,
            },
        );
    }

    /// Sets a file's mode bits (chmod); the content and marker are untouched.
    pub fn chmod(&mut self, path: &str, mode: u32) -> bool {
        match self.get(path).cloned() {
            Some(mut n) => {
                n.mode = mode & 0o7777;
                self.put(path, n);
                true
            }
            None => false,
        }
    }

    fn put(&mut self, path: &str, node: Node) {
        if self.image.files.get(path) == Some(&node) {
            self.overlay.remove(path);
        } else {
            self.overlay.insert(path.to_string(), Some(node));
        }
        self.generation += 1;
    }

    /// Removes a file; returns whether it existed. The marker (if any) stays, as with `rm`.
    pub fn delete(&mut self, path: &str) -> bool {
        if !self.exists(path) {
            return false;
        }
        if self.image.files.contains_key(path) {
            self.overlay.insert(path.to_string(), None);
        } else {
            self.overlay.remove(path);
        }
        self.generation += 1;
        true
    }

    /// Every file path that exists, sorted.
    pub fn list(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .image
            .files
            .keys()
            .filter(|k| !self.overlay.contains_key(*k))
            .cloned()
            .collect();
        out.extend(
            self.overlay
                .iter()
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| k.clone()),
        );
        out.sort();
        out
    }

    /// What backup.sh would save: for each `.#name` marker, `name` if it exists (facts section 1:
    /// `find etc -follow -type f -name '.#*'`, strip, keep if the original exists). Sorted.
    /// The image ships no markers, so only the overlay is scanned.
    pub fn files_to_save(&self) -> Vec<(String, &Node)> {
        let mut out: Vec<(String, &Node)> = self
            .overlay
            .iter()
            .filter(|(k, v)| v.is_some() && is_marker(k))
            .filter_map(|(k, _)| marked_by(k))
            .filter_map(|name| self.get(&name).map(|n| (name, n)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every `name` that has a `.#name` marker, whether or not `name` still exists: the list
    /// auto-backup.sh diffs (`diff -N` treats a missing file as empty).
    pub fn marked_names(&self) -> impl Iterator<Item = String> + '_ {
        self.overlay
            .iter()
            .filter(|(k, v)| v.is_some() && is_marker(k))
            .filter_map(|(k, _)| marked_by(k))
    }

    /// Paths of existing files that have no marker and are not markers: what a reboot loses even
    /// after a save. Useful for reports.
    pub fn unsaved_paths(&self) -> Vec<String> {
        self.overlay
            .iter()
            .filter(|(k, v)| v.is_some() && marked_by(k).is_none())
            .filter(|(k, _)| !self.exists(&marker_of(k)))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Bytes this host owns beyond the shared image (keys, nodes, and contents not shared).
    pub fn owned_bytes(&self) -> usize {
        self.overlay
            .iter()
            .map(|(k, v)| {
                k.capacity()
                    + std::mem::size_of::<Option<Node>>()
                    + 48 // BTreeMap node overhead per entry, roughly
                    + v.as_ref().map_or(0, |n| {
                        if self.image.shares(&n.data) {
                            0
                        } else {
                            n.data.len()
                        }
                    })
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    fn fs() -> EtcFs {
        EtcFs::pristine(Image::for_profile(&Profile::default_profile()))
    }
    fn b(s: &str) -> Bytes {
        Arc::from(s.as_bytes())
    }

    #[test]
    fn paths_are_normalised_and_checked() {
        assert_eq!(normalize("/etc/hosts").unwrap(), "etc/hosts");
        assert_eq!(
            normalize("etc/vmware/esx.conf").unwrap(),
            "etc/vmware/esx.conf"
        );
        for bad in [
            "/var/log/x",
            "etc/../x",
            "etc//x",
            "etc/",
            "etc/./x",
            "/etc/a\nb",
            "",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(marker_of("etc/hosts"), "etc/.#hosts");
        assert_eq!(marked_by("etc/.#hosts").as_deref(), Some("etc/hosts"));
        assert_eq!(marked_by("etc/hosts"), None);
        assert_eq!(marked_by("etc/.#"), None);
    }

    #[test]
    fn modifying_a_sticky_file_creates_its_marker_with_the_pristine_copy() {
        let mut fs = fs();
        let pristine = fs.read("etc/hosts").unwrap().clone();
        assert!(
            fs.files_to_save().is_empty(),
            "a pristine image saves nothing"
        );
        fs.write("etc/hosts", b("changed\n"), 1);
        assert_eq!(fs.read("etc/.#hosts").unwrap(), &pristine);
        fs.write("etc/hosts", b("changed again\n"), 2);
        assert_eq!(
            fs.read("etc/.#hosts").unwrap(),
            &pristine,
            "marker keeps the first copy"
        );
        let saved: Vec<String> = fs.files_to_save().into_iter().map(|(p, _)| p).collect();
        assert_eq!(saved, ["etc/hosts"]);
    }

    #[test]
    fn new_files_and_non_sticky_files_get_no_marker() {
        let mut fs = fs();
        fs.write("etc/my-notes.txt", b("x"), 1);
        fs.write("etc/profile", b("export PS1=x"), 1);
        assert!(!fs.exists("etc/.#my-notes.txt"));
        assert!(!fs.exists("etc/.#profile"));
        assert!(fs.files_to_save().is_empty());
        assert_eq!(fs.unsaved_paths(), ["etc/my-notes.txt", "etc/profile"]);
    }

    #[test]
    fn deleting_a_marked_file_drops_it_from_the_save_but_a_forged_marker_saves() {
        let mut fs = fs();
        fs.write("etc/hosts", b("h"), 1);
        assert!(fs.delete("etc/hosts"));
        assert!(!fs.exists("etc/hosts"));
        assert!(
            fs.files_to_save().is_empty(),
            "marker without original is skipped"
        );
        fs.write("etc/handmade", b("x"), 1);
        fs.write("etc/.#handmade", b(""), 1);
        assert_eq!(
            fs.files_to_save().len(),
            1,
            "the rule is the marker, not how it came"
        );
        assert!(!fs.delete("etc/nope"));
    }

    #[test]
    fn writing_back_the_image_content_keeps_the_overlay_small() {
        let mut fs = fs();
        let orig = fs.read("etc/profile").unwrap().clone();
        let node = fs.get("etc/profile").unwrap().clone();
        fs.write("etc/profile", b("x"), node.mtime);
        fs.write("etc/profile", orig, node.mtime);
        assert_eq!(fs.owned_bytes(), 0);
    }
}
