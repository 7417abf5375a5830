//! Who is calling: JWT authentication and the edx-rbac style roles every route checks.
//!
//! A request carries `Authorization: JWT <token>` (the scheme edx-platform's clients send) or
//! `Bearer <token>`. Tokens are HS256 with a shared secret or RS256 with a public key; expiry
//! and (when configured) issuer and audience are checked. The username comes from
//! `preferred_username`; roles from the `roles` claim, in edx-rbac form
//! (`enterprise_admin:<customer uuid>`, `enterprise_learner:<customer uuid>`,
//! `enterprise_openedx_operator:*`) plus the service roles `lms_service`, `channel_worker` and
//! `auditor`. edX's `administrator: true` (staff) counts as an operator.
//!
//! Handlers take a [`Principal`] and ask it for what the route needs; a missing or bad token is
//! a 401, a valid token without the role a 403.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::ids::CustomerId;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

/// Namespace of the pseudonymous actor ids written into event metadata.
const ACTOR_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_42d3_95a7_4f0e_8d21_5b7e_90a4_c3e1);

/// One role from the `roles` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// `enterprise_admin:<uuid>`, or `enterprise_admin:*` for every customer.
    Admin(Scope),
    /// `enterprise_learner:<uuid>`.
    Learner(Scope),
    /// `enterprise_openedx_operator:*`: staff of the platform, every customer.
    Operator,
    /// The LMS pushing facts (learners, enrollments, grades, content).
    LmsService,
    /// Transmitter workers and the tools that watch them.
    ChannelWorker,
    /// Reads consent history and the log, changes nothing.
    Auditor,
}

/// The customers a role applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Customer(CustomerId),
}

impl Scope {
    fn covers(self, customer: CustomerId) -> bool {
        match self {
            Self::All => true,
            Self::Customer(c) => c == customer,
        }
    }
}

impl Role {
    /// Parses one entry of the claim; unknown roles are ignored (edx-rbac carries roles of
    /// other services too).
    pub fn parse(text: &str) -> Option<Self> {
        let (name, context) = match text.split_once(':') {
            Some((name, context)) => (name, Some(context)),
            None => (text, None),
        };
        let scope = || match context? {
            "*" => Some(Scope::All),
            uuid => Uuid::parse_str(uuid)
                .ok()
                .map(|id| Scope::Customer(CustomerId(id))),
        };
        match name {
            "enterprise_admin" => scope().map(Role::Admin),
            "enterprise_learner" => scope().map(Role::Learner),
            "enterprise_openedx_operator" => Some(Role::Operator),
            "lms_service" => Some(Role::LmsService),
            "channel_worker" => Some(Role::ChannelWorker),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

/// The claims the service reads.
#[derive(Debug, Deserialize)]
struct Claims {
    preferred_username: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    administrator: bool,
}

/// Checks tokens: the key, the algorithm and the claims to validate.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

/// Why the verifier could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("give exactly one of --jwt-secret or --jwt-public-key")]
    NoKey,
    #[error("the JWT public key is not an RSA public key in PEM form: {0}")]
    BadPublicKey(jsonwebtoken::errors::Error),
}

impl Verifier {
    /// HS256 with `secret`, or RS256 with a PEM public key.
    pub fn new(
        secret: Option<&str>,
        public_key_pem: Option<&[u8]>,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Self, KeyError> {
        let (key, algorithm) = match (secret, public_key_pem) {
            (Some(secret), None) => (
                DecodingKey::from_secret(secret.as_bytes()),
                Algorithm::HS256,
            ),
            (None, Some(pem)) => (
                DecodingKey::from_rsa_pem(pem).map_err(KeyError::BadPublicKey)?,
                Algorithm::RS256,
            ),
            _ => return Err(KeyError::NoKey),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 30;
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
            validation.set_required_spec_claims(&["exp", "iss"]);
        }
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(Self { key, validation })
    }

    /// The principal a token stands for.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| ApiError::Unauthorized(format!("the token was refused: {e}")))?;
        let claims = data.claims;
        let username = claims
            .preferred_username
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the token has no preferred_username claim".into())
            })?;
        let mut roles: Vec<Role> = claims.roles.iter().filter_map(|r| Role::parse(r)).collect();
        if claims.administrator {
            roles.push(Role::Operator);
        }
        Ok(Principal { username, roles })
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub username: String,
    pub roles: Vec<Role>,
}

impl Principal {
    /// A pseudonymous id for event metadata: the log is permanent, a username is personal.
    pub fn actor(&self) -> String {
        format!(
            "user:{}",
            Uuid::new_v5(&ACTOR_NAMESPACE, self.username.as_bytes())
        )
    }

    pub fn is_operator(&self) -> bool {
        self.roles.contains(&Role::Operator)
    }

    fn has(&self, role: &Role) -> bool {
        self.roles.contains(role)
    }

    fn forbidden(&self, what: &str) -> ApiError {
        ApiError::Forbidden(format!("{what} needs a role this token does not carry"))
    }

    /// An operator, or an administrator of `customer`.
    pub fn admin_of(&self, customer: CustomerId) -> bool {
        self.is_operator()
            || self
                .roles
                .iter()
                .any(|r| matches!(r, Role::Admin(scope) if scope.covers(customer)))
    }

    /// An operator, an administrator of `customer` or one of its learners.
    pub fn member_of(&self, customer: CustomerId) -> bool {
        self.admin_of(customer)
            || self
                .roles
                .iter()
                .any(|r| matches!(r, Role::Learner(scope) if scope.covers(customer)))
    }

    pub fn require_operator(&self) -> Result<(), ApiError> {
        self.is_operator()
            .then_some(())
            .ok_or_else(|| self.forbidden("this operation"))
    }

    pub fn require_admin_of(&self, customer: CustomerId) -> Result<(), ApiError> {
        self.admin_of(customer)
            .then_some(())
            .ok_or_else(|| self.forbidden("administering this customer"))
    }

    pub fn require_member_of(&self, customer: CustomerId) -> Result<(), ApiError> {
        self.member_of(customer)
            .then_some(())
            .ok_or_else(|| self.forbidden("reading this customer"))
    }

    /// The LMS (or an operator).
    pub fn require_lms(&self) -> Result<(), ApiError> {
        (self.has(&Role::LmsService) || self.is_operator())
            .then_some(())
            .ok_or_else(|| self.forbidden("pushing LMS facts"))
    }

    /// An auditor (or an operator).
    pub fn require_auditor(&self) -> Result<(), ApiError> {
        (self.has(&Role::Auditor) || self.is_operator())
            .then_some(())
            .ok_or_else(|| self.forbidden("reading audit history"))
    }

    /// A channel worker, an operator or an administrator of `customer`.
    pub fn require_channel_reader(&self, customer: CustomerId) -> Result<(), ApiError> {
        (self.has(&Role::ChannelWorker) || self.admin_of(customer))
            .then_some(())
            .ok_or_else(|| self.forbidden("reading transmissions"))
    }

    /// The customers this principal may list: `None` for all of them.
    pub fn visible_customers(&self) -> Option<Vec<CustomerId>> {
        if self.is_operator()
            || self
                .roles
                .iter()
                .any(|r| matches!(r, Role::Admin(Scope::All) | Role::Learner(Scope::All)))
        {
            return None;
        }
        Some(
            self.roles
                .iter()
                .filter_map(|r| match r {
                    Role::Admin(Scope::Customer(c)) | Role::Learner(Scope::Customer(c)) => Some(*c),
                    _ => None,
                })
                .collect(),
        )
    }

    /// edX's `IsStaffOrUserInRequest`: staff, or the user the request names.
    pub fn is_staff_or(&self, username: &str) -> bool {
        self.is_operator() || self.username == username
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("send Authorization: JWT <token>".into()))?;
        let header = header
            .to_str()
            .map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
        let token = header
            .strip_prefix("JWT ")
            .or_else(|| header.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::Unauthorized("use the JWT or Bearer authorization scheme".into())
            })?;
        state.verifier.verify(token.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "test-secret";

    fn token(claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn exp() -> i64 {
        chrono::Utc::now().timestamp() + 600
    }

    #[test]
    fn roles_parse_in_edx_rbac_form() {
        let id = Uuid::new_v4();
        assert_eq!(
            Role::parse(&format!("enterprise_admin:{id}")),
            Some(Role::Admin(Scope::Customer(CustomerId(id))))
        );
        assert_eq!(
            Role::parse("enterprise_admin:*"),
            Some(Role::Admin(Scope::All))
        );
        assert_eq!(
            Role::parse("enterprise_openedx_operator:*"),
            Some(Role::Operator)
        );
        assert_eq!(Role::parse("lms_service"), Some(Role::LmsService));
        assert_eq!(Role::parse("enterprise_admin:not-a-uuid"), None);
        assert_eq!(Role::parse("enterprise_learner"), None);
        assert_eq!(Role::parse("some_other_service_role:1"), None);
    }

    #[test]
    fn an_admin_administers_only_their_customer() {
        let (a, b) = (CustomerId(Uuid::new_v4()), CustomerId(Uuid::new_v4()));
        let admin = Principal {
            username: "ann".into(),
            roles: vec![Role::Admin(Scope::Customer(a))],
        };
        assert!(admin.require_admin_of(a).is_ok());
        assert!(matches!(
            admin.require_admin_of(b),
            Err(ApiError::Forbidden(_))
        ));
        assert_eq!(admin.visible_customers(), Some(vec![a]));
        let learner = Principal {
            username: "lee".into(),
            roles: vec![Role::Learner(Scope::Customer(a))],
        };
        assert!(learner.require_member_of(a).is_ok());
        assert!(learner.require_admin_of(a).is_err());
    }

    #[test]
    fn hs256_tokens_are_checked_for_key_expiry_and_issuer() {
        let verifier = Verifier::new(Some(SECRET), None, Some("lms"), None).unwrap();
        let good = token(
            json!({"preferred_username": "ann", "exp": exp(), "iss": "lms",
                                "roles": ["enterprise_openedx_operator:*"]}),
        );
        let principal = verifier.verify(&good).unwrap();
        assert_eq!(principal.username, "ann");
        assert!(principal.is_operator());

        let expired =
            token(json!({"preferred_username": "ann", "exp": exp() - 3600, "iss": "lms"}));
        let other_issuer = token(json!({"preferred_username": "ann", "exp": exp(), "iss": "x"}));
        let no_username = token(json!({"exp": exp(), "iss": "lms"}));
        for bad in [
            expired,
            other_issuer,
            no_username,
            "not.a.token".to_string(),
        ] {
            assert!(matches!(
                verifier.verify(&bad),
                Err(ApiError::Unauthorized(_))
            ));
        }
        let other_key = encode(
            &Header::new(Algorithm::HS256),
            &json!({"preferred_username": "ann", "exp": exp(), "iss": "lms"}),
            &EncodingKey::from_secret(b"another secret"),
        )
        .unwrap();
        assert!(verifier.verify(&other_key).is_err());
    }

    #[test]
    fn staff_is_an_operator() {
        let verifier = Verifier::new(Some(SECRET), None, None, None).unwrap();
        let staff = token(json!({"preferred_username": "s", "exp": exp(), "administrator": true}));
        assert!(verifier.verify(&staff).unwrap().is_operator());
    }

    #[test]
    fn the_actor_is_pseudonymous_and_stable() {
        let p = Principal {
            username: "ann@example.com".into(),
            roles: vec![],
        };
        assert_eq!(p.actor(), p.clone().actor());
        assert!(!p.actor().contains("ann"));
    }
}
