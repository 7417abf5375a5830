//! Input checks shared by several aggregates. Each returns the `Invalid` error naming the field.

use crate::error::Invalid;

/// A required text of at most `max` characters, not blank.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::new(field, "must not be blank"));
    }
    if value.chars().count() > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// A slug: 1 to `max` characters of `[a-z0-9-]`.
pub fn slug(field: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.is_empty() || value.len() > max {
        return Err(Invalid::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Invalid::new(field, "may contain only a-z, 0-9 and '-'"));
    }
    Ok(())
}

/// A colour as `#rrggbb`.
pub fn hex_colour(field: &'static str, value: &str) -> Result<(), Invalid> {
    let ok = value.len() == 7
        && value.starts_with('#')
        && value[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(field, "must be a colour as #rrggbb"))
    }
}

/// An absolute http(s) URL without whitespace and without credentials in it (`user:pass@`):
/// URLs end up in events, which keep what they are given forever.
pub fn url(field: &'static str, value: &str) -> Result<(), Invalid> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let Some(rest) = rest.filter(|r| !r.is_empty() && !value.chars().any(char::is_whitespace))
    else {
        return Err(Invalid::new(field, "must be an absolute http(s) URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(Invalid::new(field, "must be an absolute http(s) URL"));
    }
    if authority.contains('@') {
        return Err(Invalid::new(
            field,
            "must not carry credentials: store them as secrets",
        ));
    }
    Ok(())
}

/// A course key or course-run id: 1 to 255 characters, no whitespace.
pub fn content_key(field: &'static str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() || value.len() > 255 || value.chars().any(char::is_whitespace) {
        return Err(Invalid::new(
            field,
            "must be 1 to 255 characters without whitespace",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_lowercase_digits_and_dashes_only() {
        assert!(slug("slug", "acme-01", 30).is_ok());
        assert_eq!(slug("slug", "Acme", 30).unwrap_err().field, "slug");
        assert!(slug("slug", "", 30).is_err());
        assert!(slug("slug", &"a".repeat(31), 30).is_err());
        assert!(slug("slug", "a_b", 30).is_err());
    }

    #[test]
    fn colours_must_be_hash_and_six_hex_digits() {
        assert!(hex_colour("c", "#00aaFF").is_ok());
        assert!(hex_colour("c", "00aaff").is_err());
        assert!(hex_colour("c", "#00aaf").is_err());
        assert!(hex_colour("c", "#00aafg").is_err());
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(url("u", "https://example.com/logo.png").is_ok());
        assert!(url("u", "ftp://example.com").is_err());
        assert!(url("u", "https://").is_err());
        assert!(url("u", "https://a b").is_err());
        assert!(url("u", "https://example.com/path?q=a@b").is_ok());
        assert_eq!(
            url("u", "https://key:secret@lrs.example.com/xapi")
                .unwrap_err()
                .reason,
            "must not carry credentials: store them as secrets"
        );
    }

    #[test]
    fn text_rejects_blank_and_long_values() {
        assert!(text("name", "Acme", 255).is_ok());
        assert!(text("name", "  ", 255).is_err());
        assert!(text("name", &"x".repeat(256), 255).is_err());
    }
}
