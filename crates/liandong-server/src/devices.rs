//! The device registry: which devices may report, under which key, for which unit.

use liandong_store::DeviceRecord;
use serde::Deserialize;

use crate::auth::{is_at_rest, kept_key, key_at_rest};
use crate::error::ApiError;
use crate::hashing::FastMap;

/// Kinds of device a unit carries.
pub const DEVICE_KINDS: [&str; 5] = ["post_officer", "patrol_member", "patrol_leader", "vehicle", "other"];

/// `POST /api/v1/devices` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    pub device_id: String,
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default)]
    pub unit_id: Option<String>,
    /// The device's key; generated when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// The person the device's key acts for: an existing, active person.
    #[serde(default)]
    pub person_id: Option<String>,
}

fn default_kind() -> String {
    "other".into()
}

impl NewDevice {
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Err(reason) = valid_device_id(&self.device_id) {
            return Err(ApiError::bad_request("device_id", reason));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(ApiError::bad_request("name", "must be 1 to 100 characters"));
        }
        if !DEVICE_KINDS.contains(&self.kind.as_str()) {
            return Err(ApiError::bad_request("kind", format!("must be one of {}", DEVICE_KINDS.join(", "))));
        }
        if let Some(k) = &self.key {
            if k.len() < 8 || k.len() > 128 || !k.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ApiError::bad_request("key", "must be 8 to 128 printable ASCII characters"));
            }
        }
        Ok(())
    }
}

/// The same rule the decoders apply to incoming reports.
pub fn valid_device_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b)) {
        return Err("may contain only letters, digits and . _ : @ -");
    }
    Ok(())
}

/// A fresh random device key (24 characters from /dev/urandom, base 62).
pub fn generate_key() -> std::io::Result<String> {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    // 256 is not a multiple of 62: the small bias is irrelevant for a 143-bit key.
    Ok(raw.iter().map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect())
}

/// Who a device's actions are attributed to: its person (`person:{id}`) when the device
/// is bound to one, for a device's key acts for its person; else the device itself
/// (`device:{id}`).
pub fn actor(d: &DeviceRecord) -> String {
    match &d.person_id {
        Some(p) => format!("person:{p}"),
        None => format!("device:{}", d.device_id),
    }
}

/// Rewrites the keys an older version kept in plaintext, devices' and cameras', into
/// their hashed form, so that the database holds no usable key. Returns how many.
pub async fn hash_kept_keys(store: &liandong_store::Store) -> Result<usize, liandong_store::StoreError> {
    let mut n = 0;
    for d in store.devices().await? {
        if !is_at_rest(&d.key) {
            store.upsert_device(&DeviceRecord { key: key_at_rest(&d.key), ..d }).await?;
            n += 1;
        }
    }
    for c in store.cameras().await? {
        if !is_at_rest(&c.key) {
            store.upsert_camera(&liandong_store::CameraRecord { key: key_at_rest(&c.key), ..c }).await?;
            n += 1;
        }
    }
    Ok(n)
}

#[derive(Debug, Default)]
pub struct Registry {
    by_id: FastMap<String, DeviceRecord>,
    by_key: FastMap<String, String>,
}

impl Registry {
    pub fn new(devices: Vec<DeviceRecord>) -> Registry {
        let mut r = Registry::default();
        for d in devices {
            r.insert(d);
        }
        r
    }

    /// Adds or replaces a device; a key given in plaintext (an older store) is kept hashed.
    pub fn insert(&mut self, mut d: DeviceRecord) {
        d.key = kept_key(d.key);
        if let Some(old) = self.by_id.get(&d.device_id) {
            self.by_key.remove(&old.key);
        }
        self.by_key.insert(d.key.clone(), d.device_id.clone());
        self.by_id.insert(d.device_id.clone(), d);
    }

    pub fn get(&self, id: &str) -> Option<&DeviceRecord> {
        self.by_id.get(id)
    }

    /// The device whose key this is (the presented key, not its kept form).
    pub fn by_key(&self, key: &str) -> Option<&DeviceRecord> {
        self.by_key.get(&key_at_rest(key)).and_then(|id| self.by_id.get(id))
    }

    pub fn all(&self) -> impl Iterator<Item = &DeviceRecord> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
