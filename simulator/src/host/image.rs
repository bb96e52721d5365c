//! The system image's `/etc`: the defaults every host of a profile boots with, shared between
//! all hosts of that profile (one `Arc<Image>` per profile per process).
//!
//! Contents follow a real host's member list (seed 000) so a produced state.tgz lists like a real
//! one. Keys, certificates and licences are placeholders with the right shape, not working secrets.
//! Sticky files persist once modified (facts section 1); `etc/profile` and `etc/inittab` are image
//! files without the sticky bit, so edits to them are lost at reboot.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::etc::{Bytes, Node};
use crate::profile::Profile;

/// Every image file's mtime: the image build (2019-11-12, an arbitrary fixed instant).
pub const IMAGE_MTIME: u64 = 1_573_560_000;

#[derive(Debug)]
pub struct Image {
    pub profile: String,
    pub files: BTreeMap<String, Node>,
    /// What the first boot writes, so that the installer's save holds the release's real first
    /// member list (facts 6.2 for 7.x, seed 000 for 4.x/5.x). Empty on 6.x, whose first save
    /// holds what the install itself changed.
    pub first_boot: Vec<FirstBoot>,
    /// The ConfigStore a fresh install starts from (7.0 and later).
    pub store: Option<crate::configstore::ConfigStore>,
}

/// One file the first boot writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstBoot {
    pub path: &'static str,
    pub how: Generate,
}

/// How the first boot makes a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generate {
    /// Rewritten with the image's own contents (a service touching its file at first start).
    Rewrite,
    /// A PEM-shaped placeholder of this many base64 characters (a host key).
    Pem(&'static str, usize),
    /// This many bytes from the host's seeded generator (`random-seed`).
    Random(usize),
    /// An OpenSSH public key line (`ssh-rsa AAAA... root@host`) of this many base64 characters.
    PublicKey(&'static str, usize),
    /// The DHCP lease of vmk0.
    Lease,
}

impl Image {
    /// The shared image of a profile, built on first use.
    pub fn for_profile(profile: &Profile) -> Arc<Image> {
        static CACHE: OnceLock<Mutex<BTreeMap<String, Arc<Image>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(image) = map.get(&profile.name) {
            return image.clone(); // every host creation and boot: no key allocation
        }
        map.entry(profile.name.clone())
            .or_insert_with(|| Arc::new(Image::build(profile)))
            .clone()
    }

    /// Whether `data` is the very allocation of one of the image's files.
    pub fn shares(&self, data: &Bytes) -> bool {
        self.files.values().any(|n| Arc::ptr_eq(&n.data, data))
    }

    /// Approximate heap bytes of the image, for the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        self.files
            .iter()
            .map(|(k, n)| k.len() + n.data.len() + 96)
            .sum()
    }

    fn build(p: &Profile) -> Image {
        let mut files = BTreeMap::new();
        let mut add = |path: &str, mode: u32, sticky: bool, text: String| {
            files.insert(
                path.to_string(),
                Node {
                    data: Arc::from(text.into_bytes().into_boxed_slice()),
                    mode,
                    mtime: IMAGE_MTIME,
                    sticky,
                },
            );
        };
        let s = |t: &str| t.to_string();
        add("etc/passwd", 0o644, true, s(PASSWD));
        add("etc/group", 0o644, true, s(GROUP));
        // Facts section 2: the image (and a reset host) has no root password.
        add("etc/shadow", 0o600, true, s(SHADOW));
        add("etc/hosts", 0o644, true, s(HOSTS));
        add(
            "etc/host.conf",
            0o644,
            true,
            s("order hosts,bind\nmulti on\n"),
        );
        add("etc/nsswitch.conf", 0o644, true, s(NSSWITCH));
        add("etc/resolv.conf", 0o644, true, s(""));
        add("etc/inetd.conf", 0o644, true, s(INETD));
        add("etc/chkconfig.db", 0o644, true, s(CHKCONFIG));
        add("etc/random-seed", 0o600, true, s(""));
        add("etc/sysconfig/network", 0o644, true, s("NETWORKING=yes\n"));
        add("etc/vmware/esx.conf", 0o644, true, esx_conf(p));
        add("etc/vmware/config", 0o644, true, s(VMWARE_CONFIG));
        add("etc/vmware/license.cfg", 0o644, true, license_cfg(p));
        add("etc/vmware/locker.conf", 0o644, true, s(""));
        add("etc/vmware/snmp.xml", 0o644, true, s(SNMP));
        add("etc/vmware/dvsdata.db", 0o644, true, s(""));
        add("etc/vmware/hostd/authorization.xml", 0o644, true, s(AUTHZ));
        add("etc/vmware/hostd/hostsvc.xml", 0o644, true, s(HOSTSVC));
        add("etc/vmware/hostd/pools.xml", 0o644, true, s(POOLS));
        add(
            "etc/vmware/hostd/vmAutoStart.xml",
            0o644,
            true,
            s(AUTOSTART),
        );
        add(
            "etc/vmware/hostd/vmInventory.xml",
            0o644,
            true,
            s(INVENTORY),
        );
        add("etc/vmware/hostd/proxy.xml", 0o644, true, s(PROXY));
        add("etc/vmware/vmkiscsid/iscsid.conf", 0o644, true, s(""));
        // Empty in the image; the first boot generates them (see power.rs). backup.sh refuses to
        // save while either is empty (its verify_ssl_certificates).
        add("etc/vmware/ssl/rui.crt", 0o644, true, s(""));
        add("etc/vmware/ssl/rui.key", 0o400, true, s(""));
        // backup.sh's counter [inferred: sticky, so it travels in state.tgz].
        add("etc/vmware/.backup.counter", 0o644, true, s(""));
        add("etc/profile", 0o644, false, s(PROFILE));
        add("etc/inittab", 0o644, false, s(INITTAB));
        let first_boot = super::image_files::add_release_files(p, &mut files);
        Image {
            profile: p.name.clone(),
            files,
            first_boot,
            // A base that every host of the profile shares (its SQLite form is built once).
            store: p
                .era
                .has_store()
                .then(|| super::image_files::default_store(p).into_base()),
        }
    }
}

/// The image's esx.conf: a host named `localhost` with no system UUID yet. From 7.0 the
/// network lives in the ConfigStore and esx.conf has no `/net` tree (facts 6.2), but gains
/// `/adv/Net/ManagementAddr`.
fn esx_conf(p: &Profile) -> String {
    let net = if p.store_holds.network {
        "/adv/Net/ManagementAddr = \"\"\n".to_string()
    } else {
        "/net/pnic/child[0000]/name = \"vmnic0\"\n\
         /net/vswitch/child[0000]/name = \"vSwitch0\"\n\
         /net/vswitch/child[0000]/uplinks/child[0000]/pnic = \"vmnic0\"\n\
         /net/vmkernelnic/child[0000]/name = \"vmk0\"\n\
         /net/vmkernelnic/child[0000]/portgroup = \"Management Network\"\n\
         /net/vmkernelnic/child[0000]/dhcp = \"true\"\n"
            .to_string()
    };
    format!(
        "/adv/Misc/HostName = \"localhost\"\n\
         /adv/Misc/HostIPAddr = \"\"\n\
         /adv/UserVars/SuppressShellWarning = \"0\"\n\
         /adv/UserVars/HostClientCEIPOptIn = \"0\"\n\
         /adv/Net/FollowHardwareMac = \"0\"\n\
         /adv/Syslog/global/logHost = \"\"\n\
         /firewall/services/sshServer/enabled = \"false\"\n\
         {net}\
         /resourceGroups/version = \"{}\"\n\
         /system/uuid = \"\"\n",
        p.version
    )
}

fn license_cfg(p: &Profile) -> String {
    format!(
        "<ConfigRoot>\n  <mode>eval</mode>\n  <owner/>\n  <product>esx</product>\n  <version>{}</version>\n</ConfigRoot>\n",
        p.version
    )
}

const PASSWD: &str = "root:x:0:0:Administrator:/:/bin/sh\n\
daemon:x:2:2:daemon:/:/sbin/nologin\n\
nfsnobody:x:65534:65534:nfsnobody:/:/sbin/nologin\n\
dcui:x:100:100:DCUI User:/:/sbin/nologin\n";
const GROUP: &str = "root::0:root\ndaemon::2:daemon\nnfsnobody::65534:\nvpxuser::100:dcui\n";
const SHADOW: &str = "root::17000:0:99999:7:::\n\
daemon:*:17000:0:99999:7:::\n\
nfsnobody:*:17000:0:99999:7:::\n\
dcui:*:17000:0:99999:7:::\n";
const HOSTS: &str = "# Do not remove the following line, or various programs\n\
# that require network functionality will fail.\n\
127.0.0.1\tlocalhost.localdomain localhost\n\
::1\tlocalhost.localdomain localhost\n";
const NSSWITCH: &str = "passwd: files\nshadow: files\ngroup: files\nhosts: files dns\n";
const INETD: &str = "ssh stream tcp nowait root /usr/lib/vmware/openssh/bin/sshd sshd ++swap,group=host/vim/vimuser/terminal/ssh -i\n";
const CHKCONFIG: &str = "/etc/init.d/hostd\n/etc/init.d/vpxa\n/etc/init.d/sfcbd-watchdog\n";
const VMWARE_CONFIG: &str =
    "libdir = \"/usr/lib/vmware\"\nauthd.proxy.nfc = \"vmware-hostd:ha-nfc\"\n";
const SNMP: &str =
    "<config><snmpSettings><enable>false</enable><port>161</port></snmpSettings></config>\n";
pub(crate) const AUTHZ: &str = "<ConfigRoot>\n  <ACEData id=\"10\">\n    <ACEDataEntity>ha-folder-root</ACEDataEntity>\n    <ACEDataId>10</ACEDataId>\n    <ACEDataIsGroup>false</ACEDataIsGroup>\n    <ACEDataPropagate>true</ACEDataPropagate>\n    <ACEDataRoleId>-1</ACEDataRoleId>\n    <ACEDataUser>root</ACEDataUser>\n  </ACEData>\n</ConfigRoot>\n";
const HOSTSVC: &str = "<ConfigRoot>\n  <mode>normal</mode>\n  <service>\n    <TSM>off</TSM>\n    <TSM-SSH>off</TSM-SSH>\n  </service>\n</ConfigRoot>\n";
const POOLS: &str = "<ConfigRoot/>\n";
const AUTOSTART: &str = "<ConfigRoot>\n  <AutoStartOrder/>\n  <AutoStartDefaults><enabled>false</enabled></AutoStartDefaults>\n</ConfigRoot>\n";
const INVENTORY: &str = "<ConfigRoot/>\n";
const PROXY: &str = "<ConfigRoot>\n  <EndpointList>\n    <e id=\"0\"><_type>vim.ProxyService.LocalServiceSpec</_type><port>8307</port><serverNamespace>/sdk</serverNamespace></e>\n  </EndpointList>\n</ConfigRoot>\n";
const PROFILE: &str = "export PATH=/bin:/sbin\nexport PS1='[\\u@\\h:\\w] '\n";
const INITTAB: &str = "::sysinit:/sbin/initterm.sh TTY1 /sbin/techsupport.sh ++min=0,group=host/vim/vimuser/terminal/shell\n::shutdown:/bin/backup.sh 1\n";
