//! A real device agent (`burrow_agent::run`) for tests: a device registered in a new project,
//! enrolled with its one-time token, running until dropped.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::TestStack;

/// An enrolled agent running in this process; stopped when dropped.
pub struct RunningAgent {
    pub dsn: String,
    /// The project the device is in.
    pub project_id: i64,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

impl TestStack {
    /// Registers device `dsn` in a new project of `token`'s user, enrolls an agent for it and
    /// runs the agent.
    pub async fn start_agent(&self, token: &str, dsn: &str) -> anyhow::Result<RunningAgent> {
        let (project_id, device) = self.project_with_device(token, dsn).await?;
        self.run_agent(project_id, &device, dsn).await
    }

    /// [`TestStack::start_agent`] for a device registered in the existing project
    /// `project_id` (several devices of one project).
    pub async fn start_agent_in(
        &self,
        token: &str,
        project_id: i64,
        dsn: &str,
    ) -> anyhow::Result<RunningAgent> {
        let (status, device) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/projects/{project_id}/devices"),
                token,
                Some(&serde_json::json!({"dsn": dsn, "name": format!("device {dsn}")})),
            )
            .await?;
        anyhow::ensure!(status == 201, "register device: {status} {device}");
        self.run_agent(project_id, &device, dsn).await
    }

    /// Enrolls device `device` (the registration's JSON) and runs its agent.
    async fn run_agent(
        &self,
        project_id: i64,
        device: &Value,
        dsn: &str,
    ) -> anyhow::Result<RunningAgent> {
        let enrollment = device["enrollment_token"]
            .as_str()
            .context("enrollment_token")?
            .to_string();
        let dir = tempfile::tempdir()?;
        let agent_dir = dir.path().join("agent");
        self.enroll_agent(&enrollment, &agent_dir).await?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            burrow_agent::run(&agent_dir, async {
                let _ = stop_rx.await;
            })
            .await
        });
        Ok(RunningAgent {
            dsn: dsn.to_string(),
            project_id,
            _dir: dir,
            stop: Some(stop_tx),
            task,
        })
    }

    /// Waits (at most `limit`) until tunnel `id` of device `dsn` has the agent connected as
    /// its destination; answers the tunnel's JSON then.
    pub async fn wait_agent_connected(
        &self,
        token: &str,
        dsn: &str,
        id: i64,
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let path = format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}");
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let (status, t) = self.call(reqwest::Method::GET, &path, token, None).await?;
            anyhow::ensure!(status == 200, "GET tunnel: {status} {t}");
            if let Some(tid) = t["tunnel_id"].as_str() {
                if self.running.broker.is_destination_connected(tid) {
                    return Ok(t);
                }
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "agent not connected within {limit:?}: {t}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
