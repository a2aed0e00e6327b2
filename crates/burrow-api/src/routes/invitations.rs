//! Joining a project by invitation: owners and admins invite an email with a role; the invitee
//! accepts with the single-use token of the link, signing up first when they have no account.
//! Inviting answers the same whether or not the email has an account (docs/accounts.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use burrow_store::{Invitation, NewInvitation, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{Action, Role};
use crate::auth::{hash_password, AuthUser};
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::mail::InvitationMail;
use crate::routes::projects::{parse_id, MemberResponse};
use crate::routes::reverse_tunnels::Message;
use crate::routes::{project_with_role, visible_project};
use crate::sharing::secret::{hash_secret, new_secret};
use crate::AppState;

/// Every invitation token starts with this.
const PREFIX: &str = "binv_";
/// How long an invitation may be accepted.
const TTL_DAYS: i64 = 7;
/// Pending invitations per project (a bound on rows a loop can make).
const MAX_PENDING: usize = 500;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "new.operator@example.com", "role": "member"}))]
pub struct CreateInvitation {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// owner (owners only), admin, member or viewer.
    #[schema(pattern = "^(owner|admin|member|viewer)$")]
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationResponse {
    pub id: i64,
    pub project_id: i64,
    pub email: String,
    pub role: String,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Invitation> for InvitationResponse {
    fn from(i: &Invitation) -> Self {
        InvitationResponse {
            id: i.id,
            project_id: i.project_id,
            email: i.email.clone(),
            role: i.role.clone(),
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// A new invitation, with its link (shown this once).
#[derive(Serialize, ToSchema)]
pub struct NewInvitationResponse {
    #[serde(flatten)]
    pub invitation: InvitationResponse,
    /// `<api origin>/invite#token=...`: pass it on to the invitee (the token is in the fragment,
    /// which browsers never send to a server).
    pub accept_url: String,
    /// The invitation's token (`binv_...`, also in `accept_url`), for clients that build their
    /// own link; burrow keeps only its SHA-256.
    pub token: String,
    /// Whether burrow mailed the link (SMTP configured).
    pub emailed: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "binv_..."}))]
pub struct InvitationToken {
    pub token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "binv_...", "password": "a-long-password"}))]
pub struct SignUp {
    pub token: String,
    /// 8-1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// What an invitation is for, for its holder.
#[derive(Serialize, ToSchema)]
pub struct InvitationDetails {
    pub project_id: i64,
    pub project_name: String,
    pub email: String,
    pub role: String,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Whether the invited email has an account (sign in and accept) or not (sign up).
    pub account_exists: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SignedUp {
    pub access_token: String,
    #[schema(value_type = String, example = "bearer")]
    pub token_type: &'static str,
    pub expires_in: i64,
    pub project_id: i64,
}

/// Invite an email to a project with a role (owners and admins; only owners invite owners).
#[utoipa::path(post, path = "/api/v1/projects/{id}/invitations", operation_id = "create_invitation",
    tag = "projects", request_body = CreateInvitation,
    params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 201, description = "the invitation and its link (shown once)",
        body = NewInvitationResponse),
        (status = 403, description = "the caller's role does not allow it"),
        (status = 409, description = "already a member")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<CreateInvitation>,
) -> ApiResult<(StatusCode, Json<NewInvitationResponse>)> {
    let (project, caller) =
        project_with_role(&state, &user, parse_id(&id)?, Action::ManageMembers).await?;
    let email = domain::email(&req.email)?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::validation("role", "role must be owner, admin, member or viewer")
    })?;
    if role == Role::Owner && !caller.may(Action::ManageProject) {
        return Err(ApiError::Forbidden("only owners invite owners"));
    }
    // Only members are named: the inviter sees them in the member list anyway.
    if let Some(existing) = state.store.user_by_email(&email).await? {
        if state.store.is_member(project.id, existing.id).await? {
            return Err(ApiError::Conflict(format!(
                "{email} is already a member of this project"
            )));
        }
    }
    let now = chrono::Utc::now();
    if state.store.list_invitations(project.id, now).await?.len() >= MAX_PENDING {
        return Err(ApiError::Conflict(format!(
            "at most {MAX_PENDING} pending invitations; withdraw some first"
        )));
    }
    let secret = new_secret(PREFIX);
    let row = state
        .store
        .create_invitation(NewInvitation {
            project_id: project.id,
            email,
            role: role.as_str().to_string(),
            token_hash: secret.hash,
            invited_by: user.id,
            created_at: now,
            expires_at: now + chrono::Duration::days(TTL_DAYS),
        })
        .await?;
    let accept_url = format!(
        "{}/invite#token={}",
        state.config.api_origin.trim_end_matches('/'),
        secret.secret
    );
    let token = secret.secret;
    let emailed = match &state.mailer {
        Some(mailer) => {
            mailer
                .send_invitation(&InvitationMail {
                    to: &row.email,
                    project: &project.name,
                    role: &row.role,
                    inviter: &user.email,
                    accept_url: &accept_url,
                    expires: row.expires_at,
                })
                .await
        }
        None => false,
    };
    tracing::info!(
        project_id = project.id,
        invitation_id = row.id,
        by = user.id,
        "invitation created"
    );
    Ok((
        StatusCode::CREATED,
        Json(NewInvitationResponse {
            invitation: InvitationResponse::from(&row),
            accept_url,
            token,
            emailed,
        }),
    ))
}

/// Pending invitations of a project (owners and admins; never their tokens).
#[utoipa::path(get, path = "/api/v1/projects/{id}/invitations", operation_id = "list_invitations",
    tag = "projects", params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 200, description = "pending invitations", body = [InvitationResponse])),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<InvitationResponse>>> {
    let project = visible_project(&state, &user, parse_id(&id)?, Action::ManageMembers).await?;
    let rows = state
        .store
        .list_invitations(project.id, chrono::Utc::now())
        .await?;
    Ok(Json(rows.iter().map(InvitationResponse::from).collect()))
}

/// Withdraw a pending invitation (owners and admins).
#[utoipa::path(delete, path = "/api/v1/projects/{id}/invitations/{invitation_id}",
    operation_id = "delete_invitation", tag = "projects",
    params(("id" = i64, Path, description = "The project's id", example = 1),
        ("invitation_id" = i64, Path, description = "The invitation's id", example = 1)),
    responses((status = 200, description = "withdrawn", body = Message)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, invitation)): Path<(String, String)>,
) -> ApiResult<Json<Message>> {
    let project = visible_project(&state, &user, parse_id(&id)?, Action::ManageMembers).await?;
    let invitation = parse_id(&invitation).map_err(|_| ApiError::NotFound("invitation"))?;
    state
        .store
        .delete_invitation(project.id, invitation)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("invitation"),
            other => other.into(),
        })?;
    Ok(Json(Message {
        message: "Invitation withdrawn successfully",
    }))
}

/// The invitation of `token` while it may still be accepted: 404 unknown, 410 used or expired.
async fn pending(state: &AppState, token: &str) -> ApiResult<Invitation> {
    let inv = state
        .store
        .invitation_by_hash(&hash_secret(token.trim()))
        .await?
        .ok_or(ApiError::NotFound("invitation"))?;
    if inv.accepted_at.is_some() {
        return Err(ApiError::Gone("this invitation was already used"));
    }
    if inv.expires_at <= chrono::Utc::now() {
        return Err(ApiError::Gone(
            "this invitation has expired; ask for a new one",
        ));
    }
    Ok(inv)
}

/// What an invitation is for (its holder needs no account).
#[utoipa::path(post, path = "/api/v1/invitations/lookup", operation_id = "lookup_invitation",
    tag = "invitations", request_body = InvitationToken,
    responses((status = 200, description = "the invitation", body = InvitationDetails),
        (status = 404, description = "no such invitation"),
        (status = 410, description = "used or expired")))]
pub async fn lookup(
    State(state): State<AppState>,
    ValidJson(req): ValidJson<InvitationToken>,
) -> ApiResult<Json<InvitationDetails>> {
    let inv = pending(&state, &req.token).await?;
    let project = state
        .store
        .project_by_id(inv.project_id)
        .await?
        .ok_or(ApiError::NotFound("invitation"))?;
    let account_exists = state.store.user_by_email(&inv.email).await?.is_some();
    Ok(Json(InvitationDetails {
        project_id: project.id,
        project_name: project.name,
        email: inv.email,
        role: inv.role,
        expires_at: inv.expires_at,
        account_exists,
    }))
}

/// Accept an invitation as the signed-in user it was sent to.
#[utoipa::path(post, path = "/api/v1/invitations/accept", operation_id = "accept_invitation",
    tag = "invitations", request_body = InvitationToken,
    responses((status = 200, description = "the new membership", body = MemberResponse),
        (status = 403, description = "the invitation is for another email"),
        (status = 404, description = "no such invitation"),
        (status = 409, description = "already a member"),
        (status = 410, description = "used or expired")),
    security(("bearer" = [])))]
pub async fn accept(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ValidJson(req): ValidJson<InvitationToken>,
) -> ApiResult<Json<MemberResponse>> {
    let inv = pending(&state, &req.token).await?;
    if inv.email != user.email {
        return Err(ApiError::Forbidden(
            "this invitation is for another email address; sign in as that account",
        ));
    }
    if state.store.is_member(inv.project_id, user.id).await? {
        return Err(ApiError::Conflict(
            "you are already a member of this project".into(),
        ));
    }
    let m = state
        .store
        .accept_invitation(&inv.token_hash, user.id, chrono::Utc::now())
        .await
        .map_err(spent)?;
    tracing::info!(
        project_id = m.project_id,
        user_id = user.id,
        "invitation accepted"
    );
    Ok(Json(MemberResponse {
        project_id: m.project_id,
        user_id: m.user_id,
        email: user.email,
        role: m.role,
    }))
}

/// Create the account for the invited email and accept, at once; answers a session.
#[utoipa::path(post, path = "/api/v1/invitations/signup", operation_id = "sign_up_by_invitation",
    tag = "invitations", request_body = SignUp,
    responses((status = 201, description = "the account exists and is a member", body = SignedUp),
        (status = 403, description = "password accounts are switched off (`password_login`)"),
        (status = 404, description = "no such invitation"),
        (status = 409, description = "the email has an account: sign in and accept"),
        (status = 410, description = "used or expired")))]
pub async fn sign_up(
    State(state): State<AppState>,
    ValidJson(req): ValidJson<SignUp>,
) -> ApiResult<(StatusCode, Json<SignedUp>)> {
    if !state.config.password_login {
        return Err(ApiError::Forbidden(
            "password accounts are switched off here: sign in through SSO, then accept",
        ));
    }
    let password = domain::password(&req.password)?.to_string();
    let inv = pending(&state, &req.token).await?;
    let exists =
        || ApiError::Conflict("an account exists for this email: sign in, then accept".into());
    if state.store.user_by_email(&inv.email).await?.is_some() {
        return Err(exists());
    }
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let (user, member) = state
        .store
        .sign_up_by_invitation(&inv.token_hash, &hash, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => exists(),
            other => spent(other),
        })?;
    tracing::info!(
        project_id = member.project_id,
        user_id = user.id,
        "signed up by invitation"
    );
    let token = state
        .jwt
        .issue(user.id, &user.email, chrono::Utc::now())
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(SignedUp {
            access_token: token,
            token_type: "bearer",
            expires_in: state.jwt.ttl().num_seconds(),
            project_id: member.project_id,
        }),
    ))
}

/// A spend that lost a race (another acceptance, expiry in between).
fn spent(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::Gone("this invitation was already used or has expired"),
        StoreError::Conflict(_) => ApiError::Conflict("already a member of this project".into()),
        other => other.into(),
    }
}
