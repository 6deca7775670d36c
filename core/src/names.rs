//! File names that are safe to use as one path component inside a folder.

/// Why a name cannot be shared or downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadName {
    Empty,
    Dots,
    Separator,
    Control,
}

/// Checks that `name` is a single plain file name: joined onto a folder it stays inside
/// that folder, and it fits on one protocol line.
pub fn check_file_name(name: &str) -> Result<(), BadName> {
    if name.is_empty() {
        return Err(BadName::Empty);
    }
    if name == "." || name == ".." {
        return Err(BadName::Dots);
    }
    if name.contains(['/', '\\']) {
        return Err(BadName::Separator);
    }
    if name.chars().any(char::is_control) {
        return Err(BadName::Control);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_pass() {
        for ok in ["a.txt", "my file.mp3", "ação.ogg", "...", ".hidden"] {
            assert_eq!(check_file_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/etc/passwd",
            "a\\b",
            "a\0b",
            "a\nb",
            "C:\\x",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
