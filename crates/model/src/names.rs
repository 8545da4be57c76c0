//! The rule every name follows: 1–128 characters, no `/`, no control characters, no leading
//! or trailing spaces. Names appear in REST paths, file names and log lines.

/// Why `name` is not a valid name, or `None` if it is.
pub fn name_problem(name: &str) -> Option<String> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= 128
        && !name.contains('/')
        && !name.chars().any(char::is_control)
        && name.trim() == name;
    (!ok).then(|| format!("expected a name (1-128 characters, no '/', no leading or trailing spaces), found {name:?}"))
}

/// Why `name` cannot be the name of an object of the running system (a user, zone, service
/// or instance: it appears in URLs, file names and environment variables), or `None`: 1–128
/// characters from `a-z`, `A-Z`, `0-9`, `-`, `_`, `.`.
pub fn api_name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!ok).then(|| format!("{name:?} is not valid; expected 1–128 characters from a-z, A-Z, 0-9, '-', '_', '.'"))
}

/// Turns arbitrary text (a dataset label) into a valid name: `/` becomes `-`, control
/// characters are dropped, spaces trimmed, length capped; empty text becomes `unnamed`.
pub fn sanitize(text: &str) -> String {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).map(|c| if c == '/' { '-' } else { c }).collect();
    let trimmed: String = cleaned.trim().chars().take(128).collect();
    let trimmed = trimmed.trim_end().to_string();
    if trimmed.is_empty() {
        "unnamed".to_string()
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_names_are_valid() {
        for raw in ["Southfield/Detroit", "  a ", "", "\u{7}x", &"n".repeat(300)] {
            assert_eq!(name_problem(&sanitize(raw)), None, "{raw:?}");
        }
        assert_eq!(sanitize("Southfield/Detroit"), "Southfield-Detroit");
        assert!(name_problem("a/b").is_some());
    }
}
