//! The language the user is spoken to in.
//!
//! Everything the client tells its user comes from the core as plain data ([`ClientEvent`],
//! its errors and failure reasons); [`crate::text`] renders it in a [`Lang`] through
//! [`Localize`]. The core never looks at the environment: [`crate::lang_from_env`] reads
//! the locale ([`Lang::from_locale`] with the values of `LC_ALL`, `LC_MESSAGES` and
//! `LANG`) and hands the `Lang` to whatever renders.
//!
//! [`ClientEvent`]: napshare_core::client::ClientEvent

use std::fmt;

/// A language napshare speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Lang {
    /// English, the default.
    #[default]
    En,
    /// Brazilian Portuguese, the seed's users' language.
    Pt,
}

impl Lang {
    /// The language of the POSIX locale given by the values of `LC_ALL`, `LC_MESSAGES` and
    /// `LANG` (unset variables as `None`): the first one set and not empty decides, as for
    /// any program's messages; a locale whose language is `pt` (`pt_BR.UTF-8`, `pt_PT`,
    /// `pt`) gives Portuguese, anything else (`C`, `en_US.UTF-8`, nothing) English.
    pub fn from_locale(
        lc_all: Option<&str>,
        lc_messages: Option<&str>,
        lang: Option<&str>,
    ) -> Self {
        let locale = [lc_all, lc_messages, lang]
            .into_iter()
            .flatten()
            .find(|v| !v.is_empty())
            .unwrap_or("");
        let language = locale
            .split(['_', '.', '@', '-'])
            .next()
            .unwrap_or_default();
        if language.eq_ignore_ascii_case("pt") {
            Self::Pt
        } else {
            Self::En
        }
    }

    /// `en` in English, `pt` in Portuguese.
    pub fn pick<T>(self, en: T, pt: T) -> T {
        match self {
            Self::En => en,
            Self::Pt => pt,
        }
    }
}

/// Something the user is told, which renders itself in a [`Lang`].
pub trait Localize {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result;

    /// `self` as text in `lang`: `format!("{}", event.in_lang(Lang::Pt))`.
    fn in_lang(&self, lang: Lang) -> InLang<'_, Self> {
        InLang(self, lang)
    }
}

/// A [`Localize`] value with its language, for `Display`.
pub struct InLang<'a, T: ?Sized>(&'a T, Lang);

impl<T: Localize + ?Sized> fmt::Display for InLang<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.localize(self.1, f)
    }
}

/// A size people read at a glance: `512 B`, `4.2 MiB` (`4,2 MiB` in Portuguese, which
/// writes a decimal comma). Below 1 KiB it is exact; above, rounded to one decimal.
pub fn human_size(bytes: u64, lang: Lang) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Past 1023.95 the one-decimal rounding would print 1024.0 of this unit.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1} {}", UNITS[unit]);
    match lang {
        Lang::En => text,
        Lang::Pt => text.replace('.', ","),
    }
}

/// Whether [`human_size`] rounds `bytes` (the exact count is then worth showing too).
pub fn is_rounded(bytes: u64) -> bool {
    bytes >= 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_locale_variable_set_decides() {
        let pt = Some("pt_BR.UTF-8");
        assert_eq!(Lang::from_locale(None, None, pt), Lang::Pt);
        assert_eq!(Lang::from_locale(None, None, Some("pt")), Lang::Pt);
        assert_eq!(Lang::from_locale(None, None, Some("pt_PT@euro")), Lang::Pt);
        assert_eq!(Lang::from_locale(Some("C"), None, pt), Lang::En);
        assert_eq!(Lang::from_locale(None, Some("en_US.UTF-8"), pt), Lang::En);
        assert_eq!(Lang::from_locale(pt, Some("C"), Some("C")), Lang::Pt);
        // Empty counts as unset.
        assert_eq!(Lang::from_locale(Some(""), Some(""), pt), Lang::Pt);
        assert_eq!(Lang::from_locale(None, None, None), Lang::En);
        assert_eq!(Lang::from_locale(None, None, Some("C.UTF-8")), Lang::En);
        // Only the language part counts: `ptx` is not Portuguese.
        assert_eq!(Lang::from_locale(None, None, Some("ptx_XX")), Lang::En);
    }

    #[test]
    fn sizes_read_at_a_glance() {
        assert_eq!(human_size(0, Lang::En), "0 B");
        assert_eq!(human_size(1023, Lang::En), "1023 B");
        assert_eq!(human_size(1024, Lang::En), "1.0 KiB");
        assert_eq!(human_size(4_404_019, Lang::En), "4.2 MiB");
        assert_eq!(human_size(4_404_019, Lang::Pt), "4,2 MiB");
        assert_eq!(human_size(1024 * 1024 - 1, Lang::En), "1.0 MiB");
        assert_eq!(human_size(3 << 30, Lang::En), "3.0 GiB");
        assert_eq!(human_size(u64::MAX, Lang::En), "16.0 EiB");
        assert!(!is_rounded(1023) && is_rounded(1024));
    }
}
