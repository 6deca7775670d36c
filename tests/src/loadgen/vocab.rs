//! The names the load generator shares and the patterns it searches for, all reproducible
//! from one seed.
//!
//! A *catalog* of works (songs, films, books, archives) is drawn first. Every client then
//! shares entries of the catalog, popular ones more often (so the same song is shared by
//! many clients, as on a real network), and the search patterns are parts of catalog
//! entries: an artist, an album, a title, one word, a fragment of a word, a name in the
//! wrong case (which finds nothing: search is case-sensitive), or a broad pattern (an
//! extension, a year) that hits the result cap on a big index.
//!
//! Names never contain a space (the seed's server crashes on them), so they look like
//! `Velvet_Owls-Midnight_Harbor-07-Running_Through_Fire.mp3`,
//! `Silent_Engine.2009.1080p.BluRay.x264.mkv` or `Okafor_Maria-Paper_Gardens.pdf`.

use std::collections::HashSet;

/// A seedable generator (fastrand's wyrand) with the draws the vocabulary and the mix
/// make. Not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng(fastrand::Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(fastrand::Rng::with_seed(seed))
    }

    /// A generator for stream `stream` of `seed` (one per client, one for the catalog...).
    pub fn stream(seed: u64, stream: u64) -> Self {
        Self::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03).rotate_left(17))
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }

    /// Uniform in `0..n` as a `usize` (`n > 0`).
    pub fn index(&mut self, n: usize) -> usize {
        self.0.usize(..n)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.0.f64()
    }

    /// `true` with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.index(words.len())]
    }

    /// An index in `0..n` skewed towards 0: the density falls as `x^(-1/3)`, so the first
    /// entry of 10,000 is drawn about 0.2% of the time and the top 1% about 5%.
    pub fn popular(&mut self, n: usize) -> usize {
        ((self.unit().powf(1.5) * n as f64) as usize).min(n - 1)
    }
}

const ADJECTIVES: &str = "\
    Velvet Silent Electric Broken Golden Crimson Hollow Midnight Neon Paper Iron Silver \
    Wild Lonely Frozen Burning Quiet Restless Wicked Gentle Scarlet Distant Secret Faded \
    Lucky Savage Shallow Amber Cosmic Crystal Dusty Empty Fallen Fierce Glass Heavy \
    Hidden Honest Lazy Little Lost Magnetic Mellow Modern Northern Painted Pale Plastic \
    Purple Radio Rusty Sacred Shadow Sleepy Solar Southern Static Stone Strange Sugar \
    Sweet Tender Twisted Velour Violet Wandering Western White Young Ancient Bitter Blue \
    Bright Cold Dark Dead Deep Dirty Drunken Easy Endless Final Flying Green Happy High \
    Holy Hot Infinite Lunar Mad Mighty Naked New Noble Old Perfect Pretty Rapid Red \
    Royal Sad Sharp Shiny Slow Soft Stray Sunny Tired True Ultra Urban Vintage Warm\
";

const NOUNS: &str = "\
    Owls Engines Harbor Wolves Mirrors Rivers Ghosts Tigers Lanterns Machines Pilots \
    Sparrows Giants Strangers Foxes Saints Thieves Kings Queens Horses Satellites Monks \
    Dragons Ravens Sailors Drifters Dreamers Prophets Rebels Robots Shadows Sisters \
    Brothers Cowboys Poets Angels Bandits Beasts Bells Birds Bones Canyons Cats Chains \
    Circles Clouds Comets Crows Doves Echoes Embers Feathers Flowers Gardens Gears \
    Hearts Hills Islands Jets Kites Lights Lions Magnets Moons Mountains Needles Oceans \
    Orchids Pages Panthers Pearls Pigeons Planets Rockets Roses Ruins Seeds Serpents \
    Ships Signals Skulls Snakes Stars Storms Suns Swans Tides Towers Trains Tribes \
    Valleys Vipers Voices Waves Whales Wheels Wings Witches\
";

const FIRST_NAMES: &str = "\
    Maria John Aiko Pedro Fatima Liam Olga Chen Amara Lucas Ingrid Kwame Sofia Mateo \
    Yuki Hassan Elena Tomas Priya Jonas Camila Dmitri Noor Rafael Astrid Kenji Leila \
    Marcus Nadia Oscar Paula Ravi Sienna Tariq Ursula Victor Wanda Xavier Yasmin Zoltan \
    Bruno Clara Diego Esther Felix Greta Hugo Irene Joao Karin\
";

const LAST_NAMES: &str = "\
    Okafor Silva Tanaka Novak Haddad Carter Petrov Lindqvist Moreau Rossi Kowalski \
    Nakamura Mensah Fischer Oliveira Gupta Andersen Romero Schmidt Dubois Costa Ivanova \
    Kim Nguyen Murphy Santos Weber Yilmaz Bakker Horvat Jansen Larsen Mueller Ortega \
    Popescu Quinn Reyes Sato Torres Varga Walsh Zhang Almeida Brennan Castillo Delgado \
    Eriksson Fontaine Gallagher Hoffmann\
";

const TITLE_WORDS: &str = "\
    Love Night Heart Fire Rain Dream Road Home Summer Winter Light Dance River Town \
    Train Morning Evening Window Mirror Garden Ocean Desert Highway Bridge Station \
    Letter Promise Secret Stranger Angel Devil Ghost Memory Shadow Thunder Lightning \
    Honey Whiskey Coffee Sugar Diamond Gold Silver Paper Glass Stone Wire Smoke Dust \
    Ashes Blood Tears Kiss Goodbye Hello Tomorrow Yesterday Forever Never Always Running \
    Falling Flying Waiting Dreaming Burning Drifting Breaking Shining Calling Crying \
    Singing Dancing Walking Talking Holding Chasing Losing Finding Leaving Coming \
    Through Under Over Without Beyond Behind Inside Outside Across Again Alone Together \
    Blue Black Red Green Wild Young Crazy Lonely Electric Broken Sweet Cold Hot Slow \
    Fast Little Big Last First Lost Free Moon Sun Star Sky Cloud Wind Storm Sea Wave \
    Island Mountain Valley City Street Avenue Boulevard Hotel Motel Radio Television \
    Telephone Machine Engine Rocket Satellite Planet Galaxy Universe Heaven Paradise \
    Hell Kingdom Empire Castle Tower Prison Church School Party Game Story Song Ballad \
    Blues Anthem Hymn Lullaby Serenade Waltz Tango Rhapsody Symphony Boy Girl Baby \
    Mother Father Brother Sister Friend Lover King Queen Prince Soldier Sailor Cowboy \
    Gypsy Rebel Hero Fool Saint Sinner Money Time Life Death World Words Eyes Hands Lips \
    Soul Mind Body Voice Echo Silence Noise Rhythm Melody Harmony Chorus Echoes Horizon \
    Twilight Midnight Sunrise Sunset Daylight Starlight Moonlight Neon Velvet Satin \
    Leather Chrome Steel Iron Copper Crystal Marble Ivory Jade Amber Scarlet Violet \
    Indigo Orange Lemon Cherry Peach Apple Wine Champagne Cigarette Candle Lantern \
    Compass Anchor Harbor Lighthouse Carnival Circus Parade Revolution Freedom Victory \
    Surrender Escape Return Journey Voyage Flight Arrival Departure Homecoming\
";

const SMALL_WORDS: &str = "\
    of the in and on to for with at my\
";

/// (extension, weight, kind)
const EXTENSIONS: &[(&str, u32, Kind)] = &[
    ("mp3", 52, Kind::Audio),
    ("flac", 10, Kind::Audio),
    ("m4a", 5, Kind::Audio),
    ("ogg", 4, Kind::Audio),
    ("wav", 2, Kind::Audio),
    ("mkv", 7, Kind::Video),
    ("avi", 4, Kind::Video),
    ("mp4", 4, Kind::Video),
    ("pdf", 6, Kind::Book),
    ("epub", 2, Kind::Book),
    ("djvu", 1, Kind::Book),
    ("zip", 2, Kind::Archive),
    ("iso", 1, Kind::Archive),
];

/// The words of the lists above.
struct Words {
    adjectives: Vec<&'static str>,
    nouns: Vec<&'static str>,
    first_names: Vec<&'static str>,
    last_names: Vec<&'static str>,
    title: Vec<&'static str>,
    small: Vec<&'static str>,
}

impl Words {
    fn new() -> Self {
        let split = |list: &'static str| list.split_whitespace().collect();
        Self {
            adjectives: split(ADJECTIVES),
            nouns: split(NOUNS),
            first_names: split(FIRST_NAMES),
            last_names: split(LAST_NAMES),
            title: split(TITLE_WORDS),
            small: split(SMALL_WORDS),
        }
    }
}

const RESOLUTIONS: &[&str] = &["480p", "720p", "1080p", "2160p"];
const SOURCES: &[&str] = &["BluRay", "WEBRip", "DVDRip", "HDTV", "WEB-DL"];
const CODECS: &[&str] = &["x264", "x265", "XviD", "HEVC"];

/// Broad patterns: they match a large share of all names.
const BROAD: &[&str] = &[
    ".mp3", ".flac", ".mkv", ".pdf", ".m4a", "1080p", "x264", "BluRay", "-01-", "-02-", "Love",
    "The_",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Audio,
    Video,
    Book,
    Archive,
}

/// One work of the catalog: its file name and the byte ranges of its parts, which search
/// patterns are drawn from.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    /// The artist or author (may be empty).
    artist: (u16, u16),
    /// The album (may be empty).
    album: (u16, u16),
    /// The title.
    title: (u16, u16),
    /// A typical size in bytes.
    pub size: u64,
}

impl Entry {
    fn part(&self, (from, to): (u16, u16)) -> &str {
        &self.name[from as usize..to as usize]
    }
}

/// The works clients share, drawn from the seed.
#[derive(Debug)]
pub struct Catalog {
    pub entries: Vec<Entry>,
}

fn title(w: &Words, rng: &mut Rng, max_words: usize) -> String {
    let words = 1 + rng.index(max_words);
    let mut t = String::new();
    if rng.percent(12) {
        t.push_str("The_");
    }
    for i in 0..words {
        if i > 0 {
            t.push('_');
            if words >= 3 && i == 1 && rng.percent(30) {
                t.push_str(rng.pick(&w.small));
                t.push('_');
            }
        }
        t.push_str(rng.pick(&w.title));
    }
    t
}

fn artist(w: &Words, rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=4 => format!("{}_{}", rng.pick(&w.adjectives), rng.pick(&w.nouns)),
        5..=6 => format!("The_{}_{}", rng.pick(&w.adjectives), rng.pick(&w.nouns)),
        7..=8 => format!("{}_{}", rng.pick(&w.first_names), rng.pick(&w.last_names)),
        _ => format!("DJ_{}", rng.pick(&w.nouns)),
    }
}

fn range(from: usize, to: usize) -> (u16, u16) {
    (from as u16, to as u16)
}

impl Catalog {
    /// `len` works drawn from `seed`.
    pub fn new(seed: u64, len: usize) -> Self {
        let mut rng = Rng::stream(seed, 0xCA7A_1060);
        let words = Words::new();
        let total: u32 = EXTENSIONS.iter().map(|e| e.1).sum();
        // Artists have several works each.
        let artists: Vec<String> = (0..(len / 5).max(8))
            .map(|_| artist(&words, &mut rng))
            .collect();
        let authors: Vec<String> = (0..(len / 20).max(8))
            .map(|_| {
                format!(
                    "{}_{}",
                    rng.pick(&words.last_names),
                    rng.pick(&words.first_names)
                )
            })
            .collect();
        let mut entries = Vec::with_capacity(len);
        for _ in 0..len {
            let mut w = rng.below(u64::from(total)) as u32;
            let &(ext, _, kind) = EXTENSIONS
                .iter()
                .find(|e| {
                    if w < e.1 {
                        true
                    } else {
                        w -= e.1;
                        false
                    }
                })
                .expect("weights add up");
            let mut name = String::with_capacity(64);
            let (mut a, mut al, t);
            a = (0, 0);
            al = (0, 0);
            let size;
            match kind {
                Kind::Audio => {
                    name.push_str(&artists[rng.popular(artists.len())]);
                    a = range(0, name.len());
                    name.push('-');
                    if rng.percent(70) {
                        let from = name.len();
                        name.push_str(&title(&words, &mut rng, 3));
                        al = range(from, name.len());
                        name.push_str(&format!("-{:02}-", 1 + rng.below(16)));
                    }
                    let from = name.len();
                    name.push_str(&title(&words, &mut rng, 4));
                    t = range(from, name.len());
                    let per_second = match ext {
                        "flac" => 110_000,
                        "wav" => 176_400,
                        _ => 16_000,
                    };
                    size = (120 + rng.below(300)) * per_second + rng.below(1 << 16);
                }
                Kind::Video => {
                    name.push_str(&title(&words, &mut rng, 4));
                    t = range(0, name.len());
                    name.push_str(&format!(
                        ".{}.{}.{}.{}",
                        1960 + rng.below(65),
                        rng.pick(RESOLUTIONS),
                        rng.pick(SOURCES),
                        rng.pick(CODECS)
                    ));
                    size = (700 << 20) + rng.below(4 << 30);
                }
                Kind::Book => {
                    name.push_str(&authors[rng.index(authors.len())]);
                    a = range(0, name.len());
                    name.push('-');
                    let from = name.len();
                    name.push_str(&title(&words, &mut rng, 5));
                    t = range(from, name.len());
                    size = (200 << 10) + rng.below(30 << 20);
                }
                Kind::Archive => {
                    name.push_str(&title(&words, &mut rng, 2));
                    t = range(0, name.len());
                    name.push_str(&format!("_v{}.{}", 1 + rng.below(9), rng.below(20)));
                    size = (1 << 20) + rng.below(3 << 30);
                }
            }
            name.push('.');
            name.push_str(ext);
            entries.push(Entry {
                name,
                artist: a,
                album: al,
                title: t,
                size,
            });
        }
        Self { entries }
    }

    /// An entry index, popular works more often.
    pub fn draw(&self, rng: &mut Rng) -> usize {
        rng.popular(self.entries.len())
    }

    /// `count` distinct search patterns: `broad_percent` of them broad (an extension, a
    /// resolution: they match a large share of all names), `loose_percent` loose (one
    /// word of a title, or five letters from inside one: tens to hundreds of names), the
    /// rest selective (an artist, an album, a title, artist and the start of a title, or
    /// one of these in the wrong case, which finds nothing). Each is at least three bytes
    /// long and has no space.
    pub fn patterns(
        &self,
        seed: u64,
        count: usize,
        broad_percent: u64,
        loose_percent: u64,
    ) -> Vec<String> {
        let mut rng = Rng::stream(seed, 0x5EA2C4);
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(count);
        let mut tries = 0;
        while out.len() < count && tries < count * 50 + 1000 {
            tries += 1;
            let p = if rng.percent(broad_percent) {
                rng.pick(BROAD).to_owned()
            } else if rng.percent(loose_percent * 100 / (100 - broad_percent).max(1)) {
                self.loose(&mut rng)
            } else {
                self.selective(&mut rng)
            };
            if p.len() >= 3 && !p.contains(' ') && seen.insert(p.clone()) {
                out.push(p);
            }
        }
        out
    }

    /// Artist and the start of the title, as a user types "artist - song" (or the whole
    /// name without its extension when there is no artist).
    fn artist_title(e: &Entry) -> String {
        if e.artist.0 == e.artist.1 {
            e.name[..e.name.rfind('.').unwrap_or(e.name.len())].to_owned()
        } else {
            let end = (e.title.0 as usize + 4).min(e.title.1 as usize);
            e.name[e.artist.0 as usize..end].to_owned()
        }
    }

    fn selective(&self, rng: &mut Rng) -> String {
        let e = &self.entries[self.draw(rng)];
        let artist = e.part(e.artist);
        let album = e.part(e.album);
        let title = e.part(e.title);
        // A one-word title or album ("Love") is no search anyone makes alone: it becomes
        // the artist and the start of the title.
        let several = |s: &str| s.contains('_');
        match rng.below(100) {
            0..=32 if !artist.is_empty() => artist.to_owned(),
            33..=42 if several(album) => album.to_owned(),
            0..=73 if several(title) => title.to_owned(),
            0..=84 => Self::artist_title(e),
            // The wrong case: finds nothing (search is case-sensitive).
            _ => {
                let base = if artist.is_empty() { title } else { artist };
                base.to_lowercase()
            }
        }
    }

    fn loose(&self, rng: &mut Rng) -> String {
        let e = &self.entries[self.draw(rng)];
        let title = e.part(e.title);
        if rng.percent(75) {
            // One word of the title (at least five letters).
            let words: Vec<&str> = title.split('_').filter(|w| w.len() >= 5).collect();
            if !words.is_empty() {
                return words[rng.index(words.len())].to_owned();
            }
        }
        // Five letters from inside a word.
        let words: Vec<&str> = title.split('_').filter(|w| w.len() >= 7).collect();
        if words.is_empty() {
            return Self::artist_title(e);
        }
        let w = words[rng.index(words.len())];
        let from = 1 + rng.index(w.len() - 6);
        w[from..from + 5].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_well_formed() {
        let a = Catalog::new(7, 500);
        let b = Catalog::new(7, 500);
        assert_eq!(
            a.entries.iter().map(|e| &e.name).collect::<Vec<_>>(),
            b.entries.iter().map(|e| &e.name).collect::<Vec<_>>()
        );
        for e in &a.entries {
            assert!(!e.name.contains(' '), "{}", e.name);
            assert!(e.name.is_ascii(), "{}", e.name);
            assert!(e.size > 0);
        }
        let p = a.patterns(7, 200, 2, 5);
        assert_eq!(p, b.patterns(7, 200, 2, 5));
        assert!(p.len() >= 150, "{}", p.len());
        assert!(p.iter().all(|p| p.len() >= 3 && !p.contains(' ')));
        let c = Catalog::new(8, 500);
        assert_ne!(a.entries[0].name, c.entries[0].name);
    }
}
