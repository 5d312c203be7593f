//! Zone rules of tagged persons (重点人员): where a community-correction subject may not
//! be at given hours, e.g. inside any school fence between 22:00 and 06:00. Rules come
//! from the administrators' API as JSON, are checked against the map's fences here, and
//! are kept in memory for the sequencer, which raises `tagged_zone` alerts for the roles
//! entitled to the person.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use liandong_core::fence::FenceSet;
use liandong_core::zone::{parse_hhmm, ZoneRule, ZoneTarget};
use liandong_store::TaggedPerson;
use serde::Deserialize;

/// A tagged person as the rules see them.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedZones {
    pub person_id: String,
    pub name: String,
    /// Roles told of the person's alerts (`role::live_roles` of the record's).
    pub roles: Vec<String>,
    pub rules: Vec<ZoneRule>,
    /// Each rule as the administrator wrote it, for alert messages.
    pub rule_text: Vec<String>,
}

/// Tagged persons with zone rules, by person id and by their monitoring phone.
#[derive(Debug, Default)]
pub struct ZoneBook {
    by_person: HashMap<String, Arc<TaggedZones>>,
    by_device: HashMap<String, Arc<TaggedZones>>,
    /// Every tagged person's phone, rules or not: never offered as a unit to dispatch,
    /// and its positions are seen only by the roles on the person's record.
    tagged_devices: HashMap<String, Arc<TaggedPhone>>,
}

/// A tagged person's phone: whose it is and who may see where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedPhone {
    pub person_id: String,
    /// The roles told of the phone's positions (`role::live_roles` of the record's).
    pub roles: Vec<String>,
}

pub type SharedZones = Arc<RwLock<ZoneBook>>;

/// One rule as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleJson {
    #[serde(default)]
    fence_kind: Option<String>,
    #[serde(default)]
    fence_id: Option<String>,
    from: String,
    to: String,
}

/// Why a rule was refused: the field (e.g. `zone_rules[1].from`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub field: String,
    pub reason: String,
}

/// Parses and checks a person's `zone_rules` JSON against the map's fences: a kind must
/// name at least one fence, an id an existing fence, times are `HH:MM` China time.
pub fn parse_rules(v: &serde_json::Value, fences: &FenceSet) -> Result<(Vec<ZoneRule>, Vec<String>), RuleError> {
    let err = |field: String, reason: String| RuleError { field, reason };
    let items = v.as_array().ok_or_else(|| err("zone_rules".into(), "must be an array".into()))?;
    if items.len() > 32 {
        return Err(err("zone_rules".into(), "at most 32 rules".into()));
    }
    let mut rules = Vec::with_capacity(items.len());
    let mut text = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| format!("zone_rules[{i}]{name}");
        let r: RuleJson = serde_json::from_value(item.clone()).map_err(|e| err(field(""), e.to_string()))?;
        let target = match (r.fence_kind, r.fence_id) {
            (Some(kind), None) => {
                if !fences.fences().iter().any(|f| f.kind.as_deref() == Some(kind.as_str())) {
                    return Err(err(field(".fence_kind"), format!("no fence of kind {kind} in the map")));
                }
                ZoneTarget::Kind(kind)
            }
            (None, Some(id)) => {
                if fences.position_of(&id).is_none() {
                    return Err(err(field(".fence_id"), format!("no fence {id} in the map")));
                }
                ZoneTarget::Fence(id)
            }
            _ => return Err(err(field(""), "names exactly one of fence_kind and fence_id".into())),
        };
        let from_min = parse_hhmm(&r.from).map_err(|e| err(field(".from"), e.into()))?;
        let to_min = parse_hhmm(&r.to).map_err(|e| err(field(".to"), e.into()))?;
        let what = match &target {
            ZoneTarget::Kind(k) => format!("any {k} fence"),
            ZoneTarget::Fence(id) => format!("fence {id}"),
        };
        text.push(format!("{what} {}–{}", r.from, r.to));
        rules.push(ZoneRule { target, from_min, to_min });
    }
    Ok((rules, text))
}

impl ZoneBook {
    /// The book from the stored persons. A stored rule the current map cannot satisfy
    /// (a fence removed since) is skipped with a warning rather than failing start-up.
    pub fn from_store(persons: &[TaggedPerson], fences: &FenceSet) -> ZoneBook {
        let mut book = ZoneBook::default();
        for p in persons {
            match parse_rules(&p.zone_rules, fences) {
                Ok((rules, text)) => book.upsert(p, rules, text),
                Err(e) => {
                    tracing::warn!(person = %p.person_id, field = %e.field, reason = %e.reason, "zone rules skipped");
                    book.upsert(p, Vec::new(), Vec::new());
                }
            }
        }
        book
    }

    /// Adds or replaces a person's rules (and their phone).
    pub fn upsert(&mut self, p: &TaggedPerson, rules: Vec<ZoneRule>, rule_text: Vec<String>) {
        self.by_device.retain(|_, z| z.person_id != p.person_id);
        self.by_person.remove(&p.person_id);
        self.tagged_devices.retain(|_, phone| phone.person_id != p.person_id);
        if let Some(d) = &p.device_id {
            let phone = TaggedPhone { person_id: p.person_id.clone(), roles: crate::role::live_roles(&p.roles) };
            self.tagged_devices.insert(d.clone(), Arc::new(phone));
        }
        if rules.is_empty() {
            return;
        }
        let z = Arc::new(TaggedZones {
            person_id: p.person_id.clone(),
            name: p.name.clone(),
            roles: crate::role::live_roles(&p.roles),
            rules,
            rule_text,
        });
        if let Some(d) = &p.device_id {
            self.by_device.insert(d.clone(), z.clone());
        }
        self.by_person.insert(p.person_id.clone(), z);
    }

    pub fn person(&self, person_id: &str) -> Option<Arc<TaggedZones>> {
        self.by_person.get(person_id).cloned()
    }

    pub fn device(&self, device_id: &str) -> Option<Arc<TaggedZones>> {
        self.by_device.get(device_id).cloned()
    }

    /// Whether the device is a tagged person's phone.
    pub fn is_tagged_device(&self, device_id: &str) -> bool {
        self.tagged_devices.contains_key(device_id)
    }

    /// Whether a role is entitled to some tagged person's phone (whose positions it may
    /// then receive whatever its scope).
    pub fn any_phone_entitled(&self, role: &str) -> bool {
        self.tagged_devices.values().any(|p| crate::role::role_entitled(role, &p.roles))
    }

    /// The tagged person whose phone the device is, with the roles entitled to them.
    pub fn tagged_phone(&self, device_id: &str) -> Option<Arc<TaggedPhone>> {
        self.tagged_devices.get(device_id).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.by_person.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liandong_core::CountyMap;

    fn fences() -> FenceSet {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/maps/mini");
        let map = crate::maps::load_dir(&dir).expect("the mini fixture map loads");
        let map: &CountyMap = &map;
        liandong_core::Enricher::new(map).fences().clone()
    }

    #[test]
    fn rules_are_checked_against_the_map_and_name_the_bad_field() {
        let f = fences();
        let kind = f.fences().iter().find_map(|x| x.kind.clone()).expect("the fixture has a fence with a kind");
        let id = f.fences()[0].id.clone();
        let ok = serde_json::json!([{"fence_kind": kind, "from": "22:00", "to": "06:00"}, {"fence_id": id, "from": "00:00", "to": "24:00"}]);
        let (rules, text) = parse_rules(&ok, &f).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].from_min, 22 * 60);
        assert!(text[0].contains("22:00"));
        let cases = [
            (serde_json::json!({}), "zone_rules"),
            (
                serde_json::json!([{"fence_kind": "no-such-kind", "from": "22:00", "to": "06:00"}]),
                "zone_rules[0].fence_kind",
            ),
            (
                serde_json::json!([{"fence_id": "no-such-fence", "from": "22:00", "to": "06:00"}]),
                "zone_rules[0].fence_id",
            ),
            (
                serde_json::json!([{"fence_id": id, "fence_kind": kind, "from": "22:00", "to": "06:00"}]),
                "zone_rules[0]",
            ),
            (serde_json::json!([{"fence_id": id, "from": "25:00", "to": "06:00"}]), "zone_rules[0].from"),
            (serde_json::json!([{"fence_id": id, "from": "22:00", "to": "6"}]), "zone_rules[0].to"),
            (serde_json::json!([{"fence_id": id, "from": "22:00"}]), "zone_rules[0]"),
        ];
        for (v, field) in cases {
            let e = parse_rules(&v, &f).unwrap_err();
            assert_eq!(e.field, field, "{v}: {}", e.reason);
        }
    }

    #[test]
    fn a_person_moves_phones_and_loses_rules() {
        let f = fences();
        let id = f.fences()[0].id.clone();
        let mut p = TaggedPerson {
            person_id: "p1".into(),
            name: "某某".into(),
            category: "community_correction".into(),
            note: String::new(),
            roles: vec!["partner".into()],
            updated_ms: 0,
            device_id: Some("phone-a".into()),
            zone_rules: serde_json::json!([{"fence_id": id, "from": "00:00", "to": "24:00"}]),
            post_id: None,
        };
        let mut book = ZoneBook::from_store(std::slice::from_ref(&p), &f);
        assert!(book.device("phone-a").is_some());
        p.device_id = Some("phone-b".into());
        let (rules, text) = parse_rules(&p.zone_rules, &f).unwrap();
        book.upsert(&p, rules, text);
        assert!(book.device("phone-a").is_none(), "the old phone no longer speaks for the person");
        assert_eq!(book.device("phone-b").unwrap().person_id, "p1");
        book.upsert(&p, Vec::new(), Vec::new());
        assert!(book.person("p1").is_none() && book.device("phone-b").is_none() && book.is_empty());
        assert!(book.is_tagged_device("phone-b"), "a phone stays a tagged person's phone without rules");
        assert!(!book.is_tagged_device("phone-a"));
        assert_eq!(book.tagged_phone("phone-b").map(|t| t.roles.clone()), Some(vec!["partner".to_owned()]));
    }
}
