use std::sync::Arc;

use async_trait::async_trait;

use crate::domains::*;
use crate::error::{Result, StoreError};
use crate::model::*;
use crate::traffic::*;

/// Everything burrow persists. Implemented by [`crate::SqliteStore`] and [`crate::PgStore`].
///
/// Methods returning `Option` answer `None` for a missing row; methods acting on a row that
/// must exist answer [`StoreError::NotFound`]; unique violations answer
/// [`StoreError::Conflict`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    // --- users -----------------------------------------------------------------------------
    async fn create_user(&self, user: NewUser) -> Result<User>;
    async fn user_by_id(&self, id: i64) -> Result<Option<User>>;
    /// Emails are compared case-insensitively (stored lower case).
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    async fn count_users(&self) -> Result<i64>;
    async fn list_users(&self) -> Result<Vec<User>>;
    /// `NotFound` when there is no such user.
    async fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<User>;
    /// `NotFound` when there is no such user.
    async fn set_user_password(&self, id: i64, password_hash: &str) -> Result<()>;
    /// The user and their memberships, tokens and keys. `Conflict` (naming the project) while
    /// the user is the last owner of a project; `NotFound` when absent.
    async fn delete_user(&self, id: i64) -> Result<()>;

    // --- projects --------------------------------------------------------------------------
    /// Creates the project and makes `owner_id` its owner, in one transaction.
    async fn create_project(&self, name: &str, owner_id: i64) -> Result<Project>;
    async fn project_by_id(&self, id: i64) -> Result<Option<Project>>;
    async fn list_projects_for_user(&self, user_id: i64) -> Result<Vec<Project>>;
    async fn list_all_projects(&self) -> Result<Vec<Project>>;
    async fn add_member(&self, project_id: i64, user_id: i64, role: &str) -> Result<ProjectMember>;
    async fn list_members(&self, project_id: i64) -> Result<Vec<ProjectMember>>;
    /// `NotFound` when there is no such project.
    async fn rename_project(&self, id: i64, name: &str) -> Result<Project>;
    /// The project and everything in it (members, devices, tunnels); `NotFound` when absent.
    async fn delete_project(&self, id: i64) -> Result<()>;
    /// `NotFound` when not a member; `Conflict` when it is the project's last owner.
    async fn remove_member(&self, project_id: i64, user_id: i64) -> Result<()>;
    /// `NotFound` when not a member; `Conflict` when the last owner would lose the role.
    async fn set_member_role(
        &self,
        project_id: i64,
        user_id: i64,
        role: &str,
    ) -> Result<ProjectMember>;
    async fn is_member(&self, project_id: i64, user_id: i64) -> Result<bool>;
    /// The user's role in the project, `None` when not a member.
    async fn member_role(&self, project_id: i64, user_id: i64) -> Result<Option<String>>;

    // --- invitations -----------------------------------------------------------------------
    /// Replaces any pending invitation of the same email to the same project.
    async fn create_invitation(&self, invitation: NewInvitation) -> Result<Invitation>;
    /// Pending (not accepted, not expired at `now`) invitations, oldest first.
    async fn list_invitations(&self, project_id: i64, now: Timestamp) -> Result<Vec<Invitation>>;
    /// `NotFound` when the project has no such pending invitation.
    async fn delete_invitation(&self, project_id: i64, id: i64) -> Result<()>;
    async fn invitation_by_hash(&self, token_hash: &str) -> Result<Option<Invitation>>;
    /// Spends the invitation (pending, unexpired at `now`, for `user_id`'s email) and makes the
    /// user a member with its role, in one transaction. `NotFound` when the invitation is not
    /// pending any more; `Conflict` when the user is already a member (nothing spent).
    async fn accept_invitation(
        &self,
        token_hash: &str,
        user_id: i64,
        now: Timestamp,
    ) -> Result<ProjectMember>;
    /// Creates the account for the invitation's email and accepts it, in one transaction:
    /// `NotFound` for an invitation not pending, `Conflict` when the email has an account.
    async fn sign_up_by_invitation(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<(User, ProjectMember)>;

    // --- personal access tokens ------------------------------------------------------------
    async fn create_personal_token(&self, token: NewPersonalToken) -> Result<PersonalToken>;
    /// The user's tokens that are not revoked, newest first.
    async fn list_personal_tokens(&self, user_id: i64) -> Result<Vec<PersonalToken>>;
    async fn personal_token_by_hash(&self, token_hash: &str) -> Result<Option<PersonalToken>>;
    /// `NotFound` when the user has no such live token.
    async fn revoke_personal_token(&self, user_id: i64, id: i64, at: Timestamp) -> Result<()>;
    /// Records a use (at most about once a minute per token: no write per request).
    async fn touch_personal_token(&self, id: i64, at: Timestamp) -> Result<()>;

    // --- devices ---------------------------------------------------------------------------
    async fn create_device(&self, device: NewDevice) -> Result<Device>;
    async fn device_by_id(&self, id: i64) -> Result<Option<Device>>;
    async fn device_by_dsn(&self, dsn: &str) -> Result<Option<Device>>;
    async fn list_devices_for_user(&self, user_id: i64) -> Result<Vec<Device>>;
    async fn list_devices_in_project(&self, project_id: i64) -> Result<Vec<Device>>;
    /// Deletes the device; its reverse tunnels and enrollments go with it (ON DELETE CASCADE).
    async fn delete_device(&self, id: i64) -> Result<()>;
    /// `NotFound` when there is no such device.
    async fn rename_device(&self, id: i64, name: &str) -> Result<Device>;
    async fn touch_device(&self, id: i64, at: Timestamp) -> Result<()>;
    /// Records the certificate issued at enrollment and clears any revocation.
    async fn set_device_certificate(
        &self,
        id: i64,
        serial: &str,
        not_after: Timestamp,
    ) -> Result<()>;
    async fn revoke_device(&self, id: i64, at: Timestamp) -> Result<()>;

    // --- enrollment ------------------------------------------------------------------------
    async fn create_enrollment(
        &self,
        device_id: i64,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<Enrollment>;
    /// Atomically marks the token used if it exists, is unused and has not expired at `now`;
    /// answers the device id, or `None`. A second call with the same token answers `None`.
    async fn consume_enrollment(&self, token_hash: &str, now: Timestamp) -> Result<Option<i64>>;

    // --- reverse tunnels -------------------------------------------------------------------
    async fn create_reverse_tunnel(&self, tunnel: NewReverseTunnel) -> Result<ReverseTunnel>;
    async fn reverse_tunnel_by_id(&self, id: i64) -> Result<Option<ReverseTunnel>>;
    /// Lookup by host name (the `public_url` column, lower case).
    async fn reverse_tunnel_by_public_url(&self, public_url: &str)
        -> Result<Option<ReverseTunnel>>;
    async fn list_reverse_tunnels(&self, device_id: i64) -> Result<Vec<ReverseTunnel>>;
    async fn list_all_reverse_tunnels(&self) -> Result<Vec<ReverseTunnel>>;
    /// Tunnels with an `expires_at` earlier than `before` (for cleanup and rotation).
    async fn list_reverse_tunnels_expiring_before(
        &self,
        before: Timestamp,
    ) -> Result<Vec<ReverseTunnel>>;
    async fn update_reverse_tunnel(
        &self,
        id: i64,
        patch: ReverseTunnelPatch,
        now: Timestamp,
    ) -> Result<ReverseTunnel>;
    async fn set_reverse_tunnel_broker(
        &self,
        id: i64,
        link: BrokerLink,
        now: Timestamp,
    ) -> Result<ReverseTunnel>;
    async fn delete_reverse_tunnel(&self, id: i64) -> Result<()>;
    /// Adds batched request counts (one statement per tunnel, no read-modify-write).
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<()>;

    // --- broker tunnels --------------------------------------------------------------------
    async fn insert_broker_tunnel(&self, tunnel: &BrokerTunnel) -> Result<()>;
    async fn broker_tunnel(&self, tunnel_id: &str) -> Result<Option<BrokerTunnel>>;
    /// Finds the tunnel whose current source or destination token hash is `token_hash`.
    async fn broker_tunnel_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<(BrokerTunnel, TokenMode)>>;
    async fn list_broker_tunnels(&self, filter: &BrokerTunnelFilter) -> Result<Vec<BrokerTunnel>>;
    /// Open tunnels whose `expires_at` is earlier than `before`.
    async fn list_open_broker_tunnels_expiring_before(
        &self,
        before: Timestamp,
    ) -> Result<Vec<BrokerTunnel>>;
    /// Overwrites the whole row (tokens, states, status, tags...). NotFound when absent.
    async fn update_broker_tunnel(&self, tunnel: &BrokerTunnel) -> Result<()>;
    /// Marks the token slot of `mode` used, only if its hash is still `token_hash` and it is
    /// unused: answers false when another handshake won the race (single use).
    async fn spend_token(
        &self,
        tunnel_id: &str,
        mode: TokenMode,
        token_hash: &str,
        client_token_hash: Option<&str>,
        at: Timestamp,
    ) -> Result<bool>;
    async fn set_connection_state(
        &self,
        tunnel_id: &str,
        mode: TokenMode,
        connected: bool,
        at: Timestamp,
    ) -> Result<()>;
    async fn delete_broker_tunnel(&self, tunnel_id: &str) -> Result<()>;

    // --- access log ------------------------------------------------------------------------
    async fn insert_access_log(&self, entries: &[NewAccessLogEntry]) -> Result<()>;
    /// Newest first.
    async fn list_access_log(
        &self,
        reverse_tunnel_id: i64,
        limit: i64,
    ) -> Result<Vec<AccessLogEntry>>;

    // --- traffic analytics -----------------------------------------------------------------
    async fn insert_traffic_rollups(&self, rows: &[TrafficRollup]) -> Result<()>;
    /// Rows of buckets starting in `[from, to)`, oldest first; a bucket may have several rows
    /// (nodes, flushes), which the caller adds up.
    async fn list_traffic_rollups(
        &self,
        reverse_tunnel_id: i64,
        resolution_secs: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<TrafficRollup>>;
    /// The busiest tunnels of a project over `[from, to)` (by requests, most first).
    async fn project_tunnel_usage(
        &self,
        project_id: i64,
        from: Timestamp,
        to: Timestamp,
        limit: i64,
    ) -> Result<Vec<TunnelUsage>>;
    /// Adds per-principal hourly usage to the stored rows (an upsert per row, one
    /// transaction); rows of tunnels deleted meanwhile are dropped.
    async fn add_principal_usage(&self, rows: &[PrincipalUsage]) -> Result<()>;
    /// Who used which device of a project over the hours starting in `[from, to)`, most
    /// requests first.
    async fn project_principal_usage(
        &self,
        project_id: i64,
        from: Timestamp,
        to: Timestamp,
        limit: i64,
    ) -> Result<Vec<DevicePrincipalUsage>>;
    /// Newest first.
    async fn list_access_log_filtered(
        &self,
        filter: &AccessLogFilter,
    ) -> Result<Vec<AccessLogEntry>>;
    /// Deletes access log entries and rollups older than the cutoffs.
    async fn prune_traffic(&self, cutoffs: &TrafficCutoffs) -> Result<PrunedRows>;

    // --- API keys (AWS-compatible API) -----------------------------------------------------
    async fn create_api_key(&self, key: &ApiKey) -> Result<()>;
    async fn api_key(&self, access_key_id: &str) -> Result<Option<ApiKey>>;
    async fn list_api_keys_for_user(&self, user_id: i64) -> Result<Vec<ApiKey>>;
    async fn revoke_api_key(&self, access_key_id: &str, at: Timestamp) -> Result<()>;

    // --- scheduler -------------------------------------------------------------------------
    /// Claims one run of job `name`: succeeds (true) for exactly one caller among all nodes
    /// when the job's last run started at or before `now - interval`. Atomic across nodes.
    async fn claim_job(
        &self,
        name: &str,
        now: Timestamp,
        interval: chrono::Duration,
    ) -> Result<bool>;

    // --- edge login codes (any node redeems what any node minted) -----------------------
    /// Stores a code; drops expired codes and all but the user's newest `keep_per_user`.
    async fn insert_login_code(&self, code: &LoginCode, keep_per_user: i64) -> Result<()>;
    /// Removes and answers the code with this hash (single use, atomic across nodes).
    async fn take_login_code(&self, code_hash: &str) -> Result<Option<LoginCode>>;

    // --- key/value settings (a cluster's sealed keys live here; see burrow's `cluster`) ---
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    async fn put_setting(&self, key: &str, value: &str) -> Result<()>;
    /// Inserts `key` only when absent: true when this call inserted it (one winner among
    /// concurrent callers on any number of nodes).
    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<bool>;

    // --- cluster nodes ---------------------------------------------------------------------
    /// Claims the lease of `claim.name` at `now`: `None` when claimed, else the live node in
    /// the way (the same name held by another live instance or, for an exclusive claim, any
    /// other live node). A lease that lapsed ([`NODE_LEASE_SECS`]) or was released is free.
    async fn claim_node(&self, claim: &NodeClaim, now: Timestamp) -> Result<Option<Node>>;
    /// Renews a held lease (and records the tunnels held); false when it is not held any more.
    async fn renew_node(
        &self,
        name: &str,
        instance_id: &str,
        now: Timestamp,
        tunnels_held: i64,
    ) -> Result<bool>;
    /// Frees the lease at once (graceful stop).
    async fn release_node(&self, name: &str, instance_id: &str, now: Timestamp) -> Result<()>;
    async fn list_nodes(&self) -> Result<Vec<Node>>;

    // --- sharing a tunnel: per-tunnel API keys, share links, audit -------------------------
    async fn create_tunnel_key(&self, key: NewTunnelKey) -> Result<TunnelKey>;
    async fn list_tunnel_keys(&self, reverse_tunnel_id: i64) -> Result<Vec<TunnelKey>>;
    async fn tunnel_key_by_hash(&self, key_hash: &str) -> Result<Option<TunnelKey>>;
    async fn revoke_tunnel_key(
        &self,
        reverse_tunnel_id: i64,
        id: i64,
        at: Timestamp,
    ) -> Result<TunnelKey>;
    async fn touch_tunnel_key(&self, id: i64, at: Timestamp) -> Result<()>;
    async fn create_share_link(&self, link: NewShareLink) -> Result<ShareLink>;
    async fn list_share_links(&self, reverse_tunnel_id: i64) -> Result<Vec<ShareLink>>;
    async fn share_link_by_hash(&self, secret_hash: &str) -> Result<Option<ShareLink>>;
    async fn share_link_by_id(&self, id: i64) -> Result<Option<ShareLink>>;
    async fn revoke_share_link(
        &self,
        reverse_tunnel_id: i64,
        id: i64,
        at: Timestamp,
    ) -> Result<ShareLink>;
    /// Counts `visitor` (an opaque id) against the link's `max_uses`, atomically across
    /// nodes: each distinct visitor is counted once.
    async fn admit_share_link_visitor(
        &self,
        link_id: i64,
        visitor: &str,
        at: Timestamp,
    ) -> Result<VisitorAdmission>;
    async fn insert_sharing_audit(&self, entry: NewSharingAuditEntry) -> Result<()>;
    async fn list_sharing_audit(
        &self,
        project_id: i64,
        limit: i64,
    ) -> Result<Vec<SharingAuditEntry>>;

    // --- custom domains and ACME certificates (docs/custom-domains.md) --------------------
    /// `Conflict` when another tunnel already has the hostname.
    async fn create_custom_domain(&self, d: NewCustomDomain) -> Result<CustomDomain>;
    async fn list_custom_domains(&self, reverse_tunnel_id: i64) -> Result<Vec<CustomDomain>>;
    async fn custom_domain_by_id(&self, id: i64) -> Result<Option<CustomDomain>>;
    async fn custom_domain_by_hostname(&self, hostname: &str) -> Result<Option<CustomDomain>>;
    /// The domain and its certificate; `NotFound` when absent.
    async fn delete_custom_domain(&self, id: i64) -> Result<()>;
    /// Hostnames whose ownership is proven: the ones the edge serves.
    async fn served_custom_domains(&self) -> Result<Vec<String>>;
    /// The tunnel of a served custom hostname.
    async fn reverse_tunnel_by_custom_domain(
        &self,
        hostname: &str,
    ) -> Result<Option<ReverseTunnel>>;
    /// Up to `limit` domains due for a check at `now`, each moved to `lease_until` so that no
    /// other node takes it meanwhile.
    async fn claim_due_custom_domains(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<CustomDomain>>;
    /// `NotFound` when absent.
    async fn update_custom_domain_state(
        &self,
        id: i64,
        state: &DomainState,
    ) -> Result<CustomDomain>;
    /// Makes the domain due at `at`, its backoff reset. `NotFound` when absent.
    async fn check_custom_domain_now(&self, id: i64, at: Timestamp) -> Result<CustomDomain>;
    /// Inserts or replaces the certificate of `cert.name`.
    async fn put_certificate(&self, cert: &StoredCertificate) -> Result<()>;
    async fn certificate(&self, name: &str) -> Result<Option<StoredCertificate>>;
    /// Removes the certificate of `name` (nothing when there is none).
    async fn delete_certificate(&self, name: &str) -> Result<()>;
    /// Every certificate's name and last change (what a node compares to reload).
    async fn certificate_stamps(&self) -> Result<Vec<(String, Timestamp)>>;
    /// Stores a challenge answer (replacing one under the same key); drops expired ones.
    async fn put_acme_challenge(&self, key: &str, value: &str, expires_at: Timestamp)
        -> Result<()>;
    async fn acme_challenge(&self, key: &str, now: Timestamp) -> Result<Option<String>>;
    async fn delete_acme_challenge(&self, key: &str) -> Result<()>;
}

/// Opens the store named by `url`: `sqlite://PATH` (created if missing, WAL) or
/// `postgres://...`, and runs that backend's migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(crate::PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(crate::SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::InvalidUrl(
            "expected sqlite://PATH or postgres://...".to_string(),
        ))
    }
}
