//! Table-driven RBAC (DESIGN.md §3): every principal kind × environment × EVERY
//! environment operation, and every organization operation × principal kind, each a real
//! call with valid arguments, expecting exactly Allowed, Forbidden{needed} or NotFound.
//!
//! The expectations come from tables written out here from the design (not from the code
//! under test), and a few rows are also spelled out by hand so the tables themselves are
//! checked.

use crate::auth::new_token;
use crate::harness::*;
use assay_control::permissions::Operation;
use assay_core::actor::{Access, ActorRef, PrincipalKind};
use assay_core::audit::AuditFilter;
use assay_core::execution::{ArtifactQuery, Execution, ExecutionStatus, LogQuery};
use assay_core::identity::{ApiTokenKind, MemberUpdate, NewMember, OrgRole};
use assay_core::ports::{ControlPlane, Store};
use assay_core::{Actor, EnvRef, Error, Level, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    Forbidden(Level),
    NotFound,
    /// Not for this kind of principal at all (an API token asking for a user's grants).
    Refused,
    /// No such user in the store (the outsider is a made-up principal): `whoami` has no
    /// one to describe.
    Unauthenticated,
}
use Expect::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    OwnerUser,
    AdminUser,
    MemberRead,
    MemberRun,
    MemberWrite,
    MemberAdmin,
    AdminToken,
    TokenRead,
    TokenRun,
    TokenWrite,
    OrgReadToken,
    /// An admin of another organization (organization operations only).
    Outsider,
}
use Kind::*;

const ENV_KINDS: [Kind; 11] = [
    OwnerUser,
    AdminUser,
    MemberRead,
    MemberRun,
    MemberWrite,
    MemberAdmin,
    AdminToken,
    TokenRead,
    TokenRun,
    TokenWrite,
    OrgReadToken,
];

/// A = acme/dev (granted to members), B = acme/staging (not granted), C = other/dev.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Env {
    A,
    B,
    C,
}
const ENVS: [Env; 3] = [Env::A, Env::B, Env::C];

/// The principal's level in the environment, per DESIGN.md §3.
fn level(kind: Kind, env: Env) -> Option<Level> {
    match (kind, env) {
        (_, Env::C) | (Outsider, _) => None,
        (OwnerUser | AdminUser | AdminToken, _) => Some(Level::Admin),
        (OrgReadToken, _) => Some(Level::Read),
        (MemberRead | TokenRead, Env::A) => Some(Level::Read),
        (MemberRun | TokenRun, Env::A) => Some(Level::Run),
        (MemberWrite | TokenWrite, Env::A) => Some(Level::Write),
        (MemberAdmin, Env::A) => Some(Level::Admin),
        (_, Env::B) => None,
    }
}

/// The level each environment operation needs, per DESIGN.md §3; `None` for
/// organization operations.
fn needed(op: Operation) -> Option<Level> {
    use Operation::*;
    match op {
        ListWorkflows | GetWorkflow | ListTemplates | GetTemplate | ListExecutions
        | GetExecution | WaitExecution | ExecutionLogs | FollowExecutionLogs | ListArtifacts
        | ReadArtifact | DownloadArtifact | WorkflowMetrics | ExecutionMetrics
        | ResourceHistory | ListLabels | ListRunners => Some(Level::Read),
        RunWorkflow | AbortExecution | UpdateExecutionTags => Some(Level::Run),
        CreateWorkflow | UpdateWorkflow | ApplyWorkflow | DeleteWorkflow | CreateTemplate
        | UpdateTemplate | ApplyTemplate | DeleteTemplate => Some(Level::Write),
        ListMembers | AddMember | UpdateMember | RemoveMember | CreateApiToken | ListApiTokens
        | GetApiToken | RotateApiToken | RevokeApiToken | ListMyGrants | RevokeMyGrant
        | ExportAudit | VerifyAudit | AuditActors | AuditSettings | SetAuditSettings | Whoami => {
            None
        }
    }
}

fn expect_env(kind: Kind, env: Env, op: Operation) -> Expect {
    let needed = needed(op).expect("an environment operation");
    match level(kind, env) {
        None => NotFound,
        Some(have) if have < needed => Forbidden(needed),
        Some(_) => Allowed,
    }
}

/// Organization operations: members and audit need an organization admin; tokens are for
/// every user (their own) and admin tokens; OAuth grants are for users only (their own);
/// other organizations see nothing. `whoami` names no organization: every principal may
/// ask who it is.
fn expect_org(kind: Kind, op: Operation) -> Expect {
    use Operation::*;
    if op == Whoami {
        return match kind {
            Outsider => Unauthenticated,
            _ => Allowed,
        };
    }
    let is_user = matches!(
        kind,
        OwnerUser | AdminUser | MemberRead | MemberRun | MemberWrite | MemberAdmin
    );
    if matches!(op, ListMyGrants | RevokeMyGrant) {
        return match kind {
            Outsider => NotFound,
            _ if is_user => Allowed,
            _ => Refused,
        };
    }
    let admin_only = match op {
        ListMembers | AddMember | UpdateMember | RemoveMember | ExportAudit | VerifyAudit
        | AuditActors | AuditSettings | SetAuditSettings => true,
        CreateApiToken | ListApiTokens | GetApiToken | RotateApiToken | RevokeApiToken => false,
        _ => panic!("{op:?} is an environment operation"),
    };
    let is_admin = matches!(kind, OwnerUser | AdminUser | AdminToken);
    match kind {
        Outsider => NotFound,
        _ if is_admin => Allowed,
        _ if !admin_only && is_user => Allowed,
        _ => Forbidden(Level::Admin),
    }
}

#[test]
fn the_tables_agree_with_hand_written_rows() {
    use Operation::*;
    type Row = (Kind, Env, &'static [(Operation, Expect)]);
    let rows: &[Row] = &[
        (
            MemberRun,
            Env::A,
            &[
                (ListWorkflows, Allowed),
                (RunWorkflow, Allowed),
                (AbortExecution, Allowed),
                (UpdateExecutionTags, Allowed),
                (DownloadArtifact, Allowed),
                (CreateWorkflow, Forbidden(Level::Write)),
                (DeleteTemplate, Forbidden(Level::Write)),
            ],
        ),
        (
            TokenRead,
            Env::A,
            &[
                (FollowExecutionLogs, Allowed),
                (RunWorkflow, Forbidden(Level::Run)),
                (ApplyTemplate, Forbidden(Level::Write)),
            ],
        ),
        (
            OrgReadToken,
            Env::B,
            &[
                (GetExecution, Allowed),
                (RunWorkflow, Forbidden(Level::Run)),
                (ApplyWorkflow, Forbidden(Level::Write)),
            ],
        ),
        (
            MemberAdmin,
            Env::B,
            &[(ListWorkflows, NotFound), (DeleteWorkflow, NotFound)],
        ),
        (
            TokenWrite,
            Env::A,
            &[(DeleteWorkflow, Allowed), (AbortExecution, Allowed)],
        ),
        (AdminToken, Env::B, &[(UpdateTemplate, Allowed)]),
        (AdminToken, Env::C, &[(ListRunners, NotFound)]),
        (OwnerUser, Env::C, &[(GetWorkflow, NotFound)]),
    ];
    for (kind, env, ops) in rows {
        for (op, expected) in *ops {
            assert_eq!(
                expect_env(*kind, *env, *op),
                *expected,
                "{kind:?} {env:?} {op:?}"
            );
        }
    }
    let org_rows = [
        (MemberWrite, AddMember, Forbidden(Level::Admin)),
        (MemberAdmin, VerifyAudit, Forbidden(Level::Admin)),
        (TokenRun, ListApiTokens, Forbidden(Level::Admin)),
        (OrgReadToken, ExportAudit, Forbidden(Level::Admin)),
        (AdminToken, VerifyAudit, Allowed),
        (AdminUser, RemoveMember, Allowed),
        (MemberRead, CreateApiToken, Allowed),
        (Outsider, ListApiTokens, NotFound),
        (MemberRead, RevokeMyGrant, Allowed),
        (AdminToken, ListMyGrants, Refused),
        (TokenRead, RevokeMyGrant, Refused),
        (Outsider, ListMyGrants, NotFound),
        (Outsider, Whoami, Unauthenticated),
        (TokenRead, Whoami, Allowed),
    ];
    for (kind, op, expected) in org_rows {
        assert_eq!(expect_org(kind, op), expected, "{kind:?} {op:?}");
    }
    // Every operation is in exactly one of the two tables.
    let env_ops = Operation::ALL
        .iter()
        .filter(|op| needed(**op).is_some())
        .count();
    assert_eq!((env_ops, Operation::ALL.len() - env_ops), (28, 17));
}

struct World {
    app: TestApp,
    owner: Actor,
    other_admin: Actor,
    actors: BTreeMap<Kind, Actor>,
    counter: AtomicUsize,
    /// Executions started by allowed runs: (environment, execution).
    runs: Mutex<Vec<(Uuid, Uuid)>>,
}

const SMOKE: &str = "steps:\n- name: report\n  shell: printf 'line one\\nline two\\n' > report.txt\n  artifacts:\n    paths:\n    - report.txt";

fn template_source(name: &str) -> String {
    format!(
        "kind: TestWorkflowTemplate\nmetadata:\n  name: {name}\nspec:\n  steps:\n  - shell: echo t\n"
    )
}

impl World {
    async fn new() -> Self {
        let app = TestApp::start(4).await;
        let dev = app.t.dev.id;
        let owner = app.person("owner@acme.test", OrgRole::Owner, &[]).await;
        let other_admin = actor(user(app.t.other.id, Access::OrgAdmin));
        let mut actors = BTreeMap::new();
        actors.insert(OwnerUser, owner.clone());
        actors.insert(
            AdminUser,
            app.person("admin@acme.test", OrgRole::Admin, &[]).await,
        );
        for (kind, level) in [
            (MemberRead, Level::Read),
            (MemberRun, Level::Run),
            (MemberWrite, Level::Write),
            (MemberAdmin, Level::Admin),
        ] {
            let email = format!("{kind:?}@acme.test").to_lowercase();
            actors.insert(
                kind,
                app.person(&email, OrgRole::Member, &[(dev, level)]).await,
            );
        }
        for (kind, request) in [
            (AdminToken, new_token(ApiTokenKind::Admin, &[])),
            (
                TokenRead,
                new_token(ApiTokenKind::Member, &[("dev", Level::Read)]),
            ),
            (
                TokenRun,
                new_token(ApiTokenKind::Member, &[("dev", Level::Run)]),
            ),
            (
                TokenWrite,
                new_token(ApiTokenKind::Member, &[("dev", Level::Write)]),
            ),
            (OrgReadToken, new_token(ApiTokenKind::OrgRead, &[])),
        ] {
            let created = app
                .plane
                .create_api_token(&owner, "acme", &request)
                .await
                .unwrap();
            let principal = app.bearer(&created.secret).await;
            assert_eq!(principal.principal.kind, PrincipalKind::ApiToken);
            actors.insert(kind, principal);
        }
        actors.insert(Outsider, other_admin.clone());
        let world = Self {
            app,
            owner,
            other_admin,
            actors,
            counter: AtomicUsize::new(0),
            runs: Mutex::new(Vec::new()),
        };
        for env in ENVS {
            world.seed(env).await;
        }
        world
    }

    fn env_ref(&self, env: Env) -> EnvRef {
        match env {
            Env::A => EnvRef::new("acme", "dev"),
            Env::B => EnvRef::new("acme", "staging"),
            Env::C => EnvRef::new("other", "dev"),
        }
    }

    fn env_id(&self, env: Env) -> Uuid {
        match env {
            Env::A => self.app.t.dev.id,
            Env::B => self.app.t.staging.id,
            Env::C => self.app.t.other_dev.id,
        }
    }

    /// An admin of the environment's organization, to prepare things.
    fn seeder(&self, env: Env) -> &Actor {
        match env {
            Env::C => &self.other_admin,
            _ => &self.owner,
        }
    }

    /// Workflow `smoke` (with an artifact), template `tpl`, finished execution `smoke-1`.
    async fn seed(&self, env: Env) {
        let (p, r, who) = (&self.app.plane, self.env_ref(env), self.seeder(env));
        p.create_workflow(who, &r, &workflow("smoke", SMOKE))
            .await
            .unwrap();
        p.create_template(who, &r, &template_source("tpl"))
            .await
            .unwrap();
        let e = p
            .run_workflow(who, &r, "smoke", &Default::default())
            .await
            .unwrap();
        assert_eq!(e.name, "smoke-1");
        self.passed(self.env_id(env), e.id).await;
    }

    /// Waits (60 s at most) until the execution passed.
    async fn passed(&self, env_id: Uuid, id: Uuid) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let e = self
                .app
                .store
                .get_execution(env_id, &id.to_string())
                .await
                .unwrap()
                .unwrap();
            if e.status.is_terminal() {
                assert_eq!(e.status, ExecutionStatus::Passed, "{e:?}");
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "execution {id} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn next(&self) -> usize {
        self.counter.fetch_add(1, Ordering::SeqCst)
    }

    /// An execution the store says is running but no process runs (abort records it).
    async fn orphan(&self, env: Env) -> String {
        let mut e = Execution {
            id: Uuid::now_v7(),
            env_id: self.env_id(env),
            workflow_id: Uuid::now_v7(),
            workflow_name: "smoke".into(),
            number: 0,
            name: String::new(),
            status: ExecutionStatus::Running,
            config: BTreeMap::new(),
            tags: BTreeMap::new(),
            labels: BTreeMap::new(),
            started_by: ActorRef {
                kind: PrincipalKind::User,
                id: Uuid::now_v7(),
                name: "seed".into(),
            },
            queued_at: time::OffsetDateTime::now_utc(),
            started_at: Some(time::OffsetDateTime::now_utc()),
            finished_at: None,
            duration_ms: None,
            steps: Vec::new(),
            junit: None,
            error: None,
            plan: serde_json::Value::Null,
            runner: None,
        };
        self.app.store.insert_execution(&mut e).await.unwrap();
        e.name
    }

    /// One real call of `op` by `who` in `env`, with valid arguments.
    async fn env_call(&self, who: &Actor, env: Env, op: Operation) -> Result<()> {
        use Operation::*;
        let p = &self.app.plane;
        let r = self.env_ref(env);
        let seeder = self.seeder(env);
        let n = self.next();
        let (f, pg) = (Default::default(), Default::default());
        match op {
            ListWorkflows => p.list_workflows(who, &r, &f, &pg).await.map(drop),
            GetWorkflow => p.get_workflow(who, &r, "smoke").await.map(drop),
            CreateWorkflow => p
                .create_workflow(who, &r, &shell_workflow(&format!("c-{n}"), "true"))
                .await
                .map(drop),
            UpdateWorkflow => p
                .update_workflow(who, &r, "smoke", &workflow("smoke", SMOKE))
                .await
                .map(drop),
            ApplyWorkflow => p
                .apply_workflow(who, &r, &shell_workflow(&format!("a-{n}"), "true"))
                .await
                .map(drop),
            DeleteWorkflow => {
                let name = format!("d-{n}");
                p.create_workflow(seeder, &r, &shell_workflow(&name, "true"))
                    .await
                    .unwrap();
                p.delete_workflow(who, &r, &name).await
            }
            ListTemplates => p.list_templates(who, &r, &f, &pg).await.map(drop),
            GetTemplate => p.get_template(who, &r, "tpl").await.map(drop),
            CreateTemplate => p
                .create_template(who, &r, &template_source(&format!("ct-{n}")))
                .await
                .map(drop),
            UpdateTemplate => p
                .update_template(who, &r, "tpl", &template_source("tpl"))
                .await
                .map(drop),
            ApplyTemplate => p
                .apply_template(who, &r, &template_source(&format!("at-{n}")))
                .await
                .map(drop),
            DeleteTemplate => {
                let name = format!("dt-{n}");
                p.create_template(seeder, &r, &template_source(&name))
                    .await
                    .unwrap();
                p.delete_template(who, &r, &name).await
            }
            RunWorkflow => {
                let e = p
                    .run_workflow(who, &r, "smoke", &Default::default())
                    .await?;
                self.runs.lock().unwrap().push((self.env_id(env), e.id));
                Ok(())
            }
            ListExecutions => p
                .list_executions(who, &r, &Default::default(), &pg)
                .await
                .map(drop),
            GetExecution => p.get_execution(who, &r, "smoke-1").await.map(drop),
            WaitExecution => p
                .wait_for_execution(who, &r, "smoke-1", std::time::Duration::from_millis(10))
                .await
                .map(drop),
            AbortExecution => {
                let name = self.orphan(env).await;
                p.abort_execution(who, &r, &name).await.map(drop)
            }
            UpdateExecutionTags => {
                let tags = BTreeMap::from([("k".to_string(), format!("v{n}"))]);
                p.update_execution_tags(who, &r, "smoke-1", &tags)
                    .await
                    .map(drop)
            }
            ExecutionLogs => p
                .execution_logs(who, &r, "smoke-1", &LogQuery::default())
                .await
                .map(drop),
            FollowExecutionLogs => p
                .follow_execution_logs(who, &r, "smoke-1", None, 0)
                .await
                .map(drop),
            ListArtifacts => p.list_artifacts(who, &r, "smoke-1").await.map(drop),
            ReadArtifact => p
                .read_artifact(who, &r, "smoke-1", "report.txt", &ArtifactQuery::default())
                .await
                .map(drop),
            DownloadArtifact => p
                .download_artifact(who, &r, "smoke-1", "report.txt")
                .await
                .map(drop),
            WorkflowMetrics => p.workflow_metrics(who, &r, "smoke", 10).await.map(drop),
            ExecutionMetrics => p.execution_metrics(who, &r, "smoke-1").await.map(drop),
            ResourceHistory => p.resource_history(who, &r, "smoke", 10).await.map(drop),
            ListLabels => p.list_labels(who, &r).await.map(drop),
            ListRunners => p.list_runners(who, &r).await.map(drop),
            _ => panic!("{op:?} is an organization operation"),
        }
    }

    /// A member `owner` adds for `who` to act on.
    async fn target_member(&self, n: usize) -> String {
        let email = format!("target-{n}@acme.test");
        self.app
            .plane
            .add_member(&self.owner, "acme", &new_member(&email))
            .await
            .unwrap();
        email
    }

    /// A token `who` may manage if anyone can: their own when they may create tokens.
    async fn token_for(&self, kind: Kind, who: &Actor) -> Uuid {
        let request = new_token(ApiTokenKind::Member, &[("dev", Level::Read)]);
        let creator = match expect_org(kind, Operation::CreateApiToken) {
            Allowed => who,
            _ => &self.owner,
        };
        self.app
            .plane
            .create_api_token(creator, "acme", &request)
            .await
            .unwrap()
            .token
            .id
    }

    async fn org_call(&self, kind: Kind, who: &Actor, op: Operation) -> Result<()> {
        use Operation::*;
        let p = &self.app.plane;
        let n = self.next();
        let now = time::OffsetDateTime::now_utc();
        let hour = time::Duration::hours(1);
        match op {
            ListMembers => p.list_members(who, "acme").await.map(drop),
            AddMember => p
                .add_member(who, "acme", &new_member(&format!("new-{n}@acme.test")))
                .await
                .map(drop),
            UpdateMember => {
                let target = self.target_member(n).await;
                let update = MemberUpdate {
                    grants: Some(BTreeMap::from([("dev".to_string(), Level::Read)])),
                    ..MemberUpdate::default()
                };
                p.update_member(who, "acme", &target, &update)
                    .await
                    .map(drop)
            }
            RemoveMember => {
                let target = self.target_member(n).await;
                p.remove_member(who, "acme", &target).await
            }
            CreateApiToken => p
                .create_api_token(
                    who,
                    "acme",
                    &new_token(ApiTokenKind::Member, &[("dev", Level::Read)]),
                )
                .await
                .map(drop),
            ListApiTokens => p.list_api_tokens(who, "acme").await.map(drop),
            GetApiToken => {
                let id = self.token_for(kind, who).await;
                p.get_api_token(who, "acme", id).await.map(drop)
            }
            RotateApiToken => {
                let id = self.token_for(kind, who).await;
                p.rotate_api_token(who, "acme", id, Some(60))
                    .await
                    .map(drop)
            }
            RevokeApiToken => {
                let id = self.token_for(kind, who).await;
                p.revoke_api_token(who, "acme", id).await.map(drop)
            }
            ListMyGrants => p.list_my_grants(who, "acme").await.map(drop),
            Whoami => p.whoami(who).await.map(drop),
            RevokeMyGrant => {
                // A user's own grant; anyone else asks for a made-up ID (refused or
                // not found before any lookup).
                let id = match kind {
                    Outsider => Uuid::now_v7(),
                    _ if who.principal.kind == PrincipalKind::User => {
                        crate::grants::grant_for(&self.app, who.principal.id, "mcp:read")
                            .await
                            .id
                    }
                    _ => Uuid::now_v7(),
                };
                p.revoke_my_grant(who, "acme", id).await
            }
            ExportAudit => p
                .export_audit(who, "acme", &AuditFilter::default())
                .await
                .map(drop),
            VerifyAudit => p.verify_audit(who, "acme").await.map(drop),
            AuditActors => p
                .audit_actors(who, "acme", now - hour, now + hour)
                .await
                .map(drop),
            AuditSettings => p.audit_settings(who, "acme").await.map(drop),
            SetAuditSettings => p
                .set_audit_settings(
                    who,
                    "acme",
                    &assay_core::audit::AuditSettings {
                        retention_days: 180,
                    },
                )
                .await
                .map(drop),
            _ => panic!("{op:?} is an environment operation"),
        }
    }
}

fn new_member(email: &str) -> NewMember {
    NewMember {
        email: email.into(),
        display_name: String::new(),
        password: None,
        role: OrgRole::Member,
        grants: BTreeMap::new(),
    }
}

fn classify(result: Result<()>) -> std::result::Result<Expect, Error> {
    match result {
        Ok(()) => Ok(Allowed),
        Err(Error::Forbidden { needed }) => Ok(Forbidden(needed)),
        Err(Error::Refused(_)) => Ok(Refused),
        Err(Error::Unauthenticated(_)) => Ok(Unauthenticated),
        Err(Error::NotFound {
            kind: "environment" | "organization",
            ..
        }) => Ok(NotFound),
        Err(other) => Err(other),
    }
}

#[tokio::test]
async fn every_principal_kind_environment_and_operation_gets_exactly_its_answer() {
    let world = World::new().await;
    let mut mismatches = Vec::new();
    let mut counts = BTreeMap::<&str, usize>::new();
    for op in Operation::ALL.iter().copied() {
        if needed(op).is_none() {
            continue;
        }
        for kind in ENV_KINDS {
            let who = &world.actors[&kind];
            for env in ENVS {
                let expected = expect_env(kind, env, op);
                let events_before = world.app.store.audit_batched_events.load(Ordering::SeqCst);
                match classify(world.env_call(who, env, op).await) {
                    Ok(actual) if actual == expected => {}
                    Ok(actual) => mismatches.push(format!(
                        "{kind:?} {env:?} {op:?}: expected {expected:?}, got {actual:?}"
                    )),
                    Err(e) => mismatches.push(format!(
                        "{kind:?} {env:?} {op:?}: expected {expected:?}, failed: {e}"
                    )),
                }
                // Every call, allowed or not, left its event (plus any seeding calls').
                let written =
                    world.app.store.audit_batched_events.load(Ordering::SeqCst) - events_before;
                assert!(written >= 1, "{kind:?} {env:?} {op:?} was not audited");
                *counts
                    .entry(match expected {
                        Allowed => "allowed",
                        Forbidden(_) => "forbidden",
                        NotFound => "not found",
                        Refused => "refused",
                        Unauthenticated => "unauthenticated",
                    })
                    .or_default() += 1;
            }
        }
    }
    for op in Operation::ALL.iter().copied() {
        if needed(op).is_some() {
            continue;
        }
        for (kind, who) in &world.actors {
            let expected = expect_org(*kind, op);
            match classify(world.org_call(*kind, who, op).await) {
                Ok(actual) if actual == expected => {}
                Ok(actual) => mismatches.push(format!(
                    "{kind:?} {op:?}: expected {expected:?}, got {actual:?}"
                )),
                Err(e) => mismatches.push(format!(
                    "{kind:?} {op:?}: expected {expected:?}, failed: {e}"
                )),
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // 28 operations × 11 principals × 3 environments, split as the tables say.
    assert_eq!(counts.values().sum::<usize>(), 924);
    assert_eq!(counts["not found"], 28 * (11 + 7));

    // 8 allowed runs in A, 3 in B; let them finish before the app goes away.
    let runs = world.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 11);
    for (env_id, id) in runs {
        world.passed(env_id, id).await;
    }
}
