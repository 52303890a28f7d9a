//! First start.

use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use assay_control::bootstrap::bootstrap;
use assay_control::{ControlPlaneConfig, LocalControlPlane};
use assay_core::EnvRef;
use assay_core::actor::{Access, ClientInfo};
use assay_core::audit::Outcome;
use assay_core::identity::OrgRole;
use assay_core::ports::{ControlPlane, Store, SystemClock};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use assay_store::SqliteStore;
use std::sync::Arc;

#[tokio::test]
async fn first_start_creates_the_default_org_owner_and_admin_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).await.unwrap());
    let boot = bootstrap(store.as_ref(), &SystemClock)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(boot.org.slug, "default");
    assert_eq!(boot.env.slug, "dev");
    assert_eq!(boot.owner_email, "admin@localhost");
    assert_eq!(boot.owner_password.len(), 20);
    assert!(
        boot.owner_password
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
    );
    assert!(assay_control::tokens::is_well_formed(&boot.admin_token));

    let user = store
        .find_user_by_email("admin@localhost")
        .await
        .unwrap()
        .unwrap();
    let phc = user.password_hash.clone().unwrap();
    assert!(!phc.contains(&boot.owner_password));
    let parsed = PasswordHash::new(&phc).unwrap();
    assert!(
        Argon2::default()
            .verify_password(boot.owner_password.as_bytes(), &parsed)
            .is_ok()
    );
    let membership = store
        .find_membership(boot.org.id, user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(membership.role, OrgRole::Owner);

    let record = store
        .find_api_token_by_hash(&assay_control::tokens::hash(&boot.admin_token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.name, "bootstrap");
    assert_eq!(record.expires_at, None);
    assert!(record.description.contains("rotate or revoke"));

    // The token works end to end.
    let files = Arc::new(FsExecutionFiles::new(dir.path().join("data")));
    let executor = Arc::new(LocalExecutor::new(
        LocalExecutorConfig {
            data_dir: dir.path().join("data"),
            ..LocalExecutorConfig::default()
        },
        files.clone(),
    ));
    let plane = LocalControlPlane::start(
        ControlPlaneConfig::default(),
        store.clone(),
        executor,
        files,
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let principal = plane
        .authenticator()
        .authenticate(&boot.admin_token, &ClientInfo::default(), Some("default"))
        .await
        .unwrap();
    assert_eq!(principal.access, Access::OrgAdmin);
    let actor = assay_core::Actor::new(principal, ClientInfo::default());
    let list = plane
        .list_workflows(
            &actor,
            &EnvRef::new("default", "dev"),
            &Default::default(),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(list.total, 0);

    let events = store.audit_events(boot.org.id, 0, 100).await.unwrap();
    assert_eq!(events[0].action, "org.bootstrap");
    assert_eq!(events[0].outcome, Outcome::Success);
    for e in &events {
        let text = serde_json::to_string(e).unwrap();
        assert!(!text.contains(&boot.admin_token) && !text.contains(&boot.owner_password));
    }

    assert!(
        bootstrap(store.as_ref(), &SystemClock)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_orgs().await.unwrap().len(), 1);
    plane.shutdown().await;
}
