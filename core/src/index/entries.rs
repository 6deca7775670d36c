//! The entries, by id, in segments of `2^bits` consecutive ids.
//!
//! Ids are never renumbered (see the index's docs), so removed entries leave holes. Each
//! segment keeps its entries densely (those not yet dropped, "present"), with three bitmaps
//! over its ids: live, present, and has-a-hash, and for every 64 ids the number of present
//! entries before them, so an id finds its place with one popcount. A segment whose dead
//! entries reach half of those present is rewritten without them (at most `2^bits` entries:
//! tens of microseconds), and one with none left is freed. Nothing here ever costs more
//! than one segment at a time, and every allocation is one segment's, so growing never
//! copies the whole index either.

use crate::hash::ContentHash;

/// Everything about one file but its name's bytes and its hash: 16 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    /// Where the name ends in the segment's arena; it starts where the previous one's ends.
    end: u32,
    /// The peer's slot in the index's peer table.
    pub(super) peer: u32,
    /// The size, split so that the struct needs no 8-byte alignment.
    size: [u32; 2],
}

impl Meta {
    pub(super) fn size(&self) -> u64 {
        u64::from(self.size[0]) | u64::from(self.size[1]) << 32
    }

    pub(super) fn set_size(&mut self, size: u64) {
        self.size = [size as u32, (size >> 32) as u32];
    }
}

/// 64 ids of a segment.
#[derive(Debug, Clone, Copy, Default)]
struct Word {
    live: u64,
    present: u64,
    hashed: u64,
    /// Present entries of the segment before these 64 ids.
    before: u32,
}

#[derive(Debug)]
struct Seg {
    words: Box<[Word]>,
    meta: Vec<Meta>,
    arena: String,
    /// Empty while no entry of the segment has a hash; else one per entry of `meta`
    /// (zeroes for those without).
    hashes: Vec<[u8; 32]>,
    live: u32,
}

impl Seg {
    fn new(bits: u32) -> Self {
        Self {
            words: vec![Word::default(); (1usize << bits).div_ceil(64)].into_boxed_slice(),
            meta: Vec::new(),
            arena: String::new(),
            hashes: Vec::new(),
            live: 0,
        }
    }

    /// The place in `meta` of the entry at bit `b`, and whether it is live; `None` if it is
    /// not present.
    #[inline]
    fn place(&self, b: usize) -> Option<(usize, &Word)> {
        let w = self.words.get(b / 64)?;
        let bit = 1u64 << (b % 64);
        (w.present & bit != 0).then(|| {
            (
                w.before as usize + (w.present & (bit - 1)).count_ones() as usize,
                w,
            )
        })
    }

    fn name(&self, pos: usize) -> &str {
        let start = if pos == 0 { 0 } else { self.meta[pos - 1].end };
        &self.arena[start as usize..self.meta[pos].end as usize]
    }

    /// A segment with nothing in it.
    fn freed() -> Self {
        Self {
            words: Box::default(),
            meta: Vec::new(),
            arena: String::new(),
            hashes: Vec::new(),
            live: 0,
        }
    }

    fn shrink(&mut self) {
        self.meta.shrink_to_fit();
        self.arena.shrink_to_fit();
        self.hashes.shrink_to_fit();
    }

    fn heap_bytes(&self) -> usize {
        self.words.len() * std::mem::size_of::<Word>()
            + self.meta.capacity() * std::mem::size_of::<Meta>()
            + self.arena.capacity()
            + self.hashes.capacity() * 32
    }
}

/// A live entry, read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry<'a> {
    pub(super) name: &'a str,
    pub(super) meta: &'a Meta,
    pub(super) hash: Option<&'a [u8; 32]>,
}

#[derive(Debug)]
pub(super) struct Entries {
    /// By id `>> bits`; a freed segment has no words.
    segs: Vec<Seg>,
    bits: u32,
    /// The next id to hand out.
    next: u32,
    /// Dead entries a segment holds before it is rewritten, at the least.
    min_dead: u32,
}

impl Entries {
    pub(super) fn new(bits: u32) -> Self {
        assert!((1..=20).contains(&bits), "segments of 2 to 2^20 ids");
        Self {
            segs: Vec::new(),
            bits,
            next: 0,
            min_dead: (1u32 << bits) / 16,
        }
    }

    /// The id the next entry gets.
    pub(super) fn next_id(&self) -> u32 {
        self.next
    }

    #[inline]
    fn split(&self, id: u32) -> (usize, usize) {
        (
            (id >> self.bits) as usize,
            (id & ((1 << self.bits) - 1)) as usize,
        )
    }

    /// Appends an entry; returns its id.
    pub(super) fn push(
        &mut self,
        name: &str,
        peer: u32,
        size: u64,
        hash: Option<ContentHash>,
    ) -> u32 {
        let id = self.next;
        self.next = id.checked_add(1).expect("ids below 2^32");
        let (s, b) = self.split(id);
        if s == self.segs.len() {
            if let Some(prev) = self.segs.last_mut() {
                prev.shrink();
            }
            self.segs.push(Seg::freed());
        }
        let seg = &mut self.segs[s];
        if seg.words.is_empty() {
            *seg = Seg::new(self.bits);
        }
        let pos = seg.meta.len();
        let w = &mut seg.words[b / 64];
        w.before = (pos - w.present.count_ones() as usize) as u32;
        w.live |= 1 << (b % 64);
        w.present |= 1 << (b % 64);
        grow(&mut seg.arena, name.len());
        seg.arena.push_str(name);
        let end = u32::try_from(seg.arena.len()).expect("a segment's names under 4 GiB");
        let mut m = Meta {
            end,
            peer,
            size: [0; 2],
        };
        m.set_size(size);
        grow_vec(&mut seg.meta);
        seg.meta.push(m);
        seg.live += 1;
        if !seg.hashes.is_empty() {
            grow_vec(&mut seg.hashes);
            seg.hashes.push([0; 32]);
        }
        Self::put_hash(seg, b, pos, hash);
        id
    }

    fn put_hash(seg: &mut Seg, b: usize, pos: usize, hash: Option<ContentHash>) {
        let bit = 1u64 << (b % 64);
        match hash {
            Some(ContentHash(h)) => {
                if seg.hashes.is_empty() {
                    seg.hashes.reserve_exact(seg.meta.capacity());
                    seg.hashes.resize(seg.meta.len(), [0; 32]);
                }
                seg.hashes[pos] = h;
                seg.words[b / 64].hashed |= bit;
            }
            None => seg.words[b / 64].hashed &= !bit,
        }
    }

    /// The live entry `id`, if it is.
    #[inline]
    pub(super) fn get(&self, id: u32) -> Option<Entry<'_>> {
        let (s, b) = self.split(id);
        let seg = self.segs.get(s)?;
        let (pos, w) = seg.place(b)?;
        let bit = 1u64 << (b % 64);
        if w.live & bit == 0 {
            return None;
        }
        Some(Entry {
            name: seg.name(pos),
            meta: &seg.meta[pos],
            hash: (w.hashed & bit != 0).then(|| &seg.hashes[pos]),
        })
    }

    #[inline]
    pub(super) fn is_live(&self, id: u32) -> bool {
        let (s, b) = self.split(id);
        self.segs
            .get(s)
            .and_then(|seg| seg.words.get(b / 64))
            .is_some_and(|w| w.live & (1 << (b % 64)) != 0)
    }

    /// The name of live entry `id`.
    pub(super) fn name(&self, id: u32) -> &str {
        self.get(id).expect("a live id").name
    }

    /// Updates live entry `id`'s size and hash; returns its record (for the peer).
    pub(super) fn update(&mut self, id: u32, size: u64, hash: Option<ContentHash>) -> &mut Meta {
        let (s, b) = self.split(id);
        let seg = &mut self.segs[s];
        let (pos, _) = seg.place(b).expect("a live id");
        Self::put_hash(seg, b, pos, hash);
        let m = &mut seg.meta[pos];
        m.set_size(size);
        m
    }

    pub(super) fn meta_mut(&mut self, id: u32) -> &mut Meta {
        let (s, b) = self.split(id);
        let seg = &mut self.segs[s];
        let (pos, _) = seg.place(b).expect("a live id");
        &mut seg.meta[pos]
    }

    /// Marks live entry `id` dead; returns its peer slot and name length. Its segment is
    /// rewritten once it holds enough dead entries.
    pub(super) fn kill(&mut self, id: u32) -> (u32, usize) {
        let (s, b) = self.split(id);
        let seg = &mut self.segs[s];
        let (pos, _) = seg.place(b).expect("a live id");
        let w = &mut seg.words[b / 64];
        debug_assert!(w.live & (1 << (b % 64)) != 0);
        w.live &= !(1 << (b % 64));
        seg.live -= 1;
        let out = (seg.meta[pos].peer, seg.name(pos).len());
        let dead = seg.meta.len() as u32 - seg.live;
        if seg.live == 0 {
            self.segs[s] = Seg::freed();
        } else if dead >= self.min_dead.max(seg.meta.len() as u32 / 2) {
            Self::rewrite(seg);
        }
        out
    }

    /// Drops the dead entries of `seg`.
    fn rewrite(seg: &mut Seg) {
        let n = seg.live as usize;
        let mut meta = Vec::with_capacity(n);
        let mut arena = String::with_capacity(seg.arena.len());
        let mut hashes = Vec::new();
        let keep_hashes = seg.words.iter().any(|w| w.live & w.hashed != 0);
        if keep_hashes {
            hashes.reserve_exact(n);
        }
        let mut pos = 0;
        for w in seg.words.iter_mut() {
            let before = meta.len();
            let mut present = w.present;
            while present != 0 {
                let bit = present & present.wrapping_neg();
                present &= present - 1;
                if w.live & bit != 0 {
                    arena.push_str(seg_name(&seg.meta, &seg.arena, pos));
                    let mut m = seg.meta[pos];
                    m.end = arena.len() as u32;
                    meta.push(m);
                    if keep_hashes {
                        hashes.push(seg.hashes.get(pos).copied().unwrap_or([0; 32]));
                    }
                }
                pos += 1;
            }
            w.present = w.live;
            w.hashed &= w.live;
            w.before = before as u32;
        }
        arena.shrink_to_fit();
        seg.meta = meta;
        seg.arena = arena;
        seg.hashes = hashes;
    }

    /// Rewrites every segment holding a dead entry.
    pub(super) fn compact_all(&mut self) {
        for seg in self.segs.iter_mut() {
            if seg.meta.len() as u32 > seg.live {
                Self::rewrite(seg);
            }
        }
    }

    /// Every live entry, in id order, to `f` until it returns `false`.
    pub(super) fn scan(&self, mut f: impl FnMut(Entry<'_>) -> bool) {
        for seg in self.segs.iter() {
            let mut pos = 0;
            for w in seg.words.iter() {
                let mut present = w.present;
                while present != 0 {
                    let bit = present & present.wrapping_neg();
                    present &= present - 1;
                    if w.live & bit != 0 {
                        let e = Entry {
                            name: seg.name(pos),
                            meta: &seg.meta[pos],
                            hash: (w.hashed & bit != 0).then(|| &seg.hashes[pos]),
                        };
                        if !f(e) {
                            return;
                        }
                    }
                    pos += 1;
                }
            }
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.segs.capacity() * std::mem::size_of::<Seg>()
            + self.segs.iter().map(Seg::heap_bytes).sum::<usize>()
    }

    /// Bytes of the name arenas (part of [`Entries::heap_bytes`]).
    pub(super) fn arena_bytes(&self) -> usize {
        self.segs.iter().map(|s| s.arena.capacity()).sum()
    }

    /// Bytes of the hash columns (part of [`Entries::heap_bytes`]).
    pub(super) fn hash_bytes(&self) -> usize {
        self.segs.iter().map(|s| s.hashes.capacity() * 32).sum()
    }

    /// Checks the segments' agreement with themselves; returns the live ids.
    pub(super) fn check(&self) -> Vec<u32> {
        let mut ids = Vec::new();
        for (s, seg) in self.segs.iter().enumerate() {
            if seg.words.is_empty() {
                assert!(seg.meta.is_empty() && seg.arena.is_empty() && seg.hashes.is_empty());
                continue;
            }
            assert!(seg.live > 0, "a segment without live entries is freed");
            let mut present = 0;
            let mut live = 0;
            for (i, w) in seg.words.iter().enumerate() {
                assert_eq!(w.live & !w.present, 0, "live entries are present");
                assert_eq!(w.hashed & !w.present, 0, "hashed entries are present");
                if w.present != 0 {
                    assert_eq!(w.before as usize, present);
                }
                present += w.present.count_ones() as usize;
                live += w.live.count_ones();
                for b in 0..64 {
                    if w.live & 1 << b != 0 {
                        ids.push(((s as u32) << self.bits) + i as u32 * 64 + b);
                    }
                }
            }
            assert_eq!(present, seg.meta.len());
            assert_eq!(live, seg.live);
            assert!(seg.hashes.is_empty() || seg.hashes.len() == seg.meta.len());
            assert!(seg.words.iter().all(|w| w.hashed == 0) || !seg.hashes.is_empty());
            assert_eq!(
                seg.meta.last().map_or(0, |m| m.end as usize),
                seg.arena.len()
            );
            assert!(seg.meta.windows(2).all(|w| w[0].end <= w[1].end));
            assert!(((s as u32) << self.bits) < self.next.max(1));
        }
        ids
    }
}

fn seg_name<'a>(meta: &[Meta], arena: &'a str, pos: usize) -> &'a str {
    let start = if pos == 0 { 0 } else { meta[pos - 1].end };
    &arena[start as usize..meta[pos].end as usize]
}

/// Room for one more item, growing by a half (a segment is small and is trimmed once full).
fn grow_vec<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 2).max(16));
    }
}

fn grow(s: &mut String, extra: usize) {
    if s.capacity() - s.len() < extra {
        s.reserve_exact(extra.max(s.len() / 2).max(256));
    }
}
