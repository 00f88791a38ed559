//! Token scopes: the challenge's scopes merged with the ones an operation needs.

/// The scopes to ask a token for: those of the registry's challenge (when it named any), with
/// the client's own `needed` scopes merged in, so that one token serves the whole operation
/// (a challenge to a `HEAD` may name only `pull` where a push follows; a mount's challenge may
/// leave out the source repository). Scopes for the same resource merge their actions.
/// Space-separated, challenge order first.
pub(crate) fn merge_scopes(challenge: Option<&str>, needed: &str) -> String {
    // (resource type and name, actions); scopes that do not parse are kept verbatim.
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    let all = challenge
        .unwrap_or_default()
        .split_ascii_whitespace()
        .chain(needed.split_ascii_whitespace());
    for scope in all {
        let Some((resource, actions)) = scope
            .rsplit_once(':')
            .filter(|(resource, _)| resource.contains(':'))
        else {
            if !merged
                .iter()
                .any(|(known, actions)| actions.is_empty() && known == scope)
            {
                merged.push((scope.to_owned(), Vec::new()));
            }
            continue;
        };
        let actions = actions.split(',').filter(|action| !action.is_empty());
        match merged
            .iter_mut()
            .find(|(known, known_actions)| known == resource && !known_actions.is_empty())
        {
            Some((_, known_actions)) => {
                for action in actions {
                    if !known_actions.iter().any(|known| known == action) {
                        known_actions.push(action.to_owned());
                    }
                }
            }
            None => merged.push((resource.to_owned(), actions.map(str::to_owned).collect())),
        }
    }
    merged
        .into_iter()
        .map(|(resource, actions)| {
            if actions.is_empty() {
                resource
            } else {
                format!("{resource}:{}", actions.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_merge_by_resource() {
        let check = |challenge: Option<&str>, needed: &str, expected: &str| {
            assert_eq!(
                merge_scopes(challenge, needed),
                expected,
                "{challenge:?} + {needed:?}"
            );
        };
        check(None, "repository:a:pull", "repository:a:pull");
        check(
            Some("repository:a:pull"),
            "repository:a:pull",
            "repository:a:pull",
        );
        check(
            Some("repository:a:pull"),
            "repository:a:pull,push",
            "repository:a:pull,push",
        );
        check(
            Some("repository:a:push,pull"),
            "repository:a:pull,push repository:b:pull",
            "repository:a:push,pull repository:b:pull",
        );
        check(
            Some("repository:other:pull"),
            "repository:a:pull",
            "repository:other:pull repository:a:pull",
        );
        check(
            Some("registry:catalog:*"),
            "repository:a:pull",
            "registry:catalog:* repository:a:pull",
        );
        // A scope without resource type and actions is kept verbatim.
        check(Some("odd"), "repository:a:pull", "odd repository:a:pull");
    }
}
