//! Users, projects and project members.

/// `Store` methods: users, projects, members. See [`impl_store!`](super).
macro_rules! users_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    /// The email is stored lower case; a taken email answers `Conflict`.
    async fn create_user(&self, user: NewUser) -> Result<User> {
        Ok(sqlx::query_as(
            "INSERT INTO users (email, password_hash, is_admin, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(user.email.to_lowercase())
        .bind(&user.password_hash)
        .bind(user.is_admin)
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE email = $1")
            .bind(email.to_lowercase())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        Ok(sqlx::query_as("SELECT * FROM users ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    /// One transaction: the project row and the owner's membership. A missing owner answers
    /// `NotFound` (foreign key) and leaves no project behind.
    async fn create_project(&self, name: &str, owner_id: i64) -> Result<Project> {
        let at = now();
        let mut tx = self.pool.begin().await?;
        let project: Project =
            sqlx::query_as("INSERT INTO projects (name, created_at) VALUES ($1, $2) RETURNING *")
                .bind(name)
                .bind(at)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO project_members (project_id, user_id, role, created_at) \
             VALUES ($1, $2, 'owner', $3)",
        )
        .bind(project.id)
        .bind(owner_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(project)
    }

    async fn project_by_id(&self, id: i64) -> Result<Option<Project>> {
        Ok(sqlx::query_as("SELECT * FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn list_projects_for_user(&self, user_id: i64) -> Result<Vec<Project>> {
        Ok(sqlx::query_as(
            "SELECT p.* FROM projects p \
             JOIN project_members m ON m.project_id = p.id \
             WHERE m.user_id = $1 ORDER BY p.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn list_all_projects(&self) -> Result<Vec<Project>> {
        Ok(sqlx::query_as("SELECT * FROM projects ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    /// `Conflict` when the user is already a member; `NotFound` for a missing project or user.
    async fn add_member(&self, project_id: i64, user_id: i64, role: &str) -> Result<ProjectMember> {
        Ok(sqlx::query_as(
            "INSERT INTO project_members (project_id, user_id, role, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(role)
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn list_members(&self, project_id: i64) -> Result<Vec<ProjectMember>> {
        Ok(sqlx::query_as(
            "SELECT * FROM project_members WHERE project_id = $1 ORDER BY created_at, user_id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn rename_project(&self, id: i64, name: &str) -> Result<Project> {
        sqlx::query_as("UPDATE projects SET name = $2 WHERE id = $1 RETURNING *")
            .bind(id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Members, devices, tunnels and the rest of the project go with it (foreign keys).
    async fn delete_project(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    /// `NotFound` when not a member; `Conflict` when it would leave the project without an
    /// owner. The project row is locked first (a no-op update), so that two owners removing
    /// each other at once cannot both succeed on PostgreSQL; SQLite has one writer anyway.
    async fn remove_member(&self, project_id: i64, user_id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        found(
            sqlx::query("UPDATE projects SET name = name WHERE id = $1")
                .bind(project_id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
        )?;
        let other_owners: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM project_members \
             WHERE project_id = $1 AND role = 'owner' AND user_id <> $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        let removed: Option<String> = sqlx::query_scalar(
            "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2 RETURNING role",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        match removed {
            None => Err(StoreError::NotFound),
            Some(role) if role == "owner" && other_owners == 0 => {
                Err(StoreError::Conflict("the project's last owner".into()))
            }
            Some(_) => Ok(tx.commit().await?),
        }
    }

    /// `NotFound` when not a member; `Conflict` when the last owner would lose the role.
    /// Locks the project row like [`Store::remove_member`].
    async fn set_member_role(&self, project_id: i64, user_id: i64, role: &str) -> Result<ProjectMember> {
        let mut tx = self.pool.begin().await?;
        found(
            sqlx::query("UPDATE projects SET name = name WHERE id = $1")
                .bind(project_id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
        )?;
        let other_owners: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM project_members \
             WHERE project_id = $1 AND role = 'owner' AND user_id <> $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        if role != "owner" && other_owners == 0 {
            let current: Option<String> = sqlx::query_scalar(
                "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
            )
            .bind(project_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            if current.as_deref() == Some("owner") {
                return Err(StoreError::Conflict("the project's last owner".into()));
            }
        }
        let member: ProjectMember = sqlx::query_as(
            "UPDATE project_members SET role = $3 WHERE project_id = $1 AND user_id = $2 \
             RETURNING *",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(role)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(member)
    }

    async fn is_member(&self, project_id: i64, user_id: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    async fn member_role(&self, project_id: i64, user_id: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    } };
}
