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
use crate::bundle::{read_state_tgz, Limits};
use crate::profile::Profile;

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

#[derive(Clone, Debug, PartialEq)]
pub struct BootBank {
    pub boot_cfg: BootCfg,
    state_tgz: Option<Bytes>,
    saved: Arc<BTreeMap<String, Node>>,
    /// Why the current state.tgz does not parse, if it does not.
    corrupt: Option<String>,
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
            state_tgz: None,
            saved: Arc::default(),
            corrupt: None,
            useropts: String::new(),
            jumpstrt: String::new(),
            leftovers: Vec::new(),
            writes: WriteStats::default(),
        }
    }

    pub fn state_tgz(&self) -> Option<&Bytes> {
        self.state_tgz.as_ref()
    }

    /// The files in the current state.tgz (empty if none or corrupt).
    pub fn saved(&self) -> &Arc<BTreeMap<String, Node>> {
        &self.saved
    }

    pub fn corrupt_reason(&self) -> Option<&str> {
        self.corrupt.as_deref()
    }

    /// Replaces state.tgz with bytes just written by backup.sh, whose contents are known.
    pub(crate) fn install_state(&mut self, bytes: Bytes, files: BTreeMap<String, Node>) {
        self.state_tgz = Some(bytes);
        self.saved = Arc::new(files);
        self.corrupt = None;
    }

    /// Replaces state.tgz with bytes of unknown content (a restore, a raw write, corruption),
    /// re-deriving the parsed view.
    pub fn set_state_tgz(&mut self, bytes: Option<Bytes>, limits: &Limits) {
        match bytes {
            None => {
                self.state_tgz = None;
                self.saved = Arc::default();
                self.corrupt = None;
            }
            Some(b) => {
                match read_state_tgz(&b, limits) {
                    Ok(files) => {
                        self.saved = Arc::new(files);
                        self.corrupt = None;
                    }
                    Err(e) => {
                        self.saved = Arc::default();
                        self.corrupt = Some(e.to_string());
                    }
                }
                self.state_tgz = Some(b);
            }
        }
    }

    pub(crate) fn count_write(&mut self, bytes: usize) {
        self.writes.files += 1;
        self.writes.bytes += bytes as u64;
    }

    /// The bank's files with their sizes, as `ls -l /bootbank` would show the ones modelled.
    pub fn listing(&self) -> Vec<(String, usize)> {
        let mut v = vec![("boot.cfg".to_string(), self.boot_cfg.render().len())];
        if let Some(s) = &self.state_tgz {
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
        let state = self.state_tgz.as_ref().map_or(0, |b| b.len());
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
        b.set_state_tgz(
            Some(Arc::from(&b"\x1f\x8b garbage"[..])),
            &Limits::default(),
        );
        assert!(b.saved().is_empty());
        assert!(b.corrupt_reason().unwrap().contains("gzip"));
        b.set_state_tgz(None, &Limits::default());
        assert!(b.corrupt_reason().is_none());
    }
}
