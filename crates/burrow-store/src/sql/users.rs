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

    } };
}
