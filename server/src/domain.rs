//! Domain newtypes that are valid by construction: a value of one of these types has passed its
//! checks, so the code after the boundary does not check again.

use std::fmt;

use app::error::AppError;

/// A login name: 2–63 characters of `a-z 0-9 - _ .`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        let ok_len = (2..=63).contains(&s.len());
        let ok_start = s.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
        if ok_len && ok_start && ok_chars {
            Ok(Username(s.to_owned()))
        } else {
            Err(AppError::invalid(
                "username",
                format!(
                    "`{s}` is not a valid username: use 2–63 lowercase letters, digits, `-`, `_` or `.`, starting with a letter"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant identifier: 2–63 characters of `a-z 0-9 -`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        let ok_len = (2..=63).contains(&s.len());
        let ok_start = s.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok_len && ok_start && ok_chars && !s.ends_with('-') {
            Ok(TenantSlug(s.to_owned()))
        } else {
            Err(AppError::invalid(
                "slug",
                format!(
                    "`{s}` is not a valid tenant slug: use 2–63 lowercase letters, digits or `-`, starting with a letter and not ending with `-`"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: 1–200 characters with no control characters; surrounding space removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
            return Err(AppError::invalid(
                field,
                format!("`{field}` must be 1–200 characters without control characters"),
            ));
        }
        Ok(DisplayName(s.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A password: 12–1024 characters. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The shortest accepted password, in characters.
    pub const MIN_CHARS: usize = 12;

    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(AppError::invalid(
                "password",
                format!(
                    "the password is too short: use at least {} characters",
                    Self::MIN_CHARS
                ),
            ));
        }
        if raw.len() > 1024 {
            return Err(AppError::invalid(
                "password",
                "the password is too long: use at most 1024 bytes",
            ));
        }
        Ok(Password(raw.to_owned()))
    }

    /// For demo data only, whose passwords are documented and may be short.
    pub(crate) fn demo(raw: &str) -> Self {
        Password(raw.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A secret from the configuration (the metrics token, a key passphrase): compared and used,
/// never printed (`Debug` shows `Secret(***)`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a non-empty value; an empty one is no secret at all.
    pub fn new(raw: impl Into<String>) -> Option<Self> {
        let raw = raw.into();
        (!raw.is_empty()).then_some(Secret(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A token name: 1–100 characters without control characters.
pub fn token_name(raw: &str) -> Result<String, AppError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "name",
            "the token name must be 1–100 characters without control characters",
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked() {
        assert!(Username::parse("partner-acme").is_ok());
        assert!(Username::parse("a").is_err());
        assert!(Username::parse("Admin").is_err());
        assert!(Username::parse("1abc").is_err());
        assert!(Username::parse("a b").is_err());
    }

    #[test]
    fn slugs_are_checked() {
        assert!(TenantSlug::parse("acme").is_ok());
        assert!(TenantSlug::parse("acme-").is_err());
        assert!(TenantSlug::parse("ac_me").is_err());
    }

    #[test]
    fn passwords_never_print() {
        let p = Password::parse("correct horse battery").unwrap_or_else(|_| Password::demo("x"));
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert!(Password::parse("short").is_err());
        let s = Secret::new("metrics-token-value").unwrap_or_else(|| Secret("x".into()));
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(Secret::new("").is_none());
    }
}
