//! HostFirmwareSystem `ha-firmwareSystem` (privilege Host.Config.Firmware, all synchronous):
//! the four public methods and the three internal ones (facts section 3), over the model's
//! [`crate::host::firmware`] rules. Transfers live here too: the bundle download under an
//! unguessable uuid and the upload to `/tmp/configBundle.tgz`.

use super::{
    host_fault, method_not_found, required_bool, Ctx, Download, UploadAuth, UploadError, Vim,
};
use crate::api::{Call, Fault, Value};
use crate::bundle::BundleError;
use crate::host::etc::Bytes;
use crate::host::HostError;
use crate::secret;

/// The newest bundles within the per-host count and byte caps ([`super::limits`]); the newest
/// one always stays, whatever its size.
fn trim_downloads(vim: &mut Vim) {
    let limits = vim.cfg.limits.clone();
    loop {
        let bytes: usize = vim.downloads.values().map(|d| d.bytes.len()).sum();
        if vim.downloads.len() <= limits.downloads.max(1)
            && (bytes <= limits.download_bytes || vim.downloads.len() == 1)
        {
            return;
        }
        let oldest = vim
            .downloads
            .iter()
            .min_by_key(|(_, d)| d.made)
            .map(|(k, _)| k.clone())
            .expect("more than one");
        vim.downloads.remove(&oldest);
    }
}

pub fn call(vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    match req.method.as_str() {
        "BackupFirmwareConfiguration" => {
            let bundle = vim.host.backup_bundle().map_err(host_fault)?;
            let uuid = secret::vmware_uuid();
            let url = format!(
                "{}/downloads/{uuid}/{}",
                vim.cfg.url_prefix, bundle.file_name
            );
            let created = vim.now();
            vim.seq += 1;
            vim.downloads.insert(
                uuid,
                Download {
                    file_name: bundle.file_name,
                    bytes: bundle.bytes,
                    created,
                    made: vim.seq,
                },
            );
            trim_downloads(vim);
            Ok(Some(Value::Str(url)))
        }
        "QueryFirmwareConfigUploadURL" => Ok(Some(Value::Str(format!(
            "{}/tmp/configBundle.tgz",
            vim.cfg.url_prefix
        )))),
        "RestoreFirmwareConfiguration" => {
            let force = required_bool(req, "force")?;
            vim.host.restore(force).map_err(host_fault)?;
            Ok(None)
        }
        "ResetFirmwareToFactoryDefaults" => {
            vim.host.reset_to_factory_defaults().map_err(host_fault)?;
            Ok(None)
        }
        "SyncFirmwareConfiguration" => {
            vim.host.sync().map_err(host_fault)?;
            Ok(None)
        }
        "QueryFirmwareQuantumMinutes" => Ok(Some(Value::Int(
            vim.host.profile().sync_limit.quantum_minutes as i32,
        ))),
        "QueryFirmwareSyncsPerQuantum" => Ok(Some(Value::Int(
            vim.host.profile().sync_limit.syncs_per_quantum as i32,
        ))),
        _ => Err(method_not_found(req)),
    }
}

impl Vim {
    /// `GET /downloads/<uuid>/<file>`: no credentials, the uuid is the capability. Bundles older
    /// than the download TTL are gone (tmpwatch).
    pub fn download(&mut self, uuid: &str, file: &str) -> Option<Bytes> {
        let now = self.now();
        let ttl = self.cfg.download_ttl;
        self.downloads.retain(|_, d| now.since(d.created) <= ttl);
        let d = self.downloads.get(uuid)?;
        (d.file_name == file).then(|| d.bytes.clone())
    }

    /// Whether a `PUT /tmp/configBundle.tgz` may proceed: HTTP Basic auth against the host's
    /// own `/etc/shadow`, or a live session cookie. Asked before the body is read. None: the
    /// password hash to check is in `ctx.verify` (see [`Vim::credentials_ok`]).
    pub fn authorize_upload(&mut self, auth: UploadAuth<'_>, ctx: &mut Ctx) -> Option<bool> {
        match auth {
            UploadAuth::Basic { user, password } => self.credentials_ok(ctx, user, password),
            UploadAuth::Cookie(token) => Some(super::session_manager::touch(self, token).is_some()),
            UploadAuth::None => Some(false),
        }
    }

    /// The authorized upload's bytes become `/tmp/configBundle.tgz` (the model caps the size).
    pub fn upload(&mut self, bytes: Vec<u8>) -> Result<(), UploadError> {
        self.host.upload_bundle(bytes).map_err(|e| match e {
            HostError::InvalidBundle(BundleError::TooLarge { .. }) => UploadError::TooLarge,
            e => UploadError::Unavailable(e.to_string()),
        })
    }
}
