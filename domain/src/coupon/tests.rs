use super::*;
use crate::error::{DomainError, ErrorKind, Invalid};
use chrono::TimeZone;
use cqrs_es::test::TestFramework;

/// Codes `CODE0`, `CODE1`, ...: deterministic, so expected events can be written out.
struct Sequential;

impl CodeGenerator for Sequential {
    fn generate(&self, count: usize) -> Vec<String> {
        (0..count).map(|i| format!("CODE{i}")).collect()
    }
}

/// Always returns the same list, whatever was asked: a broken generator.
struct Fixed(Vec<&'static str>);

impl CodeGenerator for Fixed {
    fn generate(&self, _count: usize) -> Vec<String> {
        self.0.iter().map(|c| c.to_string()).collect()
    }
}

fn given() -> TestFramework<Coupon> {
    TestFramework::with(CouponServices {
        codes: Box::new(Sequential),
    })
}

fn coupon_id() -> CouponId {
    CouponId(Uuid::from_u128(10))
}
fn customer() -> CustomerId {
    CustomerId(Uuid::from_u128(1))
}
fn catalog() -> CatalogId {
    CatalogId(Uuid::from_u128(3))
}
fn ann() -> LearnerId {
    LearnerId(Uuid::from_u128(21))
}
fn bob() -> LearnerId {
    LearnerId(Uuid::from_u128(22))
}
fn run(n: u8) -> CourseRunId {
    CourseRunId(format!("course-v1:edX+DemoX+{n}"))
}
fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, d, 0, 0, 0).unwrap()
}
fn rid(n: u128) -> Uuid {
    Uuid::from_u128(100 + n)
}

fn create(usage: CouponUsage) -> CouponCommand {
    CouponCommand::CreateCoupon {
        coupon_id: coupon_id(),
        customer_id: customer(),
        catalog_id: catalog(),
        name: "Q1 seats".into(),
        code_count: 2,
        usage,
        benefit: CouponBenefit::Percentage { value: 100.0 },
        valid_from: day(1),
        valid_until: day(31),
        email_domains: vec!["example.com".into()],
    }
}

fn created(usage: CouponUsage) -> CouponEvent {
    CouponEvent::CouponCreated {
        coupon_id: coupon_id(),
        customer_id: customer(),
        catalog_id: catalog(),
        name: "Q1 seats".into(),
        usage,
        benefit: CouponBenefit::Percentage { value: 100.0 },
        valid_from: day(1),
        valid_until: day(31),
        email_domains: vec!["example.com".into()],
        codes: vec!["CODE0".into(), "CODE1".into()],
    }
}

const SINGLE: CouponUsage = CouponUsage::SingleUse;
const MULTI: CouponUsage = CouponUsage::MultiUse { max_uses: 2 };
const ONCE_EACH: CouponUsage = CouponUsage::OncePerCustomer { max_uses: 2 };
const BOUND: CouponUsage = CouponUsage::MultiUsePerCustomer { max_uses: 2 };

fn assign(learner: LearnerId) -> CouponCommand {
    CouponCommand::AssignCode {
        code: "CODE0".into(),
        learner_id: learner,
        email_domain: Some("example.com".into()),
    }
}

fn assigned(learner: LearnerId) -> CouponEvent {
    CouponEvent::CodeAssigned {
        coupon_id: coupon_id(),
        customer_id: customer(),
        code: "CODE0".into(),
        learner_id: learner,
    }
}

fn redeem(learner: LearnerId, r: u8, id: u128) -> CouponCommand {
    CouponCommand::RedeemCode {
        code: "CODE0".into(),
        learner_id: learner,
        email_domain: Some("example.com".into()),
        course_run_id: run(r),
        redemption_id: rid(id),
        at: day(10),
    }
}

/// `redeem(ann(), 1, 1)` with some fields replaced.
macro_rules! redeem_with {
    ($($field:ident = $value:expr),+ $(,)?) => {{
        let mut command = redeem(ann(), 1, 1);
        if let CouponCommand::RedeemCode { $($field,)+ .. } = &mut command {
            $(*$field = $value;)+
        }
        command
    }};
}

fn redeemed(learner: LearnerId, r: u8, id: u128) -> CouponEvent {
    CouponEvent::CodeRedeemed {
        coupon_id: coupon_id(),
        customer_id: customer(),
        catalog_id: catalog(),
        code: "CODE0".into(),
        redemption_id: rid(id),
        learner_id: learner,
        course_run_id: run(r),
        at: day(10),
    }
}

fn reverse(id: u128) -> CouponCommand {
    CouponCommand::ReverseRedemption {
        redemption_id: rid(id),
        reason: "enrollment_failed".into(),
    }
}

fn reversed(learner: LearnerId, r: u8, id: u128) -> CouponEvent {
    CouponEvent::RedemptionReversed {
        coupon_id: coupon_id(),
        customer_id: customer(),
        code: "CODE0".into(),
        redemption_id: rid(id),
        learner_id: learner,
        course_run_id: run(r),
        reason: "enrollment_failed".into(),
    }
}

fn invalid(field: &'static str, reason: &str) -> CouponError {
    CouponError::Invalid(Invalid::new(field, reason))
}

/// `create(SINGLE)` with some fields replaced.
macro_rules! create_with {
    ($($field:ident = $value:expr),+ $(,)?) => {{
        let mut command = create(SINGLE);
        if let CouponCommand::CreateCoupon { $($field,)+ .. } = &mut command {
            $(*$field = $value;)+
        }
        command
    }};
}

/// The field a refused command's validation error names.
async fn refused_field(
    given: TestFramework<Coupon>,
    events: Vec<CouponEvent>,
    command: CouponCommand,
) -> &'static str {
    match given
        .given(events)
        .when_async(command)
        .await
        .inspect_result()
    {
        Err(CouponError::Invalid(invalid)) => invalid.field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

// ---- CreateCoupon ----

#[tokio::test]
async fn creating_a_coupon_records_its_terms_and_generated_codes() {
    given()
        .given_no_previous_events()
        .when_async(create(SINGLE))
        .await
        .then_expect_events(vec![created(SINGLE)]);
}

#[tokio::test]
async fn creating_an_existing_coupon_is_refused() {
    given()
        .given(vec![created(SINGLE)])
        .when_async(create(SINGLE))
        .await
        .then_expect_error(CouponError::CouponAlreadyExists);
}

#[tokio::test]
async fn generated_codes_of_the_wrong_count_duplicated_or_untypeable_are_refused() {
    let cases = [
        (vec!["A"], "asked for 2 codes, got 1"),
        (vec!["A", "A"], "the codes are not distinct"),
        (
            vec!["A", "B C"],
            "'B C' is not 1 to 64 letters, digits or '-'",
        ),
    ];
    for (codes, why) in cases {
        TestFramework::<Coupon>::with(CouponServices {
            codes: Box::new(Fixed(codes)),
        })
        .given_no_previous_events()
        .when_async(create(SINGLE))
        .await
        .then_expect_error(CouponError::GeneratedCodesRejected(why.into()));
    }
}

#[tokio::test]
async fn creation_fields_out_of_range_are_refused_with_their_field() {
    let nan = f64::NAN;
    let cases = [
        (create_with!(name = " ".into()), "name"),
        (create_with!(name = "x".repeat(256)), "name"),
        (create_with!(code_count = 0), "code_count"),
        (create_with!(code_count = MAX_CODES + 1), "code_count"),
        (
            create_with!(usage = CouponUsage::MultiUse { max_uses: 0 }),
            "max_uses",
        ),
        (
            create_with!(
                usage = CouponUsage::OncePerCustomer {
                    max_uses: MAX_USES + 1
                }
            ),
            "max_uses",
        ),
        (
            create_with!(benefit = CouponBenefit::Percentage { value: 0.0 }),
            "benefit",
        ),
        (
            create_with!(benefit = CouponBenefit::Percentage { value: 100.5 }),
            "benefit",
        ),
        (
            create_with!(benefit = CouponBenefit::Percentage { value: nan }),
            "benefit",
        ),
        (
            create_with!(benefit = CouponBenefit::Absolute { value: 0.0 }),
            "benefit",
        ),
        (
            create_with!(
                benefit = CouponBenefit::Absolute {
                    value: f64::INFINITY
                }
            ),
            "benefit",
        ),
        (create_with!(valid_from = day(31)), "valid_until"),
        (
            create_with!(email_domains = vec!["Example.com".into()]),
            "email_domains",
        ),
        (
            create_with!(email_domains = vec!["a.com".into(), "a.com".into()]),
            "email_domains",
        ),
    ];
    for (command, field) in cases {
        assert_eq!(refused_field(given(), vec![], command).await, field);
    }
}

#[tokio::test]
async fn boundary_values_are_accepted_at_creation() {
    let command = create_with!(
        code_count = 1,
        usage = CouponUsage::MultiUse { max_uses: MAX_USES },
        benefit = CouponBenefit::Absolute { value: 0.01 },
        email_domains = vec![],
    );
    let events = given()
        .given_no_previous_events()
        .when_async(command)
        .await
        .inspect_result()
        .unwrap();
    assert!(matches!(&events[..], [CouponEvent::CouponCreated { codes, .. }] if codes.len() == 1));
}

#[test]
fn email_domains_follow_ecommerce_rules() {
    for ok in ["example.com", "sub.example.co", "a-b.example.org", "x1.io"] {
        assert!(command::email_domain(ok).is_ok(), "{ok}");
    }
    for bad in [
        "example",
        "Example.com",
        "a--b.com",
        "-a.com",
        "a-.com",
        "a.c",
        "a.c0m",
        "a..com",
        "a.co-m",
        "é.com",
    ] {
        assert!(command::email_domain(bad).is_err(), "{bad}");
    }
}

#[test]
fn an_allowed_domain_admits_its_subdomains_only() {
    let allowed = vec!["example.com".to_string()];
    assert!(command::domain_allowed(&allowed, Some("example.com")));
    assert!(command::domain_allowed(&allowed, Some("Sub.Example.com")));
    assert!(!command::domain_allowed(&allowed, Some("badexample.com")));
    assert!(!command::domain_allowed(&allowed, Some(".example.com")));
    assert!(!command::domain_allowed(
        &allowed,
        Some("example.com.evil.org")
    ));
    assert!(!command::domain_allowed(&allowed, None));
    assert!(command::domain_allowed(&[], None));
}

// ---- commands on a coupon that does not exist ----

#[tokio::test]
async fn every_command_but_create_needs_an_existing_coupon() {
    let commands = [
        assign(ann()),
        CouponCommand::RevokeAssignment {
            code: "CODE0".into(),
            learner_id: ann(),
        },
        redeem(ann(), 1, 1),
        reverse(1),
    ];
    for command in commands {
        given()
            .given_no_previous_events()
            .when_async(command)
            .await
            .then_expect_error(CouponError::CouponNotFound);
    }
}

// ---- AssignCode / RevokeAssignment ----

#[tokio::test]
async fn assigning_a_code_reserves_it_for_the_learner() {
    given()
        .given(vec![created(SINGLE)])
        .when_async(assign(ann()))
        .await
        .then_expect_events(vec![assigned(ann())]);
}

#[tokio::test]
async fn assigning_an_unknown_code_is_not_found() {
    let command = CouponCommand::AssignCode {
        code: "NOPE".into(),
        learner_id: ann(),
        email_domain: None,
    };
    given()
        .given(vec![created(SINGLE)])
        .when_async(command)
        .await
        .then_expect_error(CouponError::UnknownCode);
}

#[tokio::test]
async fn assigning_to_a_learner_outside_the_email_domains_is_refused() {
    for domain in [Some("other.com"), None] {
        let command = CouponCommand::AssignCode {
            code: "CODE0".into(),
            learner_id: ann(),
            email_domain: domain.map(str::to_string),
        };
        assert_eq!(
            refused_field(given(), vec![created(SINGLE)], command).await,
            "email"
        );
    }
}

#[tokio::test]
async fn assigning_a_code_held_by_another_learner_is_refused() {
    given()
        .given(vec![created(SINGLE), assigned(ann())])
        .when_async(assign(bob()))
        .await
        .then_expect_error(CouponError::CodeAlreadyAssigned);
}

#[tokio::test]
async fn assigning_again_to_the_same_learner_appends_nothing() {
    given()
        .given(vec![created(SINGLE), assigned(ann())])
        .when_async(assign(ann()))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn assigning_a_code_with_no_uses_left_is_refused() {
    given()
        .given(vec![created(SINGLE), redeemed(bob(), 1, 1)])
        .when_async(assign(ann()))
        .await
        .then_expect_error(CouponError::CodeUsedUp);
    given()
        .given(vec![
            created(MULTI),
            redeemed(bob(), 1, 1),
            redeemed(bob(), 2, 2),
        ])
        .when_async(assign(ann()))
        .await
        .then_expect_error(CouponError::CodeUsedUp);
}

#[tokio::test]
async fn assigning_a_code_bound_to_another_learner_is_refused() {
    given()
        .given(vec![created(BOUND), redeemed(bob(), 1, 1)])
        .when_async(assign(ann()))
        .await
        .then_expect_error(CouponError::CodeBoundToAnotherLearner);
}

#[tokio::test]
async fn revoking_an_assignment_frees_the_code() {
    let revoked = CouponEvent::CodeAssignmentRevoked {
        coupon_id: coupon_id(),
        customer_id: customer(),
        code: "CODE0".into(),
        learner_id: ann(),
    };
    let revoke = CouponCommand::RevokeAssignment {
        code: "CODE0".into(),
        learner_id: ann(),
    };
    given()
        .given(vec![created(SINGLE), assigned(ann())])
        .when_async(revoke)
        .await
        .then_expect_events(vec![revoked.clone()]);
    given()
        .given(vec![created(SINGLE), assigned(ann()), revoked])
        .when_async(assign(bob()))
        .await
        .then_expect_events(vec![assigned(bob())]);
}

#[tokio::test]
async fn revoking_an_assignment_the_learner_does_not_hold_is_refused() {
    let revoke = |learner| CouponCommand::RevokeAssignment {
        code: "CODE0".into(),
        learner_id: learner,
    };
    given()
        .given(vec![created(SINGLE)])
        .when_async(revoke(ann()))
        .await
        .then_expect_error(CouponError::NotAssigned);
    given()
        .given(vec![created(SINGLE), assigned(ann())])
        .when_async(revoke(bob()))
        .await
        .then_expect_error(CouponError::NotAssigned);
}

// ---- RedeemCode ----

#[tokio::test]
async fn redeeming_a_valid_code_spends_a_use() {
    given()
        .given(vec![created(SINGLE)])
        .when_async(redeem(ann(), 1, 1))
        .await
        .then_expect_events(vec![redeemed(ann(), 1, 1)]);
}

#[tokio::test]
async fn redeeming_an_unknown_code_is_not_found_before_any_other_check() {
    let command = redeem_with!(code = "NOPE".into(), at = day(31));
    given()
        .given(vec![created(SINGLE)])
        .when_async(command)
        .await
        .then_expect_error(CouponError::UnknownCode);
}

#[tokio::test]
async fn redeeming_outside_the_validity_window_is_refused() {
    for moment in [day(1) - chrono::Duration::seconds(1), day(31)] {
        given()
            .given(vec![created(SINGLE), assigned(bob())])
            .when_async(redeem_with!(at = moment))
            .await
            .then_expect_error(CouponError::CouponNotValidAt);
    }
    let events = given()
        .given(vec![created(SINGLE)])
        .when_async(redeem_with!(at = day(1)))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 1, "valid_from itself is inside the window");
}

#[tokio::test]
async fn redeeming_a_code_assigned_to_another_learner_is_refused() {
    given()
        .given(vec![created(MULTI), assigned(bob())])
        .when_async(redeem_with!(email_domain = Some("other.com".into())))
        .await
        .then_expect_error(CouponError::CodeAssignedToAnother);
}

#[tokio::test]
async fn the_assigned_learner_may_redeem_the_code() {
    given()
        .given(vec![created(SINGLE), assigned(ann())])
        .when_async(redeem(ann(), 1, 1))
        .await
        .then_expect_events(vec![redeemed(ann(), 1, 1)]);
}

#[tokio::test]
async fn redeeming_from_a_domain_the_coupon_does_not_allow_is_refused() {
    for domain in [Some("other.com".to_string()), None] {
        let command = redeem_with!(email_domain = domain);
        assert_eq!(
            refused_field(given(), vec![created(SINGLE)], command).await,
            "email"
        );
    }
    given()
        .given(vec![created(SINGLE)])
        .when_async(redeem_with!(email_domain = Some("eu.example.com".into())))
        .await
        .then_expect_events(vec![redeemed(ann(), 1, 1)]);
}

#[tokio::test]
async fn redeeming_with_a_malformed_run_id_is_refused() {
    let command = redeem_with!(course_run_id = CourseRunId("a run".into()));
    assert_eq!(
        refused_field(given(), vec![created(SINGLE)], command).await,
        "course_run_id"
    );
}

#[tokio::test]
async fn redeeming_again_for_the_same_run_appends_nothing() {
    for usage in [SINGLE, MULTI, ONCE_EACH, BOUND] {
        given()
            .given(vec![created(usage), redeemed(ann(), 1, 1)])
            .when_async(redeem(ann(), 1, 7))
            .await
            .then_expect_events(vec![]);
    }
}

#[tokio::test]
async fn a_redemption_id_cannot_name_two_redemptions() {
    given()
        .given(vec![created(MULTI), redeemed(ann(), 1, 1)])
        .when_async(redeem(bob(), 1, 1))
        .await
        .then_expect_error(CouponError::RedemptionIdReused);
}

#[tokio::test]
async fn redeeming_a_used_single_use_code_is_refused() {
    given()
        .given(vec![created(SINGLE), redeemed(bob(), 1, 1)])
        .when_async(redeem(ann(), 1, 2))
        .await
        .then_expect_error(CouponError::CodeAlreadyRedeemed);
}

#[tokio::test]
async fn a_multi_use_code_serves_anyone_up_to_its_maximum() {
    given()
        .given(vec![created(MULTI), redeemed(bob(), 1, 1)])
        .when_async(redeem(ann(), 1, 2))
        .await
        .then_expect_events(vec![redeemed(ann(), 1, 2)]);
    given()
        .given(vec![
            created(MULTI),
            redeemed(bob(), 1, 1),
            redeemed(ann(), 1, 2),
        ])
        .when_async(redeem(ann(), 2, 3))
        .await
        .then_expect_error(CouponError::CodeUsedUp);
}

#[tokio::test]
async fn a_once_per_customer_code_serves_each_learner_once() {
    given()
        .given(vec![created(ONCE_EACH), redeemed(ann(), 1, 1)])
        .when_async(redeem(ann(), 2, 2))
        .await
        .then_expect_error(CouponError::AlreadyRedeemedByLearner);
    given()
        .given(vec![created(ONCE_EACH), redeemed(bob(), 1, 1)])
        .when_async(redeem(ann(), 1, 2))
        .await
        .then_expect_events(vec![redeemed(ann(), 1, 2)]);
    let carol = LearnerId(Uuid::from_u128(23));
    given()
        .given(vec![
            created(ONCE_EACH),
            redeemed(bob(), 1, 1),
            redeemed(carol, 1, 2),
        ])
        .when_async(redeem(ann(), 1, 3))
        .await
        .then_expect_error(CouponError::CodeUsedUp);
}

#[tokio::test]
async fn a_multi_use_per_customer_code_is_bound_to_its_first_redeemer() {
    given()
        .given(vec![created(BOUND), redeemed(bob(), 1, 1)])
        .when_async(redeem(ann(), 1, 2))
        .await
        .then_expect_error(CouponError::CodeBoundToAnotherLearner);
    given()
        .given(vec![created(BOUND), redeemed(ann(), 1, 1)])
        .when_async(redeem(ann(), 2, 2))
        .await
        .then_expect_events(vec![redeemed(ann(), 2, 2)]);
    given()
        .given(vec![
            created(BOUND),
            redeemed(ann(), 1, 1),
            redeemed(ann(), 2, 2),
        ])
        .when_async(redeem(ann(), 3, 3))
        .await
        .then_expect_error(CouponError::CodeUsedUp);
}

// ---- ReverseRedemption ----

#[tokio::test]
async fn reversing_a_redemption_gives_its_use_back() {
    given()
        .given(vec![created(SINGLE), redeemed(ann(), 1, 1)])
        .when_async(reverse(1))
        .await
        .then_expect_events(vec![reversed(ann(), 1, 1)]);
    given()
        .given(vec![
            created(SINGLE),
            redeemed(ann(), 1, 1),
            reversed(ann(), 1, 1),
        ])
        .when_async(redeem(bob(), 1, 2))
        .await
        .then_expect_events(vec![redeemed(bob(), 1, 2)]);
}

#[tokio::test]
async fn reversing_frees_a_multi_use_per_customer_binding() {
    given()
        .given(vec![
            created(BOUND),
            redeemed(ann(), 1, 1),
            reversed(ann(), 1, 1),
        ])
        .when_async(redeem(bob(), 1, 2))
        .await
        .then_expect_events(vec![redeemed(bob(), 1, 2)]);
}

#[tokio::test]
async fn reversing_twice_appends_nothing() {
    given()
        .given(vec![
            created(SINGLE),
            redeemed(ann(), 1, 1),
            reversed(ann(), 1, 1),
        ])
        .when_async(reverse(1))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn reversing_an_unknown_redemption_is_not_found() {
    given()
        .given(vec![created(SINGLE)])
        .when_async(reverse(9))
        .await
        .then_expect_error(CouponError::UnknownRedemption);
}

#[tokio::test]
async fn a_reversal_needs_a_reason() {
    let command = CouponCommand::ReverseRedemption {
        redemption_id: rid(1),
        reason: String::new(),
    };
    given()
        .given(vec![created(SINGLE), redeemed(ann(), 1, 1)])
        .when_async(command)
        .await
        .then_expect_error(invalid("reason", "must not be blank"));
}

// ---- accessors, stream id, error kinds ----

#[test]
fn accessors_reflect_the_applied_events() {
    let mut coupon = Coupon::default();
    assert!(!coupon.is_created());
    for event in [
        created(MULTI),
        assigned(ann()),
        redeemed(ann(), 1, 1),
        redeemed(ann(), 2, 2),
        reversed(ann(), 2, 2),
    ] {
        coupon.apply(event);
    }
    assert!(coupon.is_created());
    assert_eq!(coupon.customer_id(), Some(customer()));
    assert_eq!(coupon.catalog_id(), Some(catalog()));
    assert_eq!(coupon.usage(), Some(MULTI));
    assert_eq!(coupon.codes().collect::<Vec<_>>(), ["CODE0", "CODE1"]);
    assert_eq!(coupon.uses_of("CODE0"), Some(1));
    assert_eq!(coupon.uses_of("CODE1"), Some(0));
    assert_eq!(coupon.uses_of("NOPE"), None);
    assert_eq!(coupon.assignment("CODE0"), Some(ann()));
    assert_eq!(coupon.assignment("CODE1"), None);
    assert_eq!(coupon.redemption_for("CODE0", ann(), &run(1)), Some(rid(1)));
    assert_eq!(
        coupon.redemption_for("CODE0", ann(), &run(2)),
        None,
        "reversed"
    );
    assert_eq!(coupon.redemption_for("CODE0", bob(), &run(1)), None);
}

#[test]
fn the_stream_id_is_the_coupon_uuid() {
    assert_eq!(
        coupon_stream_id(coupon_id()),
        "00000000-0000-0000-0000-00000000000a"
    );
}

#[test]
fn usage_and_benefit_serialize_with_a_type_tag() {
    assert_eq!(
        serde_json::to_value(BOUND).unwrap(),
        serde_json::json!({"type": "multi_use_per_customer", "max_uses": 2})
    );
    assert_eq!(
        serde_json::to_value(CouponBenefit::Absolute { value: 5.0 }).unwrap(),
        serde_json::json!({"type": "absolute", "value": 5.0})
    );
}

#[test]
fn errors_have_the_kinds_the_api_maps() {
    assert_eq!(CouponError::UnknownCode.kind(), ErrorKind::NotFound);
    assert_eq!(CouponError::UnknownRedemption.kind(), ErrorKind::NotFound);
    assert_eq!(CouponError::CodeAlreadyAssigned.kind(), ErrorKind::Conflict);
    assert_eq!(CouponError::CodeUsedUp.kind(), ErrorKind::Conflict);
    assert_eq!(
        CouponError::AlreadyRedeemedByLearner.kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        CouponError::CodeBoundToAnotherLearner.kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        CouponError::NotAssigned.kind(),
        ErrorKind::ForbiddenTransition
    );
    assert_eq!(
        CouponError::CouponNotValidAt.kind(),
        ErrorKind::ForbiddenTransition
    );
    assert_eq!(
        CouponError::CodeAssignedToAnother.kind(),
        ErrorKind::ForbiddenTransition
    );
    let invalid = invalid("email", "x");
    assert_eq!(
        (invalid.kind(), invalid.field()),
        (ErrorKind::Validation, Some("email"))
    );
}
