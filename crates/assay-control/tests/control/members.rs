//! Organization members: local accounts, roles, grants, ownership rules.

use crate::harness::*;
use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use assay_core::actor::Access;
use assay_core::audit::Outcome;
use assay_core::error::FieldError;
use assay_core::identity::{ApiTokenKind, MemberUpdate, NewMember, OrgRole};
use assay_core::ports::{ControlPlane, Store};
use assay_core::{Error, Level};
use std::collections::BTreeMap;

fn new_member(email: &str, role: OrgRole, grants: &[(&str, Level)]) -> NewMember {
    NewMember {
        email: email.into(),
        display_name: String::new(),
        password: None,
        role,
        grants: grants.iter().map(|(e, l)| (e.to_string(), *l)).collect(),
    }
}

fn invalid_paths(err: &Error) -> Vec<String> {
    match err {
        Error::Invalid(fields) => fields.iter().map(|f: &FieldError| f.path.clone()).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn members_are_added_listed_changed_and_removed() {
    let app = TestApp::start(1).await;
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let password = "correct horse battery staple";

    let mut carol = new_member(
        "carol@acme.test",
        OrgRole::Member,
        &[
            ("dev", Level::Run),
            (&app.t.staging.id.to_string(), Level::Read),
        ],
    );
    carol.display_name = "Carol".into();
    carol.password = Some(password.into());
    let added = app.plane.add_member(&owner, "acme", &carol).await.unwrap();
    assert_eq!(added.email, "carol@acme.test");
    assert_eq!(added.display_name, "Carol");
    assert_eq!(added.role, OrgRole::Member);
    assert_eq!(
        added.grants,
        BTreeMap::from([
            ("dev".to_string(), Level::Run),
            ("staging".to_string(), Level::Read)
        ])
    );
    assert!(!added.disabled);
    // The password is stored as an Argon2id hash only.
    let stored_user = app.store.find_user(added.user_id).await.unwrap().unwrap();
    let phc = stored_user.password_hash.unwrap();
    assert!(
        phc.starts_with("$argon2id$") && !phc.contains(password),
        "{phc}"
    );
    let parsed = PasswordHash::new(&phc).unwrap();
    assert!(
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    );
    let membership = app
        .store
        .find_membership(app.t.acme.id, added.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        membership.grants,
        BTreeMap::from([(app.t.dev.id, Level::Run), (app.t.staging.id, Level::Read)])
    );

    // Without a password the account has none (SSO later); the display name defaults.
    let dave = app
        .plane
        .add_member(
            &owner,
            "acme",
            &new_member("dave@acme.test", OrgRole::Admin, &[]),
        )
        .await
        .unwrap();
    assert_eq!(dave.display_name, "dave");
    let stored = app.store.find_user(dave.user_id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, None);

    // An existing account (here: a member of another organization) is reused.
    let other_admin = actor(user(app.t.other.id, Access::OrgAdmin));
    let in_other = app
        .plane
        .add_member(
            &other_admin,
            "other",
            &new_member("erin@x.test", OrgRole::Member, &[]),
        )
        .await
        .unwrap();
    let in_acme = app
        .plane
        .add_member(
            &owner,
            "acme",
            &new_member("ERIN@x.test", OrgRole::Member, &[("dev", Level::Read)]),
        )
        .await
        .unwrap();
    assert_eq!(in_acme.user_id, in_other.user_id);
    // …but its password cannot be set from here.
    let mut takeover = new_member("erin@x.test", OrgRole::Member, &[]);
    takeover.password = Some("a brand new password".into());
    let err = app
        .plane
        .add_member(&other_admin, "other", &takeover)
        .await
        .unwrap_err();
    assert_eq!(invalid_paths(&err), vec!["password"]);

    let listed = app.plane.list_members(&owner, "acme").await.unwrap();
    let emails: Vec<&str> = listed.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(
        emails,
        vec![
            "carol@acme.test",
            "dave@acme.test",
            "erin@x.test",
            "owner@acme.test"
        ]
    );

    let err = app
        .plane
        .add_member(&owner, "acme", &carol)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}"); // password for an existing account
    carol.password = None;
    let err = app
        .plane
        .add_member(&owner, "acme", &carol)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("already a member")),
        "{err:?}"
    );

    // Change grants by email, then role by ID (admins have no grants).
    let changed = app
        .plane
        .update_member(
            &owner,
            "acme",
            "carol@acme.test",
            &MemberUpdate {
                grants: Some(BTreeMap::from([("dev".to_string(), Level::Write)])),
                ..MemberUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        changed.grants,
        BTreeMap::from([("dev".to_string(), Level::Write)])
    );
    let promoted = app
        .plane
        .update_member(
            &owner,
            "acme",
            &added.user_id.to_string(),
            &MemberUpdate {
                role: Some(OrgRole::Admin),
                ..MemberUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(promoted.role, OrgRole::Admin);
    assert!(promoted.grants.is_empty());

    app.plane
        .remove_member(&owner, "acme", "carol@acme.test")
        .await
        .unwrap();
    assert_eq!(
        app.store
            .find_membership(app.t.acme.id, added.user_id)
            .await
            .unwrap(),
        None
    );
    let err = app
        .plane
        .remove_member(&owner, "acme", "carol@acme.test")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { kind: "member", .. }),
        "{err:?}"
    );

    let events = app.audit(app.t.acme.id).await;
    let member_events: Vec<(&str, Outcome)> = events
        .iter()
        .filter(|e| e.action.starts_with("member."))
        .map(|e| (e.action.as_str(), e.outcome))
        .collect();
    assert_eq!(
        member_events,
        vec![
            ("member.added", Outcome::Success),
            ("member.added", Outcome::Success),
            ("member.added", Outcome::Success),
            ("member.list", Outcome::Success),
            ("member.added", Outcome::Error),
            ("member.added", Outcome::Error),
            ("member.updated", Outcome::Success),
            ("member.updated", Outcome::Success),
            ("member.removed", Outcome::Success),
            ("member.removed", Outcome::Error),
        ]
    );
    let first = events.iter().find(|e| e.action == "member.added").unwrap();
    assert_eq!(
        first.resources,
        vec![
            format!("user:{}", added.user_id),
            "role:member".to_string(),
            "grant:dev=run".to_string(),
            "grant:staging=read".to_string(),
        ]
    );
    let removal = events
        .iter()
        .rfind(|e| e.action == "member.removed" && e.outcome == Outcome::Success);
    assert_eq!(
        removal.unwrap().resources,
        vec![format!("user:{}", added.user_id)]
    );
    for e in &events {
        assert!(!serde_json::to_string(e).unwrap().contains(password));
    }
}

#[tokio::test]
async fn bad_member_input_is_reported_field_by_field() {
    let app = TestApp::start(1).await;
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let mut bad = new_member("not-an-email", OrgRole::Member, &[("nowhere", Level::Read)]);
    bad.password = Some("short".into());
    let err = app
        .plane
        .add_member(&owner, "acme", &bad)
        .await
        .unwrap_err();
    assert_eq!(
        invalid_paths(&err),
        vec!["email", "password", "grants.nowhere"]
    );
    // Another organization's environment is as unknown as a missing one.
    let err = app
        .plane
        .add_member(
            &owner,
            "acme",
            &new_member(
                "x@acme.test",
                OrgRole::Member,
                &[(&app.t.other_dev.id.to_string(), Level::Read)],
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        invalid_paths(&err),
        vec![format!("grants.{}", app.t.other_dev.id)]
    );
    let err = app
        .plane
        .add_member(
            &owner,
            "acme",
            &new_member("x@acme.test", OrgRole::Admin, &[("dev", Level::Read)]),
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_paths(&err), vec!["grants"]);
    assert_eq!(
        app.store.find_user_by_email("x@acme.test").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn only_owners_touch_ownership_and_the_last_owner_stays() {
    let app = TestApp::start(1).await;
    let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
    let admin = app.person("admin@acme.test", OrgRole::Admin, &[]).await;
    let member = app.person("member@acme.test", OrgRole::Member, &[]).await;
    let forbidden = |err: Error| {
        assert!(
            matches!(
                err,
                Error::Forbidden {
                    needed: Level::Admin
                }
            ),
            "{err:?}"
        );
    };
    let to = |role| MemberUpdate {
        role: Some(role),
        ..MemberUpdate::default()
    };

    // An admin may not create, promote, demote or remove owners.
    forbidden(
        app.plane
            .add_member(
                &admin,
                "acme",
                &new_member("o2@acme.test", OrgRole::Owner, &[]),
            )
            .await
            .unwrap_err(),
    );
    forbidden(
        app.plane
            .update_member(&admin, "acme", "member@acme.test", &to(OrgRole::Owner))
            .await
            .unwrap_err(),
    );
    forbidden(
        app.plane
            .update_member(&admin, "acme", "owner@acme.test", &to(OrgRole::Member))
            .await
            .unwrap_err(),
    );
    forbidden(
        app.plane
            .remove_member(&admin, "acme", "owner@acme.test")
            .await
            .unwrap_err(),
    );
    // A member may not manage members at all.
    forbidden(app.plane.list_members(&member, "acme").await.unwrap_err());

    // Nobody demotes, disables or removes the last owner.
    let last = |err: Error| {
        assert!(
            matches!(&err, Error::Conflict(m) if m.contains("last owner")),
            "{err:?}"
        );
    };
    last(
        app.plane
            .update_member(&owner, "acme", "owner@acme.test", &to(OrgRole::Admin))
            .await
            .unwrap_err(),
    );
    last(
        app.plane
            .update_member(
                &owner,
                "acme",
                "owner@acme.test",
                &MemberUpdate {
                    disabled: Some(true),
                    ..MemberUpdate::default()
                },
            )
            .await
            .unwrap_err(),
    );
    last(
        app.plane
            .remove_member(&owner, "acme", "owner@acme.test")
            .await
            .unwrap_err(),
    );

    // An owner may add another owner; then stepping down works.
    app.plane
        .add_member(
            &owner,
            "acme",
            &new_member("o2@acme.test", OrgRole::Owner, &[]),
        )
        .await
        .unwrap();
    let stepped_down = app
        .plane
        .update_member(&owner, "acme", "owner@acme.test", &to(OrgRole::Admin))
        .await
        .unwrap();
    assert_eq!(stepped_down.role, OrgRole::Admin);

    // An admin token is as powerful as its creator: one minted by an admin cannot make
    // owners; one minted by an owner can.
    let o2 = app
        .store
        .find_user_by_email("o2@acme.test")
        .await
        .unwrap()
        .unwrap();
    let mut o2_actor = app.admin();
    o2_actor.principal.id = o2.id;
    let admin_token = app
        .plane
        .create_api_token(
            &admin,
            "acme",
            &crate::auth::new_token(ApiTokenKind::Admin, &[]),
        )
        .await
        .unwrap();
    let owner_token = app
        .plane
        .create_api_token(
            &o2_actor,
            "acme",
            &crate::auth::new_token(ApiTokenKind::Admin, &[]),
        )
        .await
        .unwrap();
    let as_admin_token = app.bearer(&admin_token.secret).await;
    let as_owner_token = app.bearer(&owner_token.secret).await;
    forbidden(
        app.plane
            .add_member(
                &as_admin_token,
                "acme",
                &new_member("o3@acme.test", OrgRole::Owner, &[]),
            )
            .await
            .unwrap_err(),
    );
    let o3 = app
        .plane
        .add_member(
            &as_owner_token,
            "acme",
            &new_member("o3@acme.test", OrgRole::Owner, &[]),
        )
        .await
        .unwrap();
    assert_eq!(o3.role, OrgRole::Owner);

    // Denials are audited as such.
    let denied = app
        .audit(app.t.acme.id)
        .await
        .into_iter()
        .filter(|e| e.outcome == Outcome::Denied)
        .count();
    assert_eq!(denied, 6);
}

#[tokio::test]
async fn another_organization_is_not_found() {
    let app = TestApp::start(1).await;
    let outsider = actor(user(app.t.other.id, Access::OrgAdmin));
    for org in ["acme", &app.t.acme.id.to_string(), "nowhere"] {
        let err = app.plane.list_members(&outsider, org).await.unwrap_err();
        assert!(
            matches!(&err, Error::NotFound { kind: "organization", name } if name == org),
            "{err:?}"
        );
        assert_eq!(err.to_string(), format!("organization {org:?} not found"));
    }
    // Recorded as denied in the outsider's own chain only.
    let theirs = app.audit(app.t.other.id).await;
    assert_eq!(theirs.len(), 3);
    assert!(
        theirs
            .iter()
            .all(|e| e.action == "member.list" && e.outcome == Outcome::Denied)
    );
    assert!(app.audit(app.t.acme.id).await.is_empty());
}
