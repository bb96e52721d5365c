//! The boot banks: `/bootbank` (what the host boots) and `/altbootbank` (the previous image).
//!
//! A bank holds `boot.cfg`, `state.tgz` (real gzip tar bytes), `useropts.gz`, `jumpstrt.gz`, and
//! write counters (count and bytes: flash wear, the reason the persistence window exists — seed 001).
//! The model keeps a parsed view of state.tgz next to its bytes so auto-backup's diff is cheap; the
//! view is always derived from the bytes (a corrupt state.tgz has an empty view, as auto-backup's
//! failed `tar zxvf` would leave).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::etc::{Bytes, Node};
use crate::configstore::ConfigStore;
use crate::keystore::KeyStore;
use crate::profile::Profile;
use crate::state::{Decoded, SavedArchive, StateError};

/// `boot.cfg`, as the boot loader reads it (facts section 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootCfg {
    pub bootstate: u8,
    pub title: String,
    pub timeout: u32,
    pub kernel: String,
    pub kernelopt: String,
    pub modules: Vec<String>,
    pub build: String,
    pub updated: u32,
}

impl BootCfg {
    pub fn for_profile(p: &Profile, updated: u32) -> BootCfg {
        BootCfg {
            bootstate: 0,
            title: "Loading VMware ESXi".into(),
            timeout: 5,
            kernel: "b.b00".into(),
            kernelopt: "no-auto-partition".into(),
            modules: [
                "jumpstrt.gz",
                "useropts.gz",
                "features.gz",
                "k.b00",
                "uc_intel.b00",
                "uc_amd.b00",
                "procfs.b00",
                "vmx.v00",
                "vim.v00",
                "sb.v00",
                "s.v00",
                "esx_ui.v00",
                "imgdb.tgz",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            build: format!("{}-0.0.{}", p.version, p.build),
            updated,
        }
    }

    pub fn has_state_module(&self) -> bool {
        self.modules.iter().any(|m| m == "state.tgz")
    }

    pub fn render(&self) -> String {
        format!(
            "bootstate={}\ntitle={}\ntimeout={}\nprefix=\nkernel={}\nkernelopt={}\nmodules={}\nbuild={}\nupdated={}\n",
            self.bootstate,
            self.title,
            self.timeout,
            self.kernel,
            self.kernelopt,
            self.modules.join(" --- "),
            self.build,
            self.updated
        )
    }
}

/// Flash wear: every file written to a bank, and the bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub files: u64,
    pub bytes: u64,
    /// Completed replacements of state.tgz (renames of a fully written state.tgz.$$).
    pub state_saves: u64,
}

/// `state.tgz` on the bank.
#[derive(Clone, Debug)]
pub enum StateTgz {
    /// What this host's backup.sh wrote, held as pieces: its bytes are made when read.
    Saved(Arc<SavedArchive>),
    /// Bytes from elsewhere: a restored bundle, a raw write, the half of a torn save.
    Raw(Bytes),
}

impl StateTgz {
    pub fn len(&self) -> usize {
        match self {
            StateTgz::Saved(a) => a.len(),
            StateTgz::Raw(b) => b.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The bytes (made now for a save not read before).
    pub fn bytes(&self) -> Bytes {
        match self {
            StateTgz::Saved(a) => a.bytes(),
            StateTgz::Raw(b) => b.clone(),
        }
    }
}

impl PartialEq for StateTgz {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StateTgz::Saved(a), StateTgz::Saved(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.len() == other.len() && self.bytes() == other.bytes(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BootBank {
    pub boot_cfg: BootCfg,
    state: Option<StateTgz>,
    saved: Arc<BTreeMap<String, Node>>,
    /// The ConfigStore of the current state.tgz, read (7.0 and later).
    saved_store: Option<ConfigStore>,
    /// The key store next to local.tgz.ve and, when known, its key (7.0 U2 and later; a NONE
    /// key this host saved with is derived only when needed).
    saved_keys: Option<(KeyStore, Option<[u8; 32]>)>,
    /// Why the current state.tgz cannot be used, if it cannot.
    unusable: Option<StateError>,
    /// The uncompressed contents of useropts.gz and jumpstrt.gz.
    pub useropts: String,
    pub jumpstrt: String,
    /// Temporary files an interrupted save left behind (`state.tgz.4711`); the next save removes them.
    pub leftovers: Vec<String>,
    pub writes: WriteStats,
}

impl BootBank {
    pub fn new(boot_cfg: BootCfg) -> BootBank {
        BootBank {
            boot_cfg,
            state: None,
            saved: Arc::default(),
            saved_store: None,
            saved_keys: None,
            unusable: None,
            useropts: String::new(),
            jumpstrt: String::new(),
            leftovers: Vec::new(),
            writes: WriteStats::default(),
        }
    }

    /// The bank as the files of a directory, as a forensic reader (dissect.target's ESXi
    /// loader) takes a boot bank: `boot.cfg`, the system image as `s.v00` (a visor tar of the
    /// image's `/etc`, which the saved state overlays at boot), `useropts.gz`, `jumpstrt.gz` and
    /// `state.tgz` when there is one. The other modules boot.cfg lists (the kernel, drivers) are
    /// not modelled and not written.
    pub fn directory(&self, image: &super::image::Image) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut dirs = std::collections::BTreeSet::new();
        for path in image.files.keys() {
            let mut at = 0;
            while let Some(i) = path[at..].find('/') {
                dirs.insert(&path[..at + i]);
                at += i + 1;
            }
        }
        let mut entries: Vec<crate::vmtar::Entry<'_>> = dirs
            .iter()
            .map(|d| crate::vmtar::Entry {
                path: d,
                mode: 0o755,
                mtime: super::image::IMAGE_MTIME,
                data: None,
            })
            .collect();
        entries.extend(image.files.iter().map(|(path, n)| crate::vmtar::Entry {
            path,
            mode: n.mode,
            mtime: n.mtime,
            data: Some(&n.data[..]),
        }));
        // Directories sort before their files: a reader meets each parent first.
        entries.sort_by(|a, b| a.path.cmp(b.path));
        let gz = |text: &str| crate::bundle::gzip_bytes(text.as_bytes());
        let mut out = vec![
            ("boot.cfg".to_string(), self.boot_cfg.render().into_bytes()),
            ("s.v00".to_string(), crate::vmtar::write_gz(&entries)?),
            ("useropts.gz".to_string(), gz(&self.useropts)),
            ("jumpstrt.gz".to_string(), gz(&self.jumpstrt)),
        ];
        if let Some(s) = self.state_tgz() {
            out.push(("state.tgz".to_string(), s.to_vec()));
        }
        Ok(out)
    }

    /// state.tgz's bytes (made now if this host's save was not read before).
    pub fn state_tgz(&self) -> Option<Bytes> {
        self.state.as_ref().map(StateTgz::bytes)
    }

    pub fn state(&self) -> Option<&StateTgz> {
        self.state.as_ref()
    }

    pub fn has_state(&self) -> bool {
        self.state.is_some()
    }

    /// state.tgz's size, without making its bytes.
    pub fn state_len(&self) -> Option<usize> {
        self.state.as_ref().map(StateTgz::len)
    }

    /// The save this host's backup.sh made, if state.tgz is one.
    pub fn saved_archive(&self) -> Option<&Arc<SavedArchive>> {
        match &self.state {
            Some(StateTgz::Saved(a)) => Some(a),
            _ => None,
        }
    }

    /// The `/etc` files in the current state.tgz (empty if none, corrupt or sealed to another
    /// key); its ConfigStore is [`BootBank::saved_store`].
    pub fn saved(&self) -> &Arc<BTreeMap<String, Node>> {
        &self.saved
    }

    /// The ConfigStore saved in the current state.tgz.
    pub fn saved_store(&self) -> Option<&ConfigStore> {
        self.saved_store.as_ref()
    }

    /// The key store of a sealed state.tgz, if it could be opened.
    pub fn saved_keystore(&self) -> Option<&KeyStore> {
        self.saved_keys.as_ref().map(|(k, _)| k)
    }

    pub(crate) fn saved_key(&self) -> Option<[u8; 32]> {
        let (ks, k) = self.saved_keys.as_ref()?;
        k.or_else(|| ks.none_key())
    }

    /// Why the current state.tgz cannot be used (it does not unpack, or it is sealed with a key
    /// this host cannot have).
    pub fn corrupt_reason(&self) -> Option<&str> {
        self.unusable.as_ref().map(|e| match e {
            StateError::Corrupt(m) | StateError::Locked(m) => m.as_str(),
        })
    }

    pub fn unusable(&self) -> Option<&StateError> {
        self.unusable.as_ref()
    }

    /// Replaces state.tgz with a save backup.sh just wrote, whose contents are known.
    pub(crate) fn install_state(
        &mut self,
        archive: Arc<SavedArchive>,
        files: BTreeMap<String, Node>,
        store: Option<ConfigStore>,
        keys: Option<(KeyStore, Option<[u8; 32]>)>,
    ) {
        self.state = Some(StateTgz::Saved(archive));
        self.saved = Arc::new(files);
        self.saved_store = store;
        self.saved_keys = keys;
        self.unusable = None;
    }

    /// Replaces state.tgz (None removes it) with what reading it gave.
    pub fn set_state(&mut self, state: Option<StateTgz>, decoded: Result<Decoded, StateError>) {
        self.saved = Arc::default();
        self.saved_store = None;
        self.saved_keys = None;
        self.unusable = None;
        if state.is_some() {
            match decoded {
                Ok(d) => {
                    // The view is the `/etc` files; the ConfigStore is kept as rows.
                    let etc = d.files.into_iter().filter(|(p, _)| p.starts_with("etc/"));
                    self.saved = Arc::new(etc.collect());
                    self.saved_store = d.store;
                    self.saved_keys = d.keystore.map(|ks| (ks, d.key));
                }
                Err(e) => self.unusable = Some(e),
            }
        }
        self.state = state;
    }

    pub(crate) fn count_write(&mut self, bytes: usize) {
        self.writes.files += 1;
        self.writes.bytes += bytes as u64;
    }

    /// The bank's files with their sizes, as `ls -l /bootbank` would show the ones modelled.
    pub fn listing(&self) -> Vec<(String, usize)> {
        let mut v = vec![("boot.cfg".to_string(), self.boot_cfg.render().len())];
        if let Some(s) = &self.state {
            v.push(("state.tgz".into(), s.len()));
        }
        v.push((
            "useropts.gz".into(),
            crate::bundle::gzip_bytes(self.useropts.as_bytes()).len(),
        ));
        v.push((
            "jumpstrt.gz".into(),
            crate::bundle::gzip_bytes(self.jumpstrt.as_bytes()).len(),
        ));
        for l in &self.leftovers {
            v.push((l.clone(), 0));
        }
        v.sort();
        v
    }

    pub(crate) fn owned_bytes(&self, shared_with_ram: impl Fn(&Bytes) -> bool) -> usize {
        let state = match &self.state {
            None => 0,
            Some(StateTgz::Raw(b)) => b.len(),
            Some(StateTgz::Saved(a)) => {
                a.local.owned_bytes() + if a.materialized() { a.len() } else { 0 }
            }
        };
        let saved: usize = self
            .saved
            .iter()
            .map(|(k, n)| {
                k.len()
                    + 64
                    + if shared_with_ram(&n.data) {
                        0
                    } else {
                        n.data.len()
                    }
            })
            .sum();
        std::mem::size_of::<Self>() + state + saved + self.useropts.len() + self.jumpstrt.len()
    }
}

impl fmt::Display for WriteStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files, {} bytes written ({} state.tgz saves)",
            self.files, self.bytes, self.state_saves
        )
    }
}

/// `/bootbank` and `/altbootbank`. Saves go to `/bootbank`; the alternate bank holds the image the
/// host was installed over (staged upgrades are not modelled).
#[derive(Clone, Debug, PartialEq)]
pub struct BootBanks {
    pub boot: BootBank,
    pub alt: BootBank,
}

impl BootBanks {
    pub fn new(p: &Profile) -> BootBanks {
        let mut alt = BootCfg::for_profile(p, 1);
        alt.bootstate = 3; // an empty/old bank the boot loader will not choose
        BootBanks {
            boot: BootBank::new(BootCfg::for_profile(p, 2)),
            alt: BootBank::new(alt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_cfg_renders_like_a_real_one() {
        let p = Profile::named("6.7U3").unwrap();
        let mut c = BootCfg::for_profile(&p, 2);
        let text = c.render();
        assert!(text.contains("\nkernelopt=no-auto-partition\n"));
        assert!(text.contains("modules=jumpstrt.gz --- useropts.gz --- "));
        assert!(text.contains("build=6.7.0-0.0.14320388\n"));
        assert!(!c.has_state_module());
        c.modules.push("state.tgz".into());
        assert!(c.render().contains("imgdb.tgz --- state.tgz\n"));
    }

    #[test]
    fn a_corrupt_state_tgz_has_an_empty_view_and_a_reason() {
        let mut b = BootBank::new(BootCfg::for_profile(&Profile::default_profile(), 1));
        let bytes: Bytes = Arc::from(&b"\x1f\x8b garbage"[..]);
        let decoded = crate::state::decode(
            &bytes,
            &crate::bundle::Limits::default(),
            Default::default(),
        );
        b.set_state(Some(StateTgz::Raw(bytes)), decoded);
        assert!(b.saved().is_empty());
        assert!(b.corrupt_reason().unwrap().contains("gzip"));
        b.set_state(None, Err(StateError::Corrupt("gone".into())));
        assert!(b.corrupt_reason().is_none());
    }
}
