//! What the load generator registered: every file slot of every client, its state as the
//! load generator knows it, and which slots each search pattern matches, so that every
//! `FILE` line can be checked and every missing file noticed.
//!
//! Time is a *tick*: a counter the event loop bumps on every request it sends and every
//! confirmation it reads, so "confirmed before the search was sent" is an exact
//! comparison. Each slot keeps its latest change and the state before it; a slot has at
//! most one change in flight at a time.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::vocab::{Catalog, Rng};

/// `confirm` of a change still in flight.
pub const PENDING: u64 = u64::MAX;

/// One name a client may share.
#[derive(Debug, Clone)]
pub struct Slot {
    name_off: u32,
    name_len: u16,
    /// The latest change sent: shared (CREATEFILE) or not (DELETEFILE, or never sent).
    pub present: bool,
    /// The state before the latest change.
    pub prev_present: bool,
    /// The size of the latest CREATEFILE (kept after a delete, for the next one).
    pub size: u64,
    pub prev_size: u64,
    /// When the latest change was sent (0: never).
    pub sent: u64,
    /// When it was confirmed ([`PENDING`]: not yet).
    pub confirmed: u64,
    /// When the change before it was confirmed.
    pub prev_confirmed: u64,
}

/// A search pattern and the slots whose names contain it.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    /// Slots that must be listed when present and stable. For the listed patterns, every
    /// slot whose name contains the text; for name searches of the final check, the
    /// slots that search is meant to check.
    pub postings: Vec<u32>,
}

/// Every slot of every client, and the patterns.
#[derive(Debug)]
pub struct Model {
    /// Slots per client (the initial files, then spare names for CREATEFILE).
    pub per_client: usize,
    /// Files each client registers at start (slots `0..initial` of each client).
    pub initial: usize,
    arena: String,
    pub slots: Vec<Slot>,
    /// Each client's slots as (hash of the name, slot id), sorted (client `c` at
    /// `c * per_client ..`): a lookup touches a few cache lines, not every slot's name.
    by_name: Vec<(u64, u32)>,
    pub patterns: Vec<Pattern>,
    /// How many of `patterns` are the search vocabulary (the rest are added later).
    pub listed: usize,
}

/// FxHash: fast for short keys, no DoS concerns here.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

pub type FxBuild = BuildHasherDefault<Fx>;

/// A 64-bit hash of a name.
fn name_hash(name: &[u8]) -> u64 {
    let mut h = Fx::default();
    h.write(name);
    h.write_usize(name.len());
    h.finish()
}

fn trigram(b: &[u8]) -> u32 {
    u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16
}

impl Model {
    /// The names of `clients` clients with `initial` files and `spare` more names each,
    /// and `patterns` search patterns (`broad_percent` of them broad, `loose_percent`
    /// loose: see [`Catalog::patterns`]), all from `seed`.
    pub fn new(
        seed: u64,
        clients: usize,
        initial: usize,
        spare: usize,
        patterns: usize,
        (broad_percent, loose_percent): (u64, u64),
    ) -> Self {
        let per_client = initial + spare;
        let total = clients * per_client;
        assert!(total < u32::MAX as usize, "too many files");
        let catalog = Catalog::new(seed, (total / 3).max(256));
        let mut arena = String::with_capacity(total * 48);
        let mut slots = Vec::with_capacity(total);
        let mut by_name = Vec::with_capacity(total);
        let mut names: HashSet<String> = HashSet::with_capacity(per_client);
        let mut local: Vec<(String, u64)> = Vec::with_capacity(per_client);
        for c in 0..clients {
            let mut rng = Rng::stream(seed, 1 + c as u64);
            local.clear();
            names.clear();
            for _ in 0..per_client {
                let mut e = &catalog.entries[catalog.draw(&mut rng)];
                for _ in 0..4 {
                    if !names.contains(&e.name) {
                        break;
                    }
                    e = &catalog.entries[catalog.draw(&mut rng)];
                }
                let mut name = e.name.clone();
                let mut k = 2;
                while names.contains(&name) {
                    // A second copy of a work: `..._2.mp3`.
                    let dot = e.name.rfind('.').unwrap_or(e.name.len());
                    name = format!("{}_{k}{}", &e.name[..dot], &e.name[dot..]);
                    k += 1;
                }
                names.insert(name.clone());
                local.push((name, e.size));
            }
            let first = slots.len() as u32;
            for (name, size) in &local {
                slots.push(Slot {
                    name_off: arena.len() as u32,
                    name_len: name.len() as u16,
                    present: false,
                    prev_present: false,
                    size: *size,
                    prev_size: *size,
                    sent: 0,
                    confirmed: 0,
                    prev_confirmed: 0,
                });
                arena.push_str(name);
            }
            let start = by_name.len();
            by_name.extend(
                local
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _))| (name_hash(name.as_bytes()), first + i as u32)),
            );
            by_name[start..].sort_unstable();
        }
        let texts = catalog.patterns(seed, patterns, broad_percent, loose_percent);
        let mut model = Self {
            per_client,
            initial,
            arena,
            slots,
            by_name,
            patterns: texts
                .into_iter()
                .map(|text| Pattern {
                    text,
                    postings: Vec::new(),
                })
                .collect(),
            listed: 0,
        };
        model.listed = model.patterns.len();
        model.build_postings();
        model
    }

    /// Fills every listed pattern's postings: the slots whose names contain it. Patterns
    /// are found through their first three bytes, so each name is scanned once.
    fn build_postings(&mut self) {
        let mut by_trigram: HashMap<u32, Vec<u32>, FxBuild> = HashMap::default();
        for (i, p) in self.patterns.iter().enumerate() {
            by_trigram
                .entry(trigram(p.text.as_bytes()))
                .or_default()
                .push(i as u32);
        }
        for (slot, s) in self.slots.iter().enumerate() {
            let name = &self.arena.as_bytes()
                [s.name_off as usize..s.name_off as usize + s.name_len as usize];
            for at in 0..name.len().saturating_sub(2) {
                let Some(candidates) = by_trigram.get(&trigram(&name[at..])) else {
                    continue;
                };
                for &p in candidates {
                    let pattern = &mut self.patterns[p as usize];
                    if name[at..].starts_with(pattern.text.as_bytes())
                        && pattern.postings.last() != Some(&(slot as u32))
                    {
                        pattern.postings.push(slot as u32);
                    }
                }
            }
        }
    }

    pub fn name(&self, slot: u32) -> &str {
        let s = &self.slots[slot as usize];
        &self.arena[s.name_off as usize..s.name_off as usize + s.name_len as usize]
    }

    pub fn client_of(&self, slot: u32) -> usize {
        slot as usize / self.per_client
    }

    /// The slot of `client` named `name`.
    pub fn find(&self, client: usize, name: &[u8]) -> Option<u32> {
        let ids = &self.by_name[client * self.per_client..(client + 1) * self.per_client];
        let h = name_hash(name);
        let from = ids.partition_point(|&(x, _)| x < h);
        ids[from..]
            .iter()
            .take_while(|&&(x, _)| x == h)
            .map(|&(_, slot)| slot)
            .find(|&slot| self.name(slot).as_bytes() == name)
    }

    /// Number of slots of all clients that are present (the latest change was a
    /// confirmed or pending CREATEFILE).
    pub fn present_count(&self) -> usize {
        self.slots.iter().filter(|s| s.present).count()
    }

    /// Records a change sent at `tick`.
    pub fn send_change(&mut self, slot: u32, present: bool, size: u64, tick: u64) {
        let s = &mut self.slots[slot as usize];
        debug_assert_ne!(s.confirmed, PENDING, "one change in flight per slot");
        s.prev_present = s.present;
        s.prev_size = s.size;
        s.prev_confirmed = s.confirmed;
        s.present = present;
        s.size = size;
        s.sent = tick;
        s.confirmed = PENDING;
    }

    pub fn confirm(&mut self, slot: u32, tick: u64) {
        self.slots[slot as usize].confirmed = tick;
    }

    /// Whether a search sent at `sent` must list `slot` (when not cut by the cap): it was
    /// shared and confirmed before the search was sent, and no change has been sent since.
    pub fn required(&self, slot: u32, sent: u64) -> bool {
        let s = &self.slots[slot as usize];
        s.present && s.confirmed < sent
    }

    /// Checks a `FILE` line for `slot` with `size`, in the reply to a search sent at
    /// `sent` (read before any later change to it was confirmed). `Err` says what is wrong.
    pub fn check_listed(&self, slot: u32, size: u64, sent: u64) -> Result<(), String> {
        let s = &self.slots[slot as usize];
        if s.confirmed < sent {
            // Unchanged while the search ran.
            if !s.present {
                return Err(if s.sent == 0 {
                    "never registered".to_owned()
                } else {
                    "deleted (and confirmed) before the search was sent".to_owned()
                });
            }
            if size != s.size {
                return Err(format!("size {size}, registered with {}", s.size));
            }
            return Ok(());
        }
        if s.prev_confirmed < sent {
            // Either the state before the latest change or after it.
            let now = s.present && size == s.size;
            let before = s.prev_present && size == s.prev_size;
            if now || before {
                return Ok(());
            }
            return Err(format!(
                "not shared with size {size} before or after its change during the search \
                 (before: {}, after: {})",
                if s.prev_present {
                    format!("size {}", s.prev_size)
                } else {
                    "not shared".to_owned()
                },
                if s.present {
                    format!("size {}", s.size)
                } else {
                    "not shared".to_owned()
                },
            ));
        }
        // Changed more than once during the search: anything it was is possible.
        Ok(())
    }

    /// Adds a pattern that is not part of the vocabulary (a full name, for the final
    /// check) whose search must list `postings`.
    pub fn add_pattern(&mut self, text: String, postings: Vec<u32>) -> u32 {
        self.patterns.push(Pattern { text, postings });
        (self.patterns.len() - 1) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_per_client_and_postings_exact() {
        let m = Model::new(3, 20, 30, 8, 300, (3, 10));
        for c in 0..20 {
            let mut names: Vec<&str> = (0..m.per_client)
                .map(|i| m.name((c * m.per_client + i) as u32))
                .collect();
            for (i, n) in names.iter().enumerate() {
                let slot = (c * m.per_client + i) as u32;
                assert_eq!(m.find(c, n.as_bytes()), Some(slot));
                assert_eq!(m.client_of(slot), c);
            }
            names.sort();
            names.dedup();
            assert_eq!(names.len(), m.per_client);
        }
        for p in &m.patterns {
            let brute: Vec<u32> = (0..m.slots.len() as u32)
                .filter(|&s| m.name(s).contains(p.text.as_str()))
                .collect();
            assert_eq!(p.postings, brute, "{}", p.text);
        }
        assert!(m.patterns.iter().any(|p| !p.postings.is_empty()));
    }

    #[test]
    fn listed_checks_follow_changes() {
        let mut m = Model::new(1, 1, 1, 1, 10, (0, 0));
        // Never registered.
        assert!(m.check_listed(0, 5, 10).is_err());
        m.send_change(0, true, 5, 1);
        assert!(!m.required(0, 2));
        // Pending at the search: before (absent) or after (size 5).
        assert!(m.check_listed(0, 5, 2).is_ok());
        assert!(m.check_listed(0, 6, 2).is_err());
        m.confirm(0, 3);
        assert!(m.required(0, 4));
        assert!(m.check_listed(0, 5, 4).is_ok());
        assert!(m.check_listed(0, 6, 4).is_err());
        m.send_change(0, false, 5, 5);
        // A search sent at 4 but read after the delete was sent: both possible.
        assert!(m.check_listed(0, 5, 4).is_ok());
        m.confirm(0, 6);
        assert!(m.check_listed(0, 5, 7).is_err());
        assert!(!m.required(0, 7));
    }
}
