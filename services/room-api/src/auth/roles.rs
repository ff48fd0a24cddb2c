//! Who a verified caller is beyond their own rooms (docs/configuration.md,
//! "Identities"):
//!
//! - a token from the cluster's service-account issuer is an internal service;
//! - a person's token is an operator or a service when the roles claim the
//!   identity provider sets (`AUTH_ROLES_CLAIM`) holds the configured role;
//! - the subject lists (`AUTH_*_SUBJECTS`) still apply to people's tokens, for
//!   the local run's HS256 tokens, which carry no roles.

use serde_json::{Map, Value};

/// The roles claim read from a token, at most this many entries.
const MAX_ROLES: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct RoleRules {
    /// The claim's name (`roles`, `scope`, `https://example.com/roles`) or a
    /// dotted path to it (`realm_access.roles`).
    pub claim: String,
    pub operator_role: Option<String>,
    pub service_role: Option<String>,
    pub operator_subjects: Vec<String>,
    pub service_subjects: Vec<String>,
}

/// What a person's verified token allows beyond their own rooms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants {
    pub operator: bool,
    pub service: bool,
}

impl RoleRules {
    /// Whether a role can come from a claim (else only the subject lists grant).
    pub fn from_claims(&self) -> bool {
        self.operator_role.is_some() || self.service_role.is_some()
    }

    /// `claims`: the token's, when [`RoleRules::from_claims`].
    pub fn grants(&self, subject: &str, claims: Option<&Map<String, Value>>) -> Grants {
        let roles = claims.map(|c| roles(c, &self.claim)).unwrap_or_default();
        let granted = |role: &Option<String>, subjects: &[String]| {
            subjects.iter().any(|s| s == subject)
                || role.as_deref().is_some_and(|role| roles.contains(&role))
        };
        Grants {
            operator: granted(&self.operator_role, &self.operator_subjects),
            service: granted(&self.service_role, &self.service_subjects),
        }
    }
}

/// Whether the service account a token names (`sub`:
/// `system:serviceaccount:<namespace>:<name>`) is one of `allowed` (`namespace:name`
/// or `namespace:*`).
pub fn service_account_allowed(subject: &str, allowed: &[String]) -> bool {
    let Some((namespace, name)) = subject
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    else {
        return false;
    };
    allowed.iter().any(|entry| {
        entry
            .split_once(':')
            .is_some_and(|(ns, n)| ns == namespace && (n == name || n == "*"))
    })
}

/// The roles in `claim`: an array of strings, or one string of space-separated
/// values (as OAuth's `scope`). The claim is looked up by its whole name first,
/// since namespaced claim names contain dots, then as a dotted path.
fn roles<'a>(claims: &'a Map<String, Value>, claim: &str) -> Vec<&'a str> {
    let value = claims.get(claim).or_else(|| {
        let mut parts = claim.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |value, part| value.as_object()?.get(part))
    });
    match value {
        Some(Value::String(s)) => s.split_whitespace().take(MAX_ROLES).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .take(MAX_ROLES)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(claim: &str) -> RoleRules {
        RoleRules {
            claim: claim.to_owned(),
            operator_role: Some("whereby-operator".to_owned()),
            service_role: Some("whereby-service".to_owned()),
            operator_subjects: vec!["root".to_owned()],
            service_subjects: vec![],
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn roles_come_from_an_array_a_scope_string_a_namespaced_name_or_a_path() {
        let operator = Grants {
            operator: true,
            service: false,
        };
        let service = Grants {
            operator: false,
            service: true,
        };
        let cases = [
            (
                "roles",
                json!({"roles": ["a", "whereby-operator"]}),
                operator,
            ),
            ("scope", json!({"scope": "read whereby-service"}), service),
            (
                "https://example.com/roles",
                json!({"https://example.com/roles": ["whereby-service"]}),
                service,
            ),
            (
                "realm_access.roles",
                json!({"realm_access": {"roles": ["whereby-operator"]}}),
                operator,
            ),
        ];
        for (claim, token, expected) in cases {
            assert_eq!(
                rules(claim).grants("alice", Some(&claims(token))),
                expected,
                "{claim}"
            );
        }
    }

    #[test]
    fn a_role_must_match_whole_and_other_shapes_grant_nothing() {
        let none = Grants::default();
        for token in [
            json!({"roles": "whereby-operator-x"}),
            json!({"roles": ["WHEREBY-OPERATOR"]}),
            json!({"roles": {"whereby-operator": true}}),
            json!({"roles": [["whereby-operator"]]}),
            json!({"groups": ["whereby-operator"]}),
            json!({}),
        ] {
            assert_eq!(
                rules("roles").grants("alice", Some(&claims(token.clone()))),
                none,
                "{token}"
            );
        }
        // The subject lists still apply.
        assert!(rules("roles").grants("root", None).operator);
    }

    #[test]
    fn service_accounts_are_allowed_by_namespace_and_name() {
        let allowed = vec!["pipeline:transcriber".to_owned(), "tools:*".to_owned()];
        for (subject, ok) in [
            ("system:serviceaccount:pipeline:transcriber", true),
            ("system:serviceaccount:tools:anything", true),
            ("system:serviceaccount:pipeline:other", false),
            ("system:serviceaccount:other:transcriber", false),
            ("system:serviceaccount:pipeline", false),
            ("pipeline:transcriber", false),
            ("system:serviceaccount:pipeline:transcriber:x", false),
        ] {
            assert_eq!(service_account_allowed(subject, &allowed), ok, "{subject}");
        }
    }

    #[test]
    fn no_configured_role_is_granted_by_any_claim() {
        let mut r = rules("roles");
        r.operator_role = None;
        assert!(
            !r.grants("alice", Some(&claims(json!({"roles": [""]}))))
                .operator
        );
    }
}
