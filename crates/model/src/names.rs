//! The one rule every name follows, and the looser rule for free labels.
//!
//! **Names** — of users, services, components, ports, channels' ends, zones, hosts, user
//! regions, configurations, workload tags, hardware profiles, proximity classes and
//! documents — are DNS labels as RFC 1123 §2.1 defines a host name label: 1 to 63
//! characters from lower-case `a`–`z`, `0`–`9` and `-`, beginning and ending with a letter
//! or digit. So `.`, `..`, `/`, `_`, spaces, control characters and upper case are never part
//! of a name. Names appear in REST paths, file and directory names, environment variable
//! names (`ZONAL_PEER_<COMPONENT>` upper-cases them, so `web` and `Web` would collide) and DNS;
//! a label is safe in all of them, and, lower-case only, has one spelling (DNS compares labels
//! case-insensitively). This is also the rule Kubernetes applies to most of its object names.
//!
//! **Labels** — free text that describes rather than names (a zone's `tier`, a hardware
//! profile's `arch`, host features) — are 1–128 characters without `/`, control characters or
//! leading and trailing spaces.

/// The longest name (RFC 1123 label).
pub const MAX_NAME_LEN: usize = 63;

/// Why `name` is not a valid name (an RFC 1123 DNS label, lower case), or `None` if it is.
pub fn name_problem(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let why = if name.is_empty() {
        "it is empty".to_string()
    } else if name.chars().count() > MAX_NAME_LEN {
        format!("it has {} characters", name.chars().count())
    } else if let Some(c) = name.chars().find(|c| !c.is_ascii() || !allowed(&(*c as u8))) {
        if c.is_ascii_uppercase() {
            format!("it has the upper-case letter {c:?} (names are lower case)")
        } else {
            format!("it has the character {c:?}")
        }
    } else if bytes.first() == Some(&b'-') || bytes.last() == Some(&b'-') {
        "it begins or ends with '-'".to_string()
    } else {
        return None;
    };
    Some(format!(
        "expected a name (a DNS label: 1-{MAX_NAME_LEN} characters from a-z, 0-9 and '-', beginning and ending with a letter or digit), found {:?}: {why}",
        shorten(name)
    ))
}

/// Why `name` cannot be the name of an object of the running system (a user, zone, service,
/// …), or `None`: the same rule as [`name_problem`].
pub fn api_name_problem(name: &str) -> Option<String> {
    name_problem(name)
}

/// Why `label` is not a valid free label (a tier, an architecture, a feature value), or
/// `None`: 1–128 characters, no `/`, no control characters, no leading or trailing spaces.
pub fn label_problem(label: &str) -> Option<String> {
    let ok = !label.trim().is_empty()
        && label.chars().count() <= 128
        && !label.contains('/')
        && !label.chars().any(char::is_control)
        && label.trim() == label;
    (!ok).then(|| {
        format!("expected a label (1-128 characters, no '/', no control characters, no leading or trailing spaces), found {:?}", shorten(label))
    })
}

/// At most 80 characters of `text`, for error messages.
fn shorten(text: &str) -> String {
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text.to_string()
    }
}

/// Turns arbitrary text (a dataset label such as `"Southfield/Detroit"` or `"São Paulo"`) into
/// a valid name: lower case, every run of other characters becomes one `-`, no `-` at either
/// end, at most `MAX_NAME_LEN - 8` characters (room for a `-<n>` suffix that makes it
/// unique); text with no letter or digit becomes `unnamed`.
pub fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(MAX_NAME_LEN - 8);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "unnamed".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_dns_labels() {
        for ok in ["a", "web", "antwerp-edge", "x86-64", "0", "a-b-c", &"n".repeat(63)] {
            assert_eq!(name_problem(ok), None, "{ok:?}");
        }
        for bad in
            ["", ".", "..", "a/b", "a.b", "Web", "a_b", "a b", " a", "-a", "a-", "a\u{7}", "é", &"n".repeat(64), "a\n"]
        {
            let p = name_problem(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(p.contains("DNS label"), "{p}");
        }
        assert!(name_problem("Web").is_some_and(|p| p.contains("upper-case letter 'W'")));
        assert!(name_problem(&"n".repeat(64)).is_some_and(|p| p.contains("64 characters")));
        assert_eq!(api_name_problem(".."), name_problem(".."));
    }

    #[test]
    fn labels_are_looser() {
        for ok in ["x86_64", "nvidia-t4", "Edge Tier"] {
            assert_eq!(label_problem(ok), None, "{ok:?}");
        }
        for bad in ["", " a", "a/b", "a\u{0}", &"n".repeat(129)] {
            assert!(label_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn sanitized_names_are_valid() {
        for raw in ["Southfield/Detroit", "  a ", "", "\u{7}x", &"n".repeat(300), "São Paulo", "--", "A_B"] {
            assert_eq!(name_problem(&sanitize(raw)), None, "{raw:?} → {:?}", sanitize(raw));
            assert_eq!(name_problem(&format!("{}-99", sanitize(raw))), None, "{raw:?} with a suffix");
        }
        assert_eq!(sanitize("Southfield/Detroit"), "southfield-detroit");
        assert_eq!(sanitize("São Paulo"), "s-o-paulo");
        assert_eq!(sanitize("--"), "unnamed");
    }
}
