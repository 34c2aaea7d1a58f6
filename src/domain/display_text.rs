//! Text a client supplies and the consent page shows (its name, its URIs): characters
//! that change how the text around them is displayed — bidirectional overrides and
//! isolates (U+202A–U+202E, U+2066–U+2069), zero-width and other format characters
//! (Unicode category Cf), control characters (Cc) and line or paragraph separators —
//! let a client show one name and be another (`Evil\u{202E}ppA dooG` reads "Good
//! App" backwards). Registration refuses them; the page strips them from clients
//! stored before the rule.

/// Whether `c` is a control (Cc), format (Cf) or line/paragraph separator (Zl, Zp)
/// character. Cf is listed as of Unicode 15.1 (the standard library has no category
/// table); a later addition is caught by the page's escaping at worst, never shown
/// as markup.
pub fn is_hidden_control(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1F}'
            | '\u{7F}'..='\u{9F}'
            | '\u{AD}'
            | '\u{600}'..='\u{605}'
            | '\u{61C}'
            | '\u{6DD}'
            | '\u{70F}'
            | '\u{890}'..='\u{891}'
            | '\u{8E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// The first hidden control character in `text`, if any.
pub fn find_hidden_control(text: &str) -> Option<char> {
    text.chars().find(|c| is_hidden_control(*c))
}

/// `text` without its hidden control characters.
pub fn strip_hidden_controls(text: &str) -> String {
    text.chars().filter(|c| !is_hidden_control(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_zero_width_and_controls_are_hidden_controls() {
        for c in [
            '\u{202E}',
            '\u{202A}',
            '\u{2066}',
            '\u{2069}',
            '\u{200B}',
            '\u{200D}',
            '\u{FEFF}',
            '\u{0}',
            '\n',
            '\u{1B}',
            '\u{85}',
            '\u{2028}',
            '\u{E0041}',
            '\u{61C}',
        ] {
            assert!(is_hidden_control(c), "{:04X}", c as u32);
        }
        for c in ['a', 'É', ' ', '-', '日', '\u{1F600}', '\u{2070}'] {
            assert!(!is_hidden_control(c), "{:04X}", c as u32);
        }
    }

    #[test]
    fn stripping_keeps_the_visible_text() {
        assert_eq!(
            strip_hidden_controls("Evil\u{202E}ppA dooG"),
            "EvilppA dooG"
        );
        assert_eq!(find_hidden_control("Claude Code"), None);
        assert_eq!(find_hidden_control("a\u{200B}b"), Some('\u{200B}'));
    }
}
