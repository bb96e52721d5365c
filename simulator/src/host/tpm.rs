//! The host's TPM, as far as the encrypted configuration needs it (facts section 6.5): a chip
//! bound to the board, that seals a key so that only the same chip unseals it. Replacing the
//! board replaces the chip: what was sealed to the old one stays sealed.
//!
//! Simulated \[inferred in its details\]: the chip's storage root key is SHA-256 of its identity
//! (a number drawn from the host's seed when the board is made), and sealing is AES-256-GCM
//! under that key. What matters to a backup tool is observable: a TPM-mode configuration opens
//! on its own board, not on another, and the recovery key opens it anywhere.

use crate::keystore::{aead_open, aead_seal};

/// A TPM soldered to a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tpm {
    /// The chip's identity (endorsement), different for every board.
    pub board: u64,
}

impl Tpm {
    fn storage_root_key(&self) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"esxi-sim simulated TPM storage root key\0");
        ctx.update(&self.board.to_le_bytes());
        ctx.finish().as_ref().try_into().expect("32")
    }

    /// `key` sealed to this chip (nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, key: &[u8; 32], nonce: [u8; 12]) -> Vec<u8> {
        aead_seal(&self.storage_root_key(), nonce, key, b"tpm seal")
    }

    /// The key, if `blob` was sealed to this chip.
    pub fn unseal(&self, blob: &[u8]) -> Option<[u8; 32]> {
        aead_open(&self.storage_root_key(), blob, b"tpm seal")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_chip_unseals() {
        let a = Tpm { board: 1 };
        let b = Tpm { board: 2 };
        let key = [9u8; 32];
        let blob = a.seal(&key, [0; 12]);
        assert_eq!(blob.len(), 60);
        assert_eq!(a.unseal(&blob), Some(key));
        assert_eq!(b.unseal(&blob), None);
        let mut bad = blob.clone();
        bad[20] ^= 1;
        assert_eq!(a.unseal(&bad), None);
        assert_eq!(a.unseal(&blob[..59]), None);
    }
}
