//! Scrubbing what a remote system answered before it goes into an event: events are kept
//! forever and read by auditors, so an excerpt holds no credential and no email address, and
//! stays short.
//!
//! The rules, applied word by word (a word is a run of letters, digits and `_-.=+@%`):
//! - a word with an `@` is an email address, or close enough: `[email]`;
//! - the word after a credential-looking word (`token`, `bearer`, `secret`, `password`,
//!   `authorization`, `sessionToken`, `access_token`, ...) is a credential: `[redacted]`;
//! - a word of 32 characters or more that is not a UUID looks like a key or a token:
//!   `[redacted]` (UUIDs are ids the remote assigned, useful and harmless);
//! - control characters and runs of white space become one space;
//! - the result is cut at [`EXCERPT_MAX`] characters, marked with `…`.

/// The longest excerpt, in characters.
pub const EXCERPT_MAX: usize = 300;

/// Words whose next word is a credential. Compared in lower case, with `_` and `-` removed.
const CREDENTIAL_WORDS: &[&str] = &[
    "token",
    "accesstoken",
    "refreshtoken",
    "sessiontoken",
    "idtoken",
    "bearer",
    "basic",
    "jwt",
    "secret",
    "clientsecret",
    "password",
    "authorization",
    "apikey",
    "assertion",
];

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '=' | '+' | '@' | '%')
}

fn is_uuid(word: &str) -> bool {
    uuid::Uuid::try_parse(word).is_ok()
}

fn is_credential_word(word: &str) -> bool {
    let folded: String = word
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    CREDENTIAL_WORDS.contains(&folded.as_str())
}

/// The scrubbed excerpt of `text` (see the module doc); `None` when nothing is left.
pub fn scrub(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut word = String::new();
    let mut after_credential_word = false;
    let flush = |word: &mut String, out: &mut String, after: &mut bool| {
        if word.is_empty() {
            return;
        }
        let credential_word = is_credential_word(word);
        if word.contains('@') {
            out.push_str("[email]");
        } else if (*after && !credential_word) || (word.chars().count() >= 32 && !is_uuid(word)) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        // In `access_token token abc`, both words announce the credential that follows.
        *after = credential_word;
        word.clear();
    };
    for c in text.chars() {
        if is_word_char(c) {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out, &mut after_credential_word);
        if c.is_whitespace() || c.is_control() {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    flush(&mut word, &mut out, &mut after_credential_word);
    let out = out.trim();
    if out.is_empty() {
        return None;
    }
    if out.chars().count() <= EXCERPT_MAX {
        return Some(out.to_string());
    }
    let mut cut: String = out.chars().take(EXCERPT_MAX - 1).collect();
    cut.push('…');
    Some(cut)
}
