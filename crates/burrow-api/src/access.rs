//! Roles in a project and what each may do: the matrix of docs/accounts.md, in one place.
//! Routes name the [`Action`] they perform; [`Role::may`] decides.

/// `user_id`'s role in project `project_id`, `None` when not a member (or the stored role is
/// one this build does not know).
pub async fn role_of(
    store: &dyn burrow_store::Store,
    project_id: i64,
    user_id: i64,
) -> Result<Option<Role>, burrow_store::StoreError> {
    Ok(store
        .member_role(project_id, user_id)
        .await?
        .as_deref()
        .and_then(Role::parse))
}

/// A member's role in a project, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role allows `action` (docs/accounts.md).
    pub fn may(self, action: Action) -> bool {
        self >= action.least()
    }
}

/// What a request does to a project or to something in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the project, its devices, tunnels, members and traffic charts.
    View,
    /// Read a tunnel's access log.
    ReadLogs,
    /// Create, change (all but the auth settings), enable and delete tunnels.
    EditTunnels,
    /// Change a tunnel's `require_auth`, `allowed_user_ids`, `ip_allow`, `ip_deny`.
    TunnelAuth,
    /// Create and revoke share links; read the sharing audit log.
    Share,
    /// Rotate a tunnel's access tokens (the new ones reach the caller).
    Rotate,
    /// Mint and revoke tunnel API keys and AWS access keys.
    MintKeys,
    /// Register, enroll, rename, revoke and delete devices.
    ManageDevices,
    /// Add, re-check and remove a tunnel's custom domains (each gets a certificate).
    ManageDomains,
    /// Invite and remove members, change roles other than owner.
    ManageMembers,
    /// Make or unmake owners; rename and delete the project.
    ManageProject,
}

impl Action {
    /// The least role allowed to do it.
    fn least(self) -> Role {
        match self {
            Action::View => Role::Viewer,
            Action::ReadLogs | Action::EditTunnels => Role::Member,
            Action::TunnelAuth
            | Action::Share
            | Action::Rotate
            | Action::MintKeys
            | Action::ManageDevices
            | Action::ManageDomains
            | Action::ManageMembers => Role::Admin,
            Action::ManageProject => Role::Owner,
        }
    }

    /// The 403's reason.
    pub fn denied(self) -> &'static str {
        match self {
            Action::View => "your role may not see this project",
            Action::ReadLogs => "a viewer may not read access logs (member or above needed)",
            Action::EditTunnels => "a viewer may not change tunnels (member or above needed)",
            Action::TunnelAuth => "changing a tunnel's auth settings needs the admin or owner role",
            Action::Share => "sharing needs the admin or owner role",
            Action::Rotate => "rotating access tokens needs the admin or owner role",
            Action::MintKeys => "minting keys needs the admin or owner role",
            Action::ManageDevices => "managing devices needs the admin or owner role",
            Action::ManageDomains => "managing custom domains needs the admin or owner role",
            Action::ManageMembers => "managing members needs the admin or owner role",
            Action::ManageProject => "only the project's owners can do this",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_of_the_docs() {
        use Action::*;
        // (action, owner, admin, member, viewer), as docs/accounts.md's table.
        let rows = [
            (View, [true, true, true, true]),
            (ReadLogs, [true, true, true, false]),
            (EditTunnels, [true, true, true, false]),
            (TunnelAuth, [true, true, false, false]),
            (ManageDomains, [true, true, false, false]),
            (Share, [true, true, false, false]),
            (Rotate, [true, true, false, false]),
            (MintKeys, [true, true, false, false]),
            (ManageDevices, [true, true, false, false]),
            (ManageMembers, [true, true, false, false]),
            (ManageProject, [true, false, false, false]),
        ];
        for (action, allowed) in rows {
            for (role, want) in Role::ALL.into_iter().zip(allowed) {
                assert_eq!(role.may(action), want, "{role:?} {action:?}");
            }
        }
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Owner"), None);
    }
}
